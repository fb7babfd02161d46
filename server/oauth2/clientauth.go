package oauth2

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey-dev/latchkey/server/assertion"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Client authentication methods (RFC 7591 token_endpoint_auth_method values).
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
	// AuthMethodServiceAccountToken and AuthMethodPrivateKeyJWT are the registered methods of
	// clients that authenticate with a client assertion (TokenRequest.AuthMethod is
	// AuthMethodAssertion for both).
	AuthMethodServiceAccountToken = registry.AuthMethodServiceAccountToken
	AuthMethodPrivateKeyJWT       = registry.AuthMethodPrivateKeyJWT
	// AuthMethodAssertion is the TokenRequest.AuthMethod of a request with a JWT-bearer client
	// assertion: which registered method it is depends on the client.
	AuthMethodAssertion = "client_assertion"
)

// ClientAssertionTypeJWTBearer is the one client_assertion_type accepted (RFC 7523 2.2).
const ClientAssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ClientEvents is told of what a client's owner should hear about (the operator emits
// Warning Events on the OAuthClient, rate-limited): a refresh token used again after its
// rotation, an authorization code presented twice, failed authentications piling up.
type ClientEvents interface {
	RefreshReuseDetected(clientID string)
	AuthorizationCodeReplayed(clientID string)
	// AuthenticationFailures is told of every failed authentication of a registered client,
	// with its failures from all addresses in the brute-force window.
	AuthenticationFailures(clientID string, failures int64)
}

// NoClientEvents reports nothing.
type NoClientEvents struct{}

// RefreshReuseDetected does nothing.
func (NoClientEvents) RefreshReuseDetected(string) {}

// AuthorizationCodeReplayed does nothing.
func (NoClientEvents) AuthorizationCodeReplayed(string) {}

// AuthenticationFailures does nothing.
func (NoClientEvents) AuthenticationFailures(string, int64) {}

var _ ClientEvents = NoClientEvents{}

// AssertionVerifier verifies the JWT-bearer client assertions (RFC 7523 2.2) of the clients
// that authenticate with one (registry.Client.UsesAssertion): ServiceAccount and workload
// tokens, private_key_jwt.
type AssertionVerifier interface {
	// VerifyClientAssertion checks the assertion for the client and returns when it expires.
	// A refused assertion is an error wrapping ErrInvalidClient whose description says why
	// (never quoting the assertion); when it cannot decide (the API server or an issuer cannot
	// be reached) an error wrapping ErrTemporarilyUnavailable.
	VerifyClientAssertion(ctx context.Context, snap *registry.Snapshot, c *registry.Client, assertion string) (time.Time, error)
}

// CredentialUses is told which credential authenticated a client (for the status of its
// credentials: when the current and the previous secret were last used). It must return at
// once: the token endpoint calls it on every authentication.
type CredentialUses interface {
	CredentialUsed(c *registry.Client, credential Credential)
}

// Credential is which of a client's credentials authenticated it.
type Credential int

// Credentials.
const (
	// CurrentCredential: the current secret, key or token.
	CurrentCredential Credential = iota + 1
	// PreviousCredential: the previous client secret, inside its rotation's grace period.
	PreviousCredential
)

// ClientAuth authenticates the clients of token, revocation and introspection requests under
// brute-force protection (a Guard of kind "client").
type ClientAuth struct {
	guard      *Guard
	events     ClientEvents
	assertions AssertionVerifier
	uses       CredentialUses
	now        func() time.Time
}

// ClientAuthConfig configures a ClientAuth; every field may be nil.
type ClientAuthConfig struct {
	// Guard is the brute-force protection; nil: none (a handler without a store).
	Guard *Guard
	// Events hears of what a client's owner should know; nil: NoClientEvents.
	Events ClientEvents
	// Assertions verifies client assertions; nil: clients that authenticate with one cannot.
	Assertions AssertionVerifier
	// Uses hears which credential authenticated a client; nil: nobody.
	Uses CredentialUses
	// Now is the clock (a previous secret's grace period); nil: time.Now.
	Now func() time.Time
}

