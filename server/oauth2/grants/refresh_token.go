package grants

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
	"github.com/latchkey-dev/latchkey/server/upstream"
)

// DefaultRefreshReuseGrace is how long after a rotation the old refresh token is not reuse:
// its client's retry gets the same successor, and nothing is revoked.
const DefaultRefreshReuseGrace = 2 * time.Second

// badRefreshToken is the description of every invalid_grant of the refresh_token grant, so
// that the answer tells nothing about why (unknown, expired, revoked, reused, another client's).
const badRefreshToken = "The refresh token is invalid, expired or revoked."

// refreshReader reads refresh tokens and applies the reuse rule; store.Store implements it.
type refreshReader interface {
	KnownRefresh(h store.Hash) (store.RefreshToken, bool)
	GetRefresh(ctx context.Context, h store.Hash) (store.RefreshToken, error)
	ReportRefreshReuse(ctx context.Context, h store.Hash, grace time.Duration) error
}

// reuseReporter is told when a refresh token of a client is reused after its rotation (its
// family is then revoked); oauth2.ClientEvents implements it.
type reuseReporter interface {
	RefreshReuseDetected(clientID string)
}

// RefreshToken is RFC 6749 6 with rotation on every use (OAuth 2.0 Security BCP 4.14): the
// presented token is replaced by a new one atomically in the store. Presented again after the
// grace window (below), it is reuse, and the store revokes the whole family (every refresh
// token and, through sid, every access token issued from the grant), RFC 9700 4.14.2.
//
// Retries: a rotation whose answer was lost (Redis restarted after running the script, a
// connection cut) leaves the client holding only the old token, and the store cannot tell
// "ran, answer lost" from "did not run". So each rotation keeps its new token beside the
// rotation record for the grace window, sealed with a key derived from the old token
// (token.SealSuccessor: the store holds no token) and bound to the client ID and the way it
// authenticated. The old token presented again within grace, by that client authenticated
// that way, gets the same new token and a fresh access token (and ID token for openid): the
// rotation is idempotent for its client. The same presentation by another client, or
// authenticated another way, is invalid_grant and changes nothing. After the grace window, or
// once the new token was itself rotated, the old token is reuse and revokes the family.
//
// The trade-off: a thief holding the old token (and, for a confidential client, its
// credentials) who presents it within the grace window of its rotation gets the successor
// too, where before it got invalid_grant. The window is the reuse grace (2 s by default,
// --refresh-reuse-grace), the thief must be able to act as the same client, and the first of
// the two holders to rotate the successor makes the other's next presentation reuse, which
// revokes the family: the theft is detected as before, one rotation later. Every such answer
// is audited as refresh_retried.
type RefreshToken struct {
	refresh  refreshReader
	tokens   *TokenSet
	grace    time.Duration
	reuse    reuseReporter
	upstream upstreamRecheck
}

// UpstreamRechecker re-checks, at refresh, a user an upstream identity provider signed in
// (upstream.Dispatcher): nil while the upstream still accepts them, upstream.ErrUserRefused
// when it does not, another error when it cannot be asked.
type UpstreamRechecker interface {
	RecheckUser(ctx context.Context, u *registry.User) error
}

// familyRevoker revokes a refresh token family; store.Store implements it.
type familyRevoker interface {
	RevokeFamily(ctx context.Context, familyID string, until time.Time) error
}

// upstreamRecheck is the re-check of upstream users and how a refused user's family is revoked.
type upstreamRecheck struct {
	users  UpstreamRechecker
	revoke familyRevoker
}

// WithUpstreamRecheck returns the grant re-checking the users of upstream identity providers
// with users before each rotation; a user the upstream refuses gets invalid_grant and the
// family is revoked with revoke (audited as upstream_user_refused). An upstream that cannot
// be asked is temporarily_unavailable, nothing revoked (fail closed: no refresh without an
// answer once the interval passed).
func (g RefreshToken) WithUpstreamRecheck(users UpstreamRechecker, revoke familyRevoker) RefreshToken {
	g.upstream = upstreamRecheck{users: users, revoke: revoke}
	return g
}

var _ Grant = RefreshToken{}

// NewRefreshToken returns the grant over the refresh tokens of refresh, rotating with tokens;
// grace is the reuse grace window, reuse (may be nil) is told of every reuse.
func NewRefreshToken(refresh refreshReader, tokens *TokenSet, grace time.Duration, reuse reuseReporter) RefreshToken {
	return RefreshToken{refresh: refresh, tokens: tokens, grace: grace, reuse: reuse}
}

