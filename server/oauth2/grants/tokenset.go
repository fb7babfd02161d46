package grants

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
	"github.com/latchkey-dev/latchkey/server/tracing"
)

// UserGrant is what a grant that acts for a user hands to TokenSet.Issue.
type UserGrant struct {
	Client   *registry.Client
	User     *registry.User // the resource owner
	Snapshot *registry.Snapshot
	Scopes   []string // granted scopes (already checked)
	// Resources are the resources granted to the family (RFC 8707), kept by its refresh
	// tokens; nil: every audience of the client. Audiences are those of this access token
	// (a subset of Resources); nil: Resources.
	Resources, Audiences []string
	AuthTime             time.Time // when the user authenticated
	Nonce                string    // OIDC nonce from the authorization request, "" if none
	FamilyID             string    // refresh token family / grant ID; "" starts a new one
	// SessionID is the OP session the grant was started in (sid); "" when none.
	SessionID string
	// AccessNotAfter bounds the access token's expiry (Request.AccessNotAfter); zero: none.
	AccessNotAfter time.Time
	// DPoPThumbprint binds the access token to the request's DPoP key (cnf.jkt) and, for a
	// public client, a new family's refresh token too; "" issues Bearer tokens.
	DPoPThumbprint string
}

// tokenSigner signs access and ID tokens; *token.Issuer implements it.
type tokenSigner interface {
	IssueAccessToken(req token.AccessTokenRequest) (token.AccessToken, error)
	IssueIDToken(req token.IDTokenRequest) (string, error)
}

var _ tokenSigner = (*token.Issuer)(nil)

// refreshWriter stores refresh tokens, and takes the code whose exchange issues them;
// store.Store implements it.
type refreshWriter interface {
	CreateRefresh(ctx context.Context, h store.Hash, rt store.RefreshToken) error
	RotateRefresh(ctx context.Context, old, h store.Hash, next store.RefreshToken, sealed []byte, grace time.Duration) (store.RefreshToken, error)
	codeTaker
	RedeemCode(ctx context.Context, h store.Hash, clientID string, rh store.Hash, rt store.RefreshToken) (store.Code, error)
	RedeemCodeAdmitted(ctx context.Context, adm store.Admission, h store.Hash, clientID string, rh store.Hash, rt store.RefreshToken) (store.ThrottleResult, store.Code, error)
	RotateRefreshAdmitted(ctx context.Context, adm store.Admission, old, h store.Hash, next store.RefreshToken, sealed []byte, grace time.Duration) (store.ThrottleResult, store.RefreshToken, error)
}

// TokenSet issues the tokens of a user grant: an access token (latchkey_family = the family
// ID, sid = the OP session when there is one), an ID
// token when openid is granted, and a refresh token when the client may use the refresh_token
// grant. It is safe for concurrent use.
type TokenSet struct {
	signer    tokenSigner
	refresh   refreshWriter
	now       func() time.Time
	lifetimes oauth2.Lifetimes
}

// NewTokenSet returns a TokenSet signing with signer and keeping refresh tokens in refresh;
// lifetimes are the server's defaults (with their defaults applied).
func NewTokenSet(signer tokenSigner, refresh refreshWriter, lifetimes oauth2.Lifetimes, now func() time.Time) *TokenSet {
	return &TokenSet{signer: signer, refresh: refresh, now: now, lifetimes: lifetimes}
}

// rotation is the refresh token a refresh_token grant presented: Issue rotates it instead of
// starting a family.
type rotation struct {
	old store.Hash
	// token is the presented token itself and binding the request's successorBinding: the new
	// token is sealed with them beside the rotation (token.SealSuccessor), so that a retry of
	// this request within grace gets it again.
	token, binding string
	// retried is set by issue when the store answered the successor an earlier rotation of
	// old kept (a retry within grace) instead of rotating.
	retried bool
	// familyScopes are the scopes of the new refresh token: the family's, which the grant's
	// (maybe narrowed) Scopes do not change.
	familyScopes []string
	// familyResources are the family's resources, kept like familyScopes.
	familyResources []string
	// familyDPoP is the family's DPoP binding, kept by the new token (a family is bound, or
	// not, when it starts).
	familyDPoP string
	grace      time.Duration
	// admission, when pending, goes into the rotation's store step.
	admission *Admission
}

// redemption is the code an authorization_code grant presented, not taken yet: Issue takes it
// in the step that stores the refresh token (store.RedeemCode), after signing.
type redemption struct {
	code store.Hash
	// admission, when pending, goes into the redemption's store step.
	admission *Admission
}

