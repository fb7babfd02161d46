package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Errors of every backend.
var (
	// ErrNotFound: no record under the key, or its lease ended.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: the record changed concurrently, or (RotateRefresh) the token was rotated
	// moments ago, within the grace window.
	ErrConflict = errors.New("store: conflict")
	// ErrAlreadyUsed: TakeCode on a code that was taken before.
	ErrAlreadyUsed = errors.New("store: code already used")
	// ErrReused: RotateRefresh on a token rotated before the grace window; its family is revoked.
	ErrReused = errors.New("store: refresh token reused")
	// ErrRevoked: the refresh token's family was revoked.
	ErrRevoked = errors.New("store: revoked")
	// ErrUnavailable: the backend could not be reached; nothing was stored.
	ErrUnavailable = errors.New("store: unavailable")
)

// SuccessorError is the ErrConflict of RotateRefresh and ReportRefreshReuse for a token that
// was rotated within grace by a rotation that kept its successor sealed, while that successor
// is still active: Sealed is what the rotation was given (sealed with a key that only the old
// token's holder can derive, so the store holds no token). Nothing changed. It matches
// ErrConflict with errors.Is, so a caller that does not open it refuses as before.
type SuccessorError struct {
	Sealed []byte
}

func (e *SuccessorError) Error() string {
	return "store: conflict: rotated within grace, successor kept"
}

// Unwrap is ErrConflict.
func (e *SuccessorError) Unwrap() error { return ErrConflict }

// Hash is the SHA-256 of a secret; records are keyed by it.
type Hash [sha256.Size]byte

// HashOf returns the Hash of a secret.
func HashOf(secret string) Hash { return sha256.Sum256([]byte(secret)) }

// String is the hex form, for logs and backend keys; it reveals nothing of the secret.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Code is an authorization code's record.
type Code struct {
	ClientID            string
	RedirectURI         string
	Subject             string // registry.User.Subject (the sub claim), never the username
	Scopes              []string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string // S256 or plain; empty without PKCE
	AuthTime            time.Time
	// FamilyID names the grant the code starts: the refresh token family and the access
	// tokens issued from it carry it, so a replayed code can revoke them.
	FamilyID string
	// SessionID is the OP (browser login) session the code was issued in: the sid of the ID
	// and access tokens of its grant. Empty when none.
	SessionID string
	// Resources are the resources (RFC 8707) the authorization request selected; nil when it
	// named none (every audience of the client).
	Resources []string
	// DPoPThumbprint binds the code to a DPoP key (RFC 9449 10: the authorization request's
	// dpop_jkt, or the key of the pushed request's DPoP proof): the token request must prove
	// that key. Empty: not bound.
	DPoPThumbprint string
}

// RefreshToken is a refresh token's record.
type RefreshToken struct {
	FamilyID string
	ClientID string
	Subject  string
	// Scopes granted to the family: a refresh may narrow them, never widen them.
	Scopes   []string
	AuthTime time.Time
	IssuedAt time.Time
	// ExpiresAt is when the token's lease ends.
	ExpiresAt time.Time
	// SessionID is the OP session the family was started in (Code.SessionID), kept by every
	// rotation; empty when none (the password grant).
	SessionID string
	// Resources are the resources (RFC 8707) granted to the family: a refresh may narrow them
	// per request, never widen them. nil: every audience of the client.
	Resources []string
	// DPoPThumbprint binds the token to a DPoP key (RFC 9449 5; the JWK SHA-256 thumbprint,
	// base64url): a refresh needs a proof signed with that key. Empty: not bound. Only public
	// clients' tokens are bound; every rotation keeps it.
	DPoPThumbprint string
}