// recheckUpstream re-checks the user of rec when an upstream provider signed them in (see
// WithUpstreamRecheck).
func (g RefreshToken) recheckUpstream(ctx context.Context, req *Request, rec store.RefreshToken, user *registry.User) error {
	if g.upstream.users == nil || user.IdentityProvider == "" {
		return nil
	}
	err := g.upstream.users.RecheckUser(ctx, user)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, upstream.ErrUserRefused):
		log := logr.FromContextOrDiscard(ctx)
		log.Info("the identity provider refused the user at refresh: the grant is revoked", "client_id", req.Client.ID,
			"identityProvider", user.IdentityProvider, "error", err.Error())
		oauth2.Audit(ctx, oauth2.AuditEvent{
			Event: oauth2.AuditUpstreamUserRefused, ClientID: req.Client.ID, Subject: rec.Subject,
			GrantType: oauth2.GrantRefreshToken, TokenRef: oauth2.TokenRef(req.RefreshToken),
			Outcome: "failure", Reason: "identity provider " + user.IdentityProvider + ": family revoked",
		})
		until := g.tokens.lifetimes.FamilyRevocationEnd(req.Client, g.tokens.now(), rec.ExpiresAt)
		if rerr := g.upstream.revoke.RevokeFamily(ctx, rec.FamilyID, until); rerr != nil {
			log.Error(rerr, "revoking the grant of a user the identity provider refused failed", "client_id", req.Client.ID)
		}
		return oauth2.ErrInvalidGrant.WithDescription(badRefreshToken).WithCause(err)
	case errors.Is(oauth2.FromStore(err), oauth2.ErrTemporarilyUnavailable):
		return oauth2.FromStore(err)
	}
	logr.FromContextOrDiscard(ctx).Info("the identity provider could not re-check the user at refresh", "client_id", req.Client.ID,
		"identityProvider", user.IdentityProvider, "error", err.Error())
	return oauth2.ErrTemporarilyUnavailable.WithDescription("The identity provider could not be reached; try again later.").WithCause(err)
}

func (RefreshToken) admits() {}

// Type is refresh_token.
func (RefreshToken) Type() string { return oauth2.GrantRefreshToken }

// ConfidentialOnly is false: rotation protects the refresh tokens of public clients.
func (RefreshToken) ConfidentialOnly() bool { return false }

// IssuedEvent is refresh_rotated.
func (RefreshToken) IssuedEvent() string { return oauth2.AuditRefreshRotated }

// Exchange rotates the presented refresh token and issues new tokens.
func (g RefreshToken) Exchange(ctx context.Context, req *Request) (*Response, error) {
	if req.RefreshToken == "" {
		return nil, oauth2.InvalidRequest("The refresh_token parameter is missing.")
	}
	if !token.IsRefreshToken(req.RefreshToken) {
		return nil, oauth2.ErrInvalidGrant.WithDescription(badRefreshToken)
	}
	old := store.HashOf(req.RefreshToken)
	binding := successorBinding(req)
	if rec, ok := g.refresh.KnownRefresh(old); ok {
		if resp, done, err := g.rotateKnown(ctx, req, old, binding, rec); done {
			return resp, err
		}
	}
	// GetRefresh changes nothing, so the admission can wait for the rotation's step (the
	// endpoint applies it before any answer, if it is still pending then).
	rec, err := g.refresh.GetRefresh(ctx, old)
	switch {
	case errors.Is(err, store.ErrReused):
		// Rotated before. Unless the record shows it is another client's token (which must not
		// let one client burn another's grant), the store applies the reuse rule.
		if rec.ClientID != req.Client.ID {
			return nil, oauth2.ErrInvalidGrant.WithDescription(badRefreshToken)
		}
		if err := checkDPoPBinding(req, rec); err != nil {
			return nil, err // a party without the key cannot report reuse and revoke the family
		}
		if err := req.Admission.Admit(ctx); err != nil {
			return nil, err
		}
		err = g.refresh.ReportRefreshReuse(ctx, old, g.grace)
		g.reported(ctx, req, rec, err)
		if next, ok := openSuccessor(req.RefreshToken, binding, err); ok {
			return g.resend(ctx, req, rec, next)
		}
		if err == nil {
			// Active again cannot be (rotation is one way): refuse like any other reuse.
			err = store.ErrConflict
		}
		return nil, refreshError(err)
	case err != nil:
		return nil, refreshError(err)
	}
	if rec.ClientID != req.Client.ID {
		// RFC 6749 10.4: bound to the client it was issued to. Nothing is rotated or revoked,
		// so a client cannot burn another client's grant.
		return nil, oauth2.ErrInvalidGrant.WithDescription(badRefreshToken)
	}
	if err := checkDPoPBinding(req, rec); err != nil {
		return nil, err
	}
	gr, user, err := stillGranted(req, rec)
	if err != nil {
		return nil, err
	}
	return g.rotate(ctx, req, old, binding, rec, gr, user)
}