// NewClientAuth returns the client authentication of cfg.
func NewClientAuth(cfg ClientAuthConfig) *ClientAuth {
	a := &ClientAuth{guard: cfg.Guard, events: cfg.Events, assertions: cfg.Assertions, uses: cfg.Uses, now: cfg.Now}
	if a.events == nil {
		a.events = NoClientEvents{}
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a
}

// Authenticate finds the client of the request and checks its credentials. A public client
// authenticates with its client ID alone (there is no secret to guess, so it is not throttled);
// a confidential one needs its secret, by its declared method when it declares one, or its
// client assertion. Every failure is invalid_client (with a Basic challenge after a Basic
// attempt), counted, audited (client_authentication_failed) and throttled: an attempt from a
// client ID and address, or an address, over its limit is refused with 429 and Retry-After,
// right secret or not. When the store cannot be reached the attempt is not throttled (logged),
// so that an outage of Redis does not stop client_credentials. A request with an assertion and
// no client_id names the client by the assertion's sub (RFC 7523 3: private_key_jwt's sub is
// the client ID). On success req.CredentialExpiry is when an assertion expires.
func (a *ClientAuth) Authenticate(ctx context.Context, snap *registry.Snapshot, req *TokenRequest) (*registry.Client, error) {
	c, _, err := a.AuthenticateWith(ctx, snap, req, AuthOptions{})
	return c, err
}

// RateLimit names the bucket an authenticated client's request takes from (ok false: none).
type RateLimit func(c *registry.Client) (bucket store.RateTake, ok bool)

// Rated is what AuthenticateWith did with the client's rate limit.
type Rated struct {
	// Taken: the request was taken from the bucket, or the store could not be reached (the
	// request is not limited then: FailOpen); either way the caller must not take it again.
	Taken bool
	// Wait is positive when the bucket refused the request: answer 429 with it.
	Wait time.Duration
}

// AuthOptions are AuthenticateWith's options.
type AuthOptions struct {
	// Rate, when set, names the bucket that a client whose successful authentication the
	// guard records (a confidential one) takes from in the same store step
	// (store.ThrottleRates): one round trip for both. AuthResult.Rated says whether it did.
	Rate RateLimit
	// Defer leaves the record of a confidential client's successful authentication to the
	// caller (AuthResult.Deferred), so that it can go into the store step of the request itself.
	Defer bool
}

// AuthResult is what AuthenticateWith did besides authenticating.
type AuthResult struct {
	Rated Rated
	// Deferred is the success left to the caller (AuthOptions.Defer); nil when it was
	// recorded, or there is nothing to record (a public client, no guard).
	Deferred *Deferred
}

// Deferred is a client's successful authentication whose record (the guard's Success, which
// a block refuses) is left to the caller. The caller records it before the request changes
// anything or is answered: with Keys as a store.Admission's in the request's own store step,
// or on its own with Record; then it calls Answer with what the record found.
type Deferred struct {
	// Keys are the guard's throttle keys of the attempt.
	Keys []store.ThrottleKey
	a    *ClientAuth
	req  *TokenRequest
	c    *registry.Client
	used Credential
}

// Record records the success on its own, and takes from the bucket rate when it is not nil,
// in one store step (an error when the guard's store cannot: Guard.CanRate).
func (d *Deferred) Record(ctx context.Context, rate *store.RateTake) (store.ThrottleResult, error) {
	if rate == nil {
		return d.a.guard.throttles.Throttle(ctx, d.Keys, store.Success)
	}
	if !d.a.guard.CanRate() {
		return store.ThrottleResult{}, errors.New("oauth2: the guard's store applies no rate limit")
	}
	return d.a.guard.rates.ThrottleRate(ctx, d.Keys, store.Success, *rate)
}

// Answer finishes the authentication with what its record found (err: the store could not be
// reached, and the attempt is not throttled, as FailOpen says): 429 when a key was blocked,
// else nil, and the success is counted and audited as Authenticate does.
func (d *Deferred) Answer(ctx context.Context, res store.ThrottleResult, err error) error {
	if err != nil {
		if err := FailOpen(ctx, err, "brute-force protection unavailable; the attempt is not throttled", "client_id", d.c.ID); err != nil {
			return err
		}
	}
	if res.RetryAfter > 0 {
		return blocked(ctx, d.c, true, res.RetryAfter)
	}
	d.a.succeeded(ctx, d.c, d.req, d.used)
	return nil
}

// blocked answers an attempt refused by brute-force protection: 429, counted and audited.
func blocked(ctx context.Context, c *registry.Client, known bool, retryAfter time.Duration) error {
	RecordRateLimited(ctx, RateLimitClientAuthentication)
	Audit(ctx, AuditEvent{Event: AuditRateLimited, ClientID: registeredID(c, known), Outcome: "failure",
		Reason: "client authentication: too many failures"})
	return ErrTooManyRequests.WithRetryAfter(retryAfter)
}

// succeeded counts and audits a successful authentication, and notes the credential used.
func (a *ClientAuth) succeeded(ctx context.Context, client *registry.Client, req *TokenRequest, used Credential) {
	method := usedMethod(client, true, req)
	recordClientAuthenticated(ctx, method)
	if used == PreviousCredential {
		recordPreviousSecretUsed(ctx, client)
		Audit(ctx, AuditEvent{Event: AuditPreviousSecretUsed, ClientID: client.ID, AuthMethod: method, Outcome: "success",
			Reason: "the previous client secret was used inside its rotation's grace period"})
	}
	if a.uses != nil {
		a.uses.CredentialUsed(client, used)
	}
}

// AuthenticateWith is Authenticate with the options.
func (a *ClientAuth) AuthenticateWith(ctx context.Context, snap *registry.Snapshot, req *TokenRequest, opts AuthOptions) (*registry.Client, AuthResult, error) {
	if req.AuthMethod == AuthMethodAssertion && req.ClientID == "" {
		if tok, err := assertion.Parse(req.ClientAssertion); err == nil {
			req.ClientID = tok.UnverifiedClaims().Subject
		}
	}
	if req.AuthMethod == "" || req.ClientID == "" {
		recordClientAuthFailure(ctx, req.AuthMethod)
		return nil, AuthResult{}, ClientAuthFailed(req, "The request names no client.")
	}
	client, known := snap.Client(req.ClientID)
	failure, used, err := a.checkCredentials(ctx, snap, client, known, req)
	if err != nil {
		return nil, AuthResult{}, err // the verifier could not decide: not the client's failure
	}
	if known && IsPublic(client) && failure == "" {
		recordClientAuthenticated(ctx, AuthMethodNone)
		return client, AuthResult{}, nil
	}
	if failure == "" && opts.Defer && a.guard != nil {
		return client, AuthResult{Deferred: &Deferred{Keys: a.guard.keys(req.ClientID, ClientAddress(ctx)), a: a, req: req, c: client, used: used}}, nil
	}
	// Counted under the client ID whether or not it is registered, so that when a lock starts
	// does not tell which client IDs exist.
	var (
		v     Verdict
		rated Rated
	)
	bucket, limited := store.RateTake{}, false
	if failure == "" && opts.Rate != nil && a.guard.CanRate() {
		bucket, limited = opts.Rate(client)
	}
	if limited {
		v, err = a.guard.RecordRate(ctx, req.ClientID, ClientAddress(ctx), bucket)
		rated = Rated{Taken: true, Wait: v.RateWait}
	} else {
		v, err = a.guard.Record(ctx, req.ClientID, ClientAddress(ctx), failure != "")
	}
	if err != nil {
		if err := FailOpen(ctx, err, "brute-force protection unavailable; the attempt is not throttled",
			"client_id", registeredID(client, known)); err != nil {
			return nil, AuthResult{}, err
		}
	}
	if v.RetryAfter > 0 {
		return nil, AuthResult{}, blocked(ctx, client, known, v.RetryAfter)
	}
	if failure == "" {
		a.succeeded(ctx, client, req, used)
		return client, AuthResult{Rated: rated}, nil
	}
	method := usedMethod(client, known, req)
	recordClientAuthFailure(ctx, method)
	Audit(ctx, AuditEvent{Event: AuditClientAuthenticationFailed, ClientID: registeredID(client, known),
		AuthMethod: method, Outcome: "failure", Reason: authMethodLabel(method) + ": " + failure})
	if known {
		a.events.AuthenticationFailures(client.ID, v.IdentityFailures)
	}
	return nil, AuthResult{}, ClientAuthFailed(req, failure)
}

// AuthenticatedMethod is the method a request authenticated with (or tried to), for metrics and
// audit: the client's registered assertion method for an assertion, else the request's.
func AuthenticatedMethod(c *registry.Client, req *TokenRequest) string {
	return usedMethod(c, c != nil, req)
}

func usedMethod(c *registry.Client, known bool, req *TokenRequest) string {
	if req.AuthMethod == AuthMethodAssertion && known && c.UsesAssertion() {
		return c.AuthMethod
	}
	return req.AuthMethod
}

// registeredID is the client ID for logs and audit records: a registered client's only, so an
// attacker's input never lands there.
func registeredID(c *registry.Client, known bool) string {
	if !known {
		return ""
	}
	return c.ID
}

// checkCredentials returns why the request's credentials fail for the client ("" when they
// do not) and which credential it used; an error when an assertion's verifier cannot decide.
func (a *ClientAuth) checkCredentials(ctx context.Context, snap *registry.Snapshot, client *registry.Client, known bool,
	req *TokenRequest) (string, Credential, error) {
	const wrong = "Unknown client or wrong credentials."
	switch {
	case !known && req.AuthMethod == AuthMethodAssertion:
		return wrong, 0, nil
	case !known:
		// Hash the secret anyway, so an unknown client ID takes as long as a wrong secret.
		unknown := registry.Client{}
		unknown.CheckSecret(req.ClientSecret)
		return wrong, 0, nil
	case IsPublic(client):
		if req.ClientSecret != "" || req.ClientAssertion != "" {
			return "A public client has no secret.", 0, nil
		}
		return "", CurrentCredential, nil
	case client.UsesAssertion() != (req.AuthMethod == AuthMethodAssertion):
		if client.UsesAssertion() {
			return "The client must authenticate with a client assertion (" + client.AuthMethod + ").", 0, nil
		}
		return "The client authenticates with a client secret, not an assertion.", 0, nil
	case client.UsesAssertion():
		return a.checkAssertion(ctx, snap, client, req)
	}
	var match registry.SecretMatch
	if req.ClientSecret != "" {
		match = client.MatchSecret(req.ClientSecret, a.now())
	}
	switch {
	case match == registry.NoSecret:
		return wrong, 0, nil
	case client.AuthMethod != "" && client.AuthMethod != req.AuthMethod:
		return "The client must authenticate with " + client.AuthMethod + ".", 0, nil
	case match == registry.PreviousSecret:
		return "", PreviousCredential, nil
	}
	return "", CurrentCredential, nil
}

// checkAssertion verifies a client assertion; req.CredentialExpiry is its exp.
func (a *ClientAuth) checkAssertion(ctx context.Context, snap *registry.Snapshot, client *registry.Client, req *TokenRequest) (string, Credential, error) {
	if a.assertions == nil {
		return "This server does not verify client assertions.", 0, nil
	}
	exp, err := a.assertions.VerifyClientAssertion(ctx, snap, client, req.ClientAssertion)
	var oe *Error
	switch {
	case err == nil && !exp.After(a.now()):
		// Accepted within the verifier's clock skew, but a token bounded by it would expire at once.
		return "The client assertion has expired.", 0, nil
	case err == nil:
		req.CredentialExpiry = exp
		return "", CurrentCredential, nil
	case errors.Is(err, ErrInvalidClient) && errors.As(err, &oe):
		return oe.Description(), 0, nil
	}
	return "", 0, FromStore(err)
}

// ClientAuthFailed is invalid_client: 401 with a Basic challenge when the client tried Basic.
func ClientAuthFailed(req *TokenRequest, description string) error {
	e := ErrInvalidClient.WithDescription(description)
	if req.AuthMethod == AuthMethodBasic {
		e = e.WithBasicChallenge()
	}
	return e
}

// IsPublic reports whether the client authenticates without a secret.
func IsPublic(c *registry.Client) bool {
	return c.Type == registry.Public || c.AuthMethod == AuthMethodNone
}