// Codes holds authorization codes.
type Codes interface {
	// PutCode stores a code under its hash for ttl.
	PutCode(ctx context.Context, h Hash, c Code, ttl time.Duration) error
	// TakeCode atomically marks the code used and returns it, if it was issued to clientID: a
	// code of another client is ErrNotFound and stays as it was (so a party that saw a code
	// cannot burn it or revoke its grant under another client ID). A code taken before returns
	// its record with ErrAlreadyUsed, to its own client, until its lease ends.
	TakeCode(ctx context.Context, h Hash, clientID string) (Code, error)
	// RedeemCode is TakeCode and, when this call takes the code, CreateRefresh(rh, rt) in the
	// same atomic step (one round trip): the code's exchange and the first refresh token of its
	// grant. When TakeCode would fail, it fails the same way and stores nothing; a rh that
	// holds a live token is ErrConflict and the code is not taken.
	RedeemCode(ctx context.Context, h Hash, clientID string, rh Hash, rt RefreshToken) (Code, error)
}

// RefreshTokens holds refresh tokens and their families.
type RefreshTokens interface {
	// CreateRefresh stores the first token of a family (or of a new family) under its hash.
	// The lease ends at rt.ExpiresAt.
	CreateRefresh(ctx context.Context, h Hash, rt RefreshToken) error
	// GetRefresh returns an active token: ErrNotFound when unknown or expired, ErrRevoked when
	// its family was revoked, ErrReused when it was rotated (without revoking anything).
	GetRefresh(ctx context.Context, h Hash) (RefreshToken, error)
	// RotateRefresh replaces the active token old by next (stored under h, same family), in one
	// atomic step, and returns old's record. sealed (nil: none) is kept beside old's rotation
	// for grace, in the same step, and no longer. If old was already rotated: within grace of
	// that rotation it is ErrConflict and nothing changes, a *SuccessorError with what that
	// rotation kept while its successor is still active, and ErrReused with the family revoked
	// once the successor was rotated itself; after grace it is ErrReused and the family is
	// revoked. A revoked family is ErrRevoked.
	RotateRefresh(ctx context.Context, old, h Hash, next RefreshToken, sealed []byte, grace time.Duration) (RefreshToken, error)
	// ReportRefreshReuse applies the reuse rule to a token presented again after its rotation
	// (GetRefresh answered ErrReused), in one atomic step, as RotateRefresh does: within grace
	// of the rotation it is ErrConflict (a *SuccessorError while the kept successor is active)
	// and nothing changes (a concurrent retry, or one whose answer was lost), unless the kept
	// successor was rotated itself; otherwise the whole family is revoked and it is ErrReused.
	// A token never rotated is nil and nothing changes; an unknown or expired one ErrNotFound;
	// one of a revoked family ErrRevoked.
	ReportRefreshReuse(ctx context.Context, h Hash, grace time.Duration) error
	// RevokeFamily revokes every token of the family, remembering the revocation until until.
	RevokeFamily(ctx context.Context, familyID string, until time.Time) error
	// FamilyRevoked reports whether the family was revoked.
	FamilyRevoked(ctx context.Context, familyID string) (bool, error)
}

// Cutoff ends grants (refresh token families) of a client in bulk, whether or not anything
// still lists them: those of the user Subject (SessionID "") or those started in the OP
// session SessionID (Subject ignored), whose first refresh token was issued (its IssuedAt as
// given to CreateRefresh or RedeemCode: the family's start) at or before At. Withdrawing a
// consent cuts off the client's grants for the user; ending a session, those of the session.
type Cutoff struct {
	ClientID  string
	Subject   string
	SessionID string
	At        time.Time
}

// Key is the hash a backend keeps the cutoff under; its families look it up with
// CutoffKeys.
func (c Cutoff) Key() Hash {
	if c.SessionID != "" {
		return cutoffKey(c.ClientID, "s", c.SessionID)
	}
	return cutoffKey(c.ClientID, "u", c.Subject)
}

// CutoffKeys are the keys of the cutoffs that can end a family of clientID: the user's and,
// when the family was started in an OP session, the session's. n is how many of keys are set.
func CutoffKeys(clientID, subject, sessionID string) (keys [2]Hash, n int) {
	keys[0] = cutoffKey(clientID, "u", subject)
	if sessionID == "" {
		return keys, 1
	}
	keys[1] = cutoffKey(clientID, "s", sessionID)
	return keys, 2
}