// stillGranted checks what the token of rec grants against the registry now: the scopes of
// the new access token (narrowScopes), its audiences (grantedResources) and the user, who must still exist and be enabled.
func stillGranted(req *Request, rec store.RefreshToken) (granted, *registry.User, error) {
	scopes, err := narrowScopes(req, rec.Scopes)
	if err != nil {
		return granted{}, nil, err
	}
	audiences, err := grantedResources(req, rec.Resources)
	if err != nil {
		return granted{}, nil, err
	}
	user, ok := req.Snapshot.UserBySubject(rec.Subject)
	if !ok || user.Disabled || !req.Client.AllowsUser(user) {
		return granted{}, nil, oauth2.ErrInvalidGrant.WithDescription(badRefreshToken)
	}
	return granted{scopes: scopes, audiences: audiences}, user, nil
}

// granted is what a refreshed access token carries: its (maybe narrowed) scopes and
// audiences.
type granted struct {
	scopes, audiences []string
}

// checkDPoPBinding refuses a refresh token bound to a DPoP key (a public client's, RFC 9449 5)
// unless the request's verified proof was signed with that key.
func checkDPoPBinding(req *Request, rec store.RefreshToken) error {
	switch {
	case rec.DPoPThumbprint == "":
		return nil
	case req.DPoPThumbprint == "":
		return oauth2.ErrInvalidDPoPProof.WithDescription("The refresh token is bound to a DPoP key: send a DPoP proof signed with it.")
	case subtle.ConstantTimeCompare([]byte(req.DPoPThumbprint), []byte(rec.DPoPThumbprint)) != 1:
		return oauth2.ErrInvalidDPoPProof.WithDescription("The refresh token is bound to another DPoP key.")
	}
	return nil
}

// successorBinding is what a sealed successor is bound to: the client and how it
// authenticated (a retry must come from the same client, authenticated the same way).
func successorBinding(req *Request) string {
	return req.Client.ID + "\x00" + oauth2.AuthenticatedMethod(req.Client, req.TokenRequest)
}

// resend answers the retry of a refresh, within grace of its rotation, with next (the
// successor that rotation issued, of rec's family) and fresh access and ID tokens, after the
// checks a rotation makes; nothing is stored.
func (g RefreshToken) resend(ctx context.Context, req *Request, rec store.RefreshToken, next string) (*Response, error) {
	gr, user, err := stillGranted(req, rec)
	if err != nil {
		return nil, err
	}
	if err := g.recheckUpstream(ctx, req, rec, user); err != nil {
		return nil, err
	}
	resp, err := g.tokens.resend(ctx, UserGrant{
		AccessNotAfter: req.AccessNotAfter(),
		Client:         req.Client, User: user, Snapshot: req.Snapshot, Scopes: gr.scopes, Resources: rec.Resources, Audiences: gr.audiences,
		AuthTime: rec.AuthTime, FamilyID: rec.FamilyID, SessionID: rec.SessionID,
		DPoPThumbprint: req.DPoPThumbprint,
	}, next)
	if err != nil {
		return nil, err
	}
	g.retried(ctx, req, rec)
	return resp, nil
}

// retried audits the answer to a retry within grace.
func (g RefreshToken) retried(ctx context.Context, req *Request, rec store.RefreshToken) {
	oauth2.Audit(ctx, oauth2.AuditEvent{
		Event: oauth2.AuditRefreshRetried, ClientID: req.Client.ID, Subject: rec.Subject,
		GrantType: oauth2.GrantRefreshToken, TokenRef: oauth2.TokenRef(req.RefreshToken),
		AuthMethod: oauth2.AuthenticatedMethod(req.Client, req.TokenRequest),
		Outcome:    "success", Reason: "presented again within the reuse grace: the same successor",
	})
}