// Issue issues the tokens of a user grant; FamilyID "" starts a new family.
func (s *TokenSet) Issue(ctx context.Context, g UserGrant) (*Response, error) {
	return s.issue(ctx, g, nil, nil)
}

// issue issues the tokens. With rot it rotates rot.old to the new refresh token (which is then
// always issued); with red it takes the code red.code of the client (and stores the new refresh
// token, if any, in the same step). Either way the store has the last word, in one call: when
// it refuses, issue fails with the store's error and what it signed is discarded.
func (s *TokenSet) issue(ctx context.Context, g UserGrant, rot *rotation, red *redemption) (*Response, error) {
	if g.Client == nil || g.User == nil || g.Snapshot == nil {
		return nil, oauth2.ErrServerError.WithCause(errors.New("user grant without client, user or snapshot"))
	}
	if g.User.Subject == "" {
		return nil, oauth2.ErrServerError.WithCause(errors.New("user without a subject"))
	}
	if g.FamilyID == "" {
		id, err := token.NewFamilyID()
		if err != nil {
			return nil, oauth2.ErrServerError.WithCause(err)
		}
		g.FamilyID = id
	}
	resp, err := s.sign(ctx, g)
	if err != nil {
		return nil, err
	}

	if rot == nil && !refreshAllowed(g.Client) {
		if red != nil {
			if _, err := takeCode(ctx, s.refresh, red.admission, red.code, g.Client.ID); err != nil {
				return nil, err
			}
		}
		return resp, nil
	}
	rt, rec, err := s.newRefreshToken(g)
	if err != nil {
		return nil, oauth2.ErrServerError.WithCause(err)
	}
	switch {
	case rot != nil:
		return s.rotate(ctx, resp, rot, rt, rec)
	case red != nil:
		if adm := red.admission.pending(); adm != nil {
			var res store.ThrottleResult
			res, _, err = s.refresh.RedeemCodeAdmitted(ctx, *adm, red.code, g.Client.ID, store.HashOf(rt), rec)
			err = admitted(ctx, red.admission, res, err)
		} else {
			_, err = s.refresh.RedeemCode(ctx, red.code, g.Client.ID, store.HashOf(rt), rec)
		}
	default:
		err = s.refresh.CreateRefresh(ctx, store.HashOf(rt), rec)
	}
	if err != nil {
		return nil, err
	}
	resp.RefreshToken = rt
	return resp, nil
}

// rotate rotates rot.old to the new refresh token rt (record rec), keeping rt sealed for
// rot's holder, and answers resp with it. When the store answers instead the successor that
// an earlier rotation of rot.old kept (the same client retrying within grace, its answer
// lost), resp gets that successor, and nothing was stored. A successor that does not open
// (another client, another way of authenticating) is the store's ErrConflict.
func (s *TokenSet) rotate(ctx context.Context, resp *Response, rot *rotation, rt string, rec store.RefreshToken) (*Response, error) {
	rec.Scopes = slices.Clone(rot.familyScopes)
	rec.Resources = slices.Clone(rot.familyResources)
	rec.DPoPThumbprint = rot.familyDPoP
	sealed, err := token.SealSuccessor(rot.token, rt, rot.binding)
	if err != nil {
		return nil, oauth2.ErrServerError.WithCause(err)
	}
	if adm := rot.admission.pending(); adm != nil {
		var res store.ThrottleResult
		res, _, err = s.refresh.RotateRefreshAdmitted(ctx, *adm, rot.old, store.HashOf(rt), rec, sealed, rot.grace)
		err = admitted(ctx, rot.admission, res, err)
	} else {
		_, err = s.refresh.RotateRefresh(ctx, rot.old, store.HashOf(rt), rec, sealed, rot.grace)
	}
	if err != nil {
		next, ok := openSuccessor(rot.token, rot.binding, err)
		if !ok {
			return nil, err
		}
		rot.retried = true
		rt = next
	}
	resp.RefreshToken = rt
	return resp, nil
}

// openSuccessor opens the successor that err (the store's answer to a presentation of the
// refresh token presented) carries, if it does and it opens for presented and binding.
func openSuccessor(presented, binding string, err error) (string, bool) {
	var kept *store.SuccessorError
	if !errors.As(err, &kept) {
		return "", false
	}
	next, oerr := token.OpenSuccessor(presented, kept.Sealed, binding)
	return next, oerr == nil
}

// resend answers a retry within grace with next, the successor the store kept (opened by
// the caller): fresh access and ID tokens of g (of next's family) and next; nothing is stored.
func (s *TokenSet) resend(ctx context.Context, g UserGrant, next string) (*Response, error) {
	if g.Client == nil || g.User == nil || g.Snapshot == nil || g.FamilyID == "" {
		return nil, oauth2.ErrServerError.WithCause(errors.New("retried grant without client, user, snapshot or family"))
	}
	resp, err := s.sign(ctx, g)
	if err != nil {
		return nil, err
	}
	resp.RefreshToken = next
	return resp, nil
}