func cutoffKey(clientID, kind, name string) Hash {
	return HashOf(fmt.Sprintf("cutoff\x00%d:%s\x00%s\x00%s", len(clientID), clientID, kind, name))
}

// GrantCutoffs end grants in bulk (Cutoff).
type GrantCutoffs interface {
	// CutOffGrants records the cutoff until until (its lease; it must outlive every refresh
	// token of a family it ends that was issued before it: the longest refresh lifetime a
	// client can have). From then on the store refuses with ErrRevoked, and revokes the family
	// of, every rotation (RotateRefresh, RotateRefreshAdmitted, a retry within grace that
	// would hand back a kept successor, ReportRefreshReuse) of a family the cutoff ends, in
	// the step that decides the rotation: no extra round trip. A later cutoff of the same key
	// keeps the later At and the later until. Families started after At are not affected.
	CutOffGrants(ctx context.Context, c Cutoff, until time.Time) error
}

// Revocations holds revoked access token IDs (jti) until the tokens would have expired.
type Revocations interface {
	RevokeToken(ctx context.Context, jti string, until time.Time) error
	TokenRevoked(ctx context.Context, jti string) (bool, error)
}

// Records holds small opaque records (login sessions, pending authorization requests,
// remembered consents) under a kind and a hash. Callers encode the value.
type Records interface {
	PutRecord(ctx context.Context, kind string, h Hash, value []byte, ttl time.Duration) error
	GetRecord(ctx context.Context, kind string, h Hash) ([]byte, error)
	DeleteRecord(ctx context.Context, kind string, h Hash) error
	// TakeRecord returns the record and deletes it, in one atomic step: of concurrent takes
	// of one record exactly one gets it, the others ErrNotFound (one-time records such as
	// pushed authorization requests).
	TakeRecord(ctx context.Context, kind string, h Hash) ([]byte, error)
}

// Entry is one entry of a list (Lists).
type Entry struct {
	ID        string
	Value     []byte
	ExpiresAt time.Time
}

// MaxListEntries bounds a list: putting one more entry drops the entry that expires first.
const MaxListEntries = 64

// Lists holds small lists of leased entries under a kind and a hash: a user's OP sessions,
// remembered consents and refresh families, which the account page lists. Each entry has its
// own lease; a list holds at most MaxListEntries and is gone when its last entry's lease ends,
// so nothing grows without bound.
type Lists interface {
	// PutEntry stores value under id in the list for ttl, replacing an entry with that id (and
	// its lease). A ttl <= 0 deletes the entry.
	PutEntry(ctx context.Context, kind string, h Hash, id string, value []byte, ttl time.Duration) error
	// ListEntries returns the list's live entries ordered by id; an unknown list is empty.
	ListEntries(ctx context.Context, kind string, h Hash) ([]Entry, error)
	// DeleteEntry removes the entry; a missing one is not an error.
	DeleteEntry(ctx context.Context, kind string, h Hash, id string) error
}

// KnownRecords gives the records of codes and refresh tokens that a replica can read without a
// round trip to a shared backend: the memory backend knows all of them, Redis those the replica
// stored itself (a bounded cache). The records under a hash never change (only their state
// does: used, rotated, revoked, expired), so a caller may check a request against a known
// record and sign its answer before the one store operation that decides (TakeCode,
// RedeemCode, RotateRefresh); what a record does not say, such as whether it is still active,
// only that operation tells. Neither call fails or blocks on the network: unknown is false.
type KnownRecords interface {
	KnownCode(h Hash) (Code, bool)
	KnownRefresh(h Hash) (RefreshToken, bool)
}

// Counters counts events in a fixed window (the registration rate limit counts registrations
// per client address with it).
type Counters interface {
	// Incr adds one to the counter and returns the new count; a counter starts at zero and its
	// lease is window (at least a millisecond) from its first increment.
	Incr(ctx context.Context, key Hash, window time.Duration) (int64, error)
	// Reset drops the counter.
	Reset(ctx context.Context, key Hash) error
}

// Outcome is what a Throttle call records.
type Outcome int