// rotateKnown is Exchange from the record that the store knows without a round trip
// (store.KnownRecords: a record never changes, only its state): when the request passes every
// check against it, the tokens are signed and the one RotateRefresh decides (active, rotated
// within the grace window, reused, revoked). done is false when a check fails: the caller
// then reads the record from the store as usual, so that every refusal is answered exactly as
// without a known record.
func (g RefreshToken) rotateKnown(ctx context.Context, req *Request, old store.Hash, binding string, rec store.RefreshToken) (resp *Response, done bool, err error) {
	if rec.ClientID != req.Client.ID || checkDPoPBinding(req, rec) != nil {
		return nil, false, nil //nolint:nilerr // the store's path answers a failed check
	}
	gr, user, err := stillGranted(req, rec)
	if err != nil {
		return nil, false, nil //nolint:nilerr // the store's path answers a failed check
	}
	resp, err = g.rotate(ctx, req, old, binding, rec, gr, user)
	return resp, true, err
}

// rotate signs the new tokens and rotates old (with the record rec) to the new refresh token,
// or answers the successor of old's rotation within grace (a retry).
func (g RefreshToken) rotate(ctx context.Context, req *Request, old store.Hash, binding string, rec store.RefreshToken, gr granted, user *registry.User) (*Response, error) {
	if err := g.recheckUpstream(ctx, req, rec, user); err != nil {
		return nil, err
	}
	// The new refresh token keeps the family's scopes (RFC 6749 6: identical to the presented
	// one); only the access and ID tokens get the narrowed set.
	rot := &rotation{old: old, token: req.RefreshToken, binding: binding, familyScopes: rec.Scopes, familyResources: rec.Resources, familyDPoP: rec.DPoPThumbprint, grace: g.grace, admission: req.Admission}
	resp, err := g.tokens.issue(ctx, UserGrant{
		AccessNotAfter: req.AccessNotAfter(),
		Client:         req.Client, User: user, Snapshot: req.Snapshot, Scopes: gr.scopes, Resources: rec.Resources, Audiences: gr.audiences,
		AuthTime: rec.AuthTime, FamilyID: rec.FamilyID, SessionID: rec.SessionID,
		DPoPThumbprint: req.DPoPThumbprint,
	}, rot, nil)
	if err != nil {
		g.reported(ctx, req, rec, err)
		return nil, refreshError(err)
	}
	if rot.retried {
		g.retried(ctx, req, rec)
	}
	return resp, nil
}

// reported audits and reports a reuse when the store answered err = ErrReused (it revoked the
// family of rec).
func (g RefreshToken) reported(ctx context.Context, req *Request, rec store.RefreshToken, err error) {
	if !errors.Is(err, store.ErrReused) {
		return
	}
	oauth2.Audit(ctx, oauth2.AuditEvent{
		Event: oauth2.AuditRefreshReuseDetected, ClientID: req.Client.ID, Subject: rec.Subject,
		GrantType: oauth2.GrantRefreshToken, TokenRef: oauth2.TokenRef(req.RefreshToken),
		Outcome: "failure", Reason: "family revoked",
	})
	if g.reuse != nil {
		g.reuse.RefreshReuseDetected(req.Client.ID)
	}
}

// refreshError maps an error of the grant with oauth2.FromStore; a store error that is
// invalid_grant gets the grant's one description.
func refreshError(err error) error {
	mapped := oauth2.FromStore(err)
	var oe *oauth2.Error
	if !errors.As(err, &oe) && errors.Is(mapped, oauth2.ErrInvalidGrant) {
		return oauth2.ErrInvalidGrant.WithDescription(badRefreshToken).WithCause(err)
	}
	return mapped
}

// narrowScopes returns the scopes of the refreshed tokens: the family's when the request names
// none, else the requested ones, each of which must be among the family's (invalid_scope
// otherwise). Either way every scope must still pass the client's scope policy.
func narrowScopes(req *Request, family []string) ([]string, error) {
	if strings.Trim(req.Scope, " ") == "" {
		for _, name := range family {
			if err := oauth2.CheckScope(req.Snapshot, req.Client, name); err != nil {
				return nil, err
			}
		}
		return family, nil
	}
	// The dispatcher has applied the client's scope policy to the requested scopes.
	for _, name := range req.Scopes {
		if !slices.Contains(family, name) {
			return nil, oauth2.ErrInvalidScope.WithDescription(fmt.Sprintf("Scope %.64q was not granted to the refresh token.", name))
		}
	}
	return req.Scopes, nil
}