// sign signs the access token and, when openid is granted, the ID token of g.
func (s *TokenSet) sign(ctx context.Context, g UserGrant) (*Response, error) {
	// The access token carries the scopes its audiences own (the refresh token keeps the
	// family's); the ID token releases the claims of every granted scope.
	scopes := oauth2.ResourceScopes(g.Snapshot, g.audiences(), g.Scopes)
	resp := &Response{Scope: scopes}

	// Sign first, store last: a signing failure (no key yet: 503, retry) must not use up a
	// rotation, or the client's retry with the same refresh token would count as reuse and
	// revoke the family. A lost rotation discards what was signed.
	_, span := tracing.Start(ctx, spanSignAccessToken)
	at, err := s.signer.IssueAccessToken(token.AccessTokenRequest{
		Client: g.Client, Subject: g.User.Subject, Scopes: scopes, Audiences: g.audiences(), FamilyID: g.FamilyID, SessionID: g.SessionID, NotAfter: g.AccessNotAfter,
		DPoPThumbprint: g.DPoPThumbprint,
	})
	tracing.End(span, err)
	if err != nil {
		return nil, oauth2.FromStore(err)
	}
	resp.AccessToken, resp.AccessTokenID, resp.ExpiresIn = at.Token, at.ID, at.ExpiresIn

	if slices.Contains(g.Scopes, oauth2.ScopeOpenID) {
		_, span := tracing.Start(ctx, spanSignIDToken)
		resp.IDToken, err = s.signer.IssueIDToken(token.IDTokenRequest{
			Client: g.Client, User: g.User, AuthTime: g.AuthTime, Nonce: g.Nonce, SessionID: g.SessionID,
			AccessToken: at.Token, Release: oauth2.ReleasedClaims(g.Snapshot, g.Scopes), Lifetime: s.lifetimes.IDToken,
		})
		tracing.End(span, err)
		if err != nil {
			return nil, oauth2.FromStore(err)
		}
	}
	return resp, nil
}

// admitted is the error of an admitted store step: the admission's refusal (429) when it
// refused; else the operation's error (its verdict, or the step's failure, which leaves the
// admission's outcome unknown and fails the request anyway).
func admitted(ctx context.Context, a *Admission, res store.ThrottleResult, err error) error {
	switch {
	case res.Refused():
		return a.answer(ctx, res, nil)
	case err != nil && !verdict(err):
		a.done = true
		return err
	}
	if aerr := a.answer(ctx, res, nil); aerr != nil {
		return aerr
	}
	return err
}

// verdict reports whether err is a store operation's answer about its record, rather than a
// failure to run it.
func verdict(err error) bool {
	for _, v := range []error{store.ErrNotFound, store.ErrConflict, store.ErrAlreadyUsed, store.ErrReused, store.ErrRevoked} {
		if errors.Is(err, v) {
			return true
		}
	}
	return false
}

// refreshAllowed is the refresh token rule: a user grant issues a refresh token iff the
// client lists the refresh_token grant type. offline_access is accepted but not required.
func refreshAllowed(c *registry.Client) bool { return c.AllowsGrant(oauth2.GrantRefreshToken) }

// newRefreshToken returns a refresh token of the grant's family and its record.
func (s *TokenSet) newRefreshToken(g UserGrant) (string, store.RefreshToken, error) {
	tok, err := token.NewRefreshToken(g.FamilyID)
	if err != nil {
		return "", store.RefreshToken{}, err
	}
	now := s.now()
	rec := store.RefreshToken{
		FamilyID: g.FamilyID, ClientID: g.Client.ID, Subject: g.User.Subject,
		Scopes: slices.Clone(g.Scopes), Resources: slices.Clone(g.Resources), AuthTime: g.AuthTime, IssuedAt: now, ExpiresAt: now.Add(s.lifetimes.Refresh(g.Client)),
		SessionID: g.SessionID,
	}
	if oauth2.IsPublic(g.Client) {
		// RFC 9449 5: a public client's refresh tokens are bound to its key; a confidential
		// client's are already bound to its credentials.
		rec.DPoPThumbprint = g.DPoPThumbprint
	}
	return tok, rec, nil
}

// audiences are the aud of the grant's access token: Audiences, else Resources (nil: the
// client's audiences).
func (g UserGrant) audiences() []string {
	if g.Audiences != nil {
		return g.Audiences
	}
	return g.Resources
}