// Outcomes of an attempt.
const (
	// Check records nothing: it only reports whether a key is blocked (before an expensive
	// check, such as a password hash).
	Check Outcome = iota
	// Failure counts one failed attempt on every key.
	Failure
	// Success drops the keys marked ResetOnSuccess.
	Success
)

// ThrottleKey is one count of failed attempts, for brute-force protection.
type ThrottleKey struct {
	Key Hash
	// Limit failures are free; each failure from the Limit-th on blocks the key for Backoff,
	// doubled for every failure past Limit, at most MaxBackoff. Limit 0 never blocks: the count
	// is reported for the caller to slow down by. The count (and its back-off) is forgotten
	// when Window (at least a millisecond) passes after the last failure and its block: an
	// attacker who keeps failing keeps the longest back-off, a client that stops is forgiven.
	Limit  int
	Window time.Duration
	// Backoff and MaxBackoff bound a block (Limit > 0).
	Backoff, MaxBackoff time.Duration
	// ResetOnSuccess drops the key (its count and block) on a Success.
	ResetOnSuccess bool
}

// ThrottleResult is what Throttle found.
type ThrottleResult struct {
	// RetryAfter is positive when a key was blocked: the longest remaining block. Nothing was
	// recorded then.
	RetryAfter time.Duration
	// Failures are the counts of the keys after the call, in the order given.
	Failures []int64
	// RateWait is ThrottleRate's answer from the bucket: positive when the bucket refused the
	// request (nothing was taken), zero when it was taken or not asked.
	RateWait time.Duration
}

// RateTake is one request to take from a token bucket (RateLimits.TakeRate's arguments).
type RateTake struct {
	Key              Hash
	PerMinute, Burst int
}

// Throttles counts failed attempts with exponential back-off.
type Throttles interface {
	// Throttle records an attempt on the keys in one atomic step (one round trip): when any
	// key is blocked it returns the remaining block and records nothing; otherwise a Failure
	// counts one on every key (and restarts its window, which begins after the key's block
	// ends) and blocks the keys that reached their Limit, a Success drops the keys marked
	// ResetOnSuccess, and a Check changes nothing.
	Throttle(ctx context.Context, keys []ThrottleKey, outcome Outcome) (ThrottleResult, error)
}

// ThrottleRates throttles an attempt and applies a rate limit in one step.
type ThrottleRates interface {
	// ThrottleRate is Throttle and, when the outcome is a Success that no block refused,
	// TakeRate of rate, in one atomic step (one round trip): an authenticated request and its
	// client's rate limit. A refused attempt takes nothing from the bucket.
	ThrottleRate(ctx context.Context, keys []ThrottleKey, outcome Outcome, rate RateTake) (ThrottleResult, error)
}

// RateLimits are token buckets shared by every replica.
type RateLimits interface {
	// TakeRate takes one request from the bucket of key, which holds burst requests and
	// refills at perMinute: zero when the request is allowed, else how long until one would be
	// (and nothing was taken). perMinute and burst must be positive.
	TakeRate(ctx context.Context, key Hash, perMinute, burst int) (time.Duration, error)
}

// Admission is what a request must pass before a store operation changes anything for it: a
// successful authentication, recorded on the throttle keys (Throttle with Success: refused
// while any key is blocked), and, unless Rate is nil, one request taken from a rate bucket.
type Admission struct {
	Keys []ThrottleKey
	Rate *RateTake
}

// Admissions run an operation of a request after its admission, in one atomic step (one round
// trip): when the admission refuses (ThrottleResult.RetryAfter or RateWait positive) the
// operation does not run and its results are zero; otherwise they are the operation's own.
type Admissions interface {
	// TakeCodeAdmitted is TakeCode after adm.
	TakeCodeAdmitted(ctx context.Context, adm Admission, h Hash, clientID string) (ThrottleResult, Code, error)
	// RedeemCodeAdmitted is RedeemCode after adm.
	RedeemCodeAdmitted(ctx context.Context, adm Admission, h Hash, clientID string, rh Hash, rt RefreshToken) (ThrottleResult, Code, error)
	// RotateRefreshAdmitted is RotateRefresh after adm.
	RotateRefreshAdmitted(ctx context.Context, adm Admission, old, h Hash, next RefreshToken, sealed []byte, grace time.Duration) (ThrottleResult, RefreshToken, error)
}

// Refused reports whether an admission's result refused the request.
func (r ThrottleResult) Refused() bool { return r.RetryAfter > 0 || r.RateWait > 0 }

// CredentialUse is when a client last authenticated with one of its credentials: its current
// one, or (Previous) its previous client secret inside a rotation's grace period.
type CredentialUse struct {
	ClientID string
	Previous bool
	At       time.Time
}

// CredentialUseLease is how long the credential uses noted and not taken are kept after the
// last note: nobody took them (no leader) and they are stale by then.
const CredentialUseLease = time.Hour

// CredentialUses collects when clients last used their credentials, from every replica, for the
// leader to write into the clients' status.
type CredentialUses interface {
	// NoteCredentialUses records the uses in one atomic step, keeping per client ID and
	// Previous the latest At of what was noted and not yet taken. The records are leased for
	// CredentialUseLease from the last note.
	NoteCredentialUses(ctx context.Context, uses []CredentialUse) error
	// TakeCredentialUses removes and returns up to limit of the records, in one atomic step: of
	// concurrent takes, each record goes to one caller. Nothing to take (or limit <= 0) is an
	// empty result, not an error.
	TakeCredentialUses(ctx context.Context, limit int) ([]CredentialUse, error)
}

// LogoutDelivery is one queued back-channel logout delivery: a logout token to send to one
// client for one ended session.
type LogoutDelivery struct {
	// ID names the delivery (random, unique among the queued ones).
	ID        string
	ClientID  string
	SessionID string // the OP session's ID (sid); may be empty
	Subject   string // the user's sub
	// Attempts is how many deliveries were tried before (RetryLogoutDelivery sets it).
	Attempts int
	// Claim is the token of the claim that handed the delivery out (set by
	// ClaimLogoutDeliveries); FinishLogoutDelivery and RetryLogoutDelivery present it.
	Claim string
}

// LogoutDeliveries is the queue of back-channel logout deliveries that every replica works on.
type LogoutDeliveries interface {
	// EnqueueLogoutDeliveries stores the deliveries (their Attempts and Claim are ignored), due
	// at once and leased for ttl: a delivery still queued when its lease ends is dropped. An ID
	// already queued is replaced.
	EnqueueLogoutDeliveries(ctx context.Context, ds []LogoutDelivery, ttl time.Duration) error
	// ClaimLogoutDeliveries hands up to limit due deliveries to the caller in one atomic step,
	// each with Claim set to a token of this call: of concurrent claims, each delivery goes to
	// one caller. A claimed delivery is not due again until claim (the claim's lease) has
	// passed, so one whose claimer died is handed out again. Nothing due (or limit <= 0) is an
	// empty result, not an error.
	ClaimLogoutDeliveries(ctx context.Context, limit int, claim time.Duration) ([]LogoutDelivery, error)
	// FinishLogoutDelivery removes a delivery (delivered or given up). A delivery that is gone
	// is ErrNotFound; one claimed since by another call (its claim had passed) ErrConflict, and
	// it stays.
	FinishLogoutDelivery(ctx context.Context, id, claim string) error
	// RetryLogoutDelivery records attempts and makes the delivery due again after delay,
	// releasing the claim. Its errors are FinishLogoutDelivery's.
	RetryLogoutDelivery(ctx context.Context, id, claim string, attempts int, delay time.Duration) error
}

// Store is every part of the leased store; a backend implements all of it.
type Store interface {
	Codes
	RefreshTokens
	GrantCutoffs
	Revocations
	Records
	Lists
	Counters
	Throttles
	RateLimits
	ThrottleRates
	Admissions
	CredentialUses
	LogoutDeliveries
	DeviceGrants
	KnownRecords
	// Ping reports whether the backend can be reached (readiness).
	Ping(ctx context.Context) error
}
