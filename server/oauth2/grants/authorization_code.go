package grants

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// badCode is the description of the invalid_grant answers about the code itself, so that the
// answer does not tell an unknown code from an expired, used or another client's one.
const badCode = "The authorization code is invalid, expired, used or was issued to another client."

// codeStore takes authorization codes and revokes the grant of a replayed one; store.Store
// implements it.
type codeStore interface {
	KnownCode(h store.Hash) (store.Code, bool)
	codeTaker
	RevokeFamily(ctx context.Context, familyID string, until time.Time) error
}

// codeTaker takes codes, after an admission or not; store.Store implements it.
type codeTaker interface {
	TakeCode(ctx context.Context, h store.Hash, clientID string) (store.Code, error)
	TakeCodeAdmitted(ctx context.Context, adm store.Admission, h store.Hash, clientID string) (store.ThrottleResult, store.Code, error)
}

// takeCode takes the code of clientID, with the admission in the same store step when it is
// pending.
func takeCode(ctx context.Context, codes codeTaker, a *Admission, h store.Hash, clientID string) (store.Code, error) {
	adm := a.pending()
	if adm == nil {
		return codes.TakeCode(ctx, h, clientID)
	}
	res, code, err := codes.TakeCodeAdmitted(ctx, *adm, h, clientID)
	return code, admitted(ctx, a, res, err)
}

// replayReporter is told of a code replayed by its own client; oauth2.ClientEvents implements
// it.
type replayReporter interface {
	AuthorizationCodeReplayed(clientID string)
}

// AuthorizationCode is RFC 6749 4.1.3 with PKCE (RFC 7636) and OpenID Connect Core 3.1.3: a
// code from the authorization endpoint is exchanged, once, for the user's tokens. Public
// clients identify themselves by client_id alone (auth method none), so the grant is open to
// them; PKCE is what binds the code to the client instance that asked for it.
type AuthorizationCode struct {
	codes     codeStore
	tokens    *TokenSet
	lifetimes oauth2.Lifetimes
	now       func() time.Time
	replays   replayReporter
}

var _ Grant = AuthorizationCode{}

// NewAuthorizationCode returns the grant over the codes of codes, issuing with tokens;
// lifetimes decide how long a replayed code's revocation is remembered, replays (may be nil) is
// told of each replay.
func NewAuthorizationCode(codes codeStore, tokens *TokenSet, lifetimes oauth2.Lifetimes, now func() time.Time, replays replayReporter) AuthorizationCode {
	if replays == nil {
		replays = oauth2.NoClientEvents{}
	}
	return AuthorizationCode{codes: codes, tokens: tokens, lifetimes: lifetimes, now: now, replays: replays}
}

func (AuthorizationCode) admits() {}

// Type is authorization_code.
func (AuthorizationCode) Type() string { return oauth2.GrantAuthorizationCode }

// ConfidentialOnly is false: PKCE protects the codes of public clients.
func (AuthorizationCode) ConfidentialOnly() bool { return false }

// IssuedEvent is token_issued.
func (AuthorizationCode) IssuedEvent() string { return oauth2.AuditTokenIssued }

// Exchange takes the code and issues the user's tokens.
func (g AuthorizationCode) Exchange(ctx context.Context, req *Request) (*Response, error) {
	if req.Code == "" {
		return nil, oauth2.InvalidRequest("The code parameter is missing.")
	}
	if !oauth2.WellFormedSecret(req.Code) {
		return nil, oauth2.ErrInvalidGrant.WithDescription(badCode)
	}
	h := store.HashOf(req.Code)
	if code, ok := g.codes.KnownCode(h); ok {
		if resp, done, err := g.exchangeKnown(ctx, req, h, code); done {
			return resp, err
		}
	}
	// The code is taken (used up) before anything else is checked, by its own (authenticated)
	// client only: a failed exchange burns it, so it cannot be tried again with other
	// parameters, and a party that saw the code cannot burn it or revoke its grant under another
	// client ID (the store answers ErrNotFound for another client's code and leaves it be).
	code, err := takeCode(ctx, g.codes, req.Admission, h, req.Client.ID)
	switch {
	case errors.Is(err, store.ErrAlreadyUsed):
		// A public client's ID proves nothing: a replay revokes the grant only with the code's
		// PKCE verifier, so a party that merely saw a used code cannot revoke a user's session.
		if checkVerifier(req.Client, code, req.CodeVerifier) == nil {
			g.revokeReplayed(ctx, req.Client, code)
		}
		return nil, oauth2.ErrInvalidGrant.WithDescription(badCode).WithCause(err)
	case errors.Is(err, store.ErrNotFound):
		return nil, oauth2.ErrInvalidGrant.WithDescription(badCode)
	case err != nil:
		return nil, err
	}
	if code.ClientID != req.Client.ID { // the store's contract; checked again as a backstop
		return nil, oauth2.ErrInvalidGrant.WithDescription(badCode)
	}
	if err := checkRedirectURI(req.Client, code.RedirectURI, req.RedirectURI); err != nil {
		return nil, err
	}
	if err := checkVerifier(req.Client, code, req.CodeVerifier); err != nil {
		return nil, err
	}
	user, ok := req.Snapshot.UserBySubject(code.Subject)
	if !ok || user.Disabled {
		return nil, oauth2.ErrInvalidGrant.WithDescription("The user of the authorization code can no longer sign in.")
	}
	ug, err := g.userGrant(ctx, req, code, user)
	if err != nil {
		return nil, err
	}
	return g.tokens.Issue(ctx, ug)
}

// exchangeKnown is Exchange from the code's record that the store knows without a round trip
// (store.KnownRecords: a record never changes, only its state): when the request passes every
// check against it, the tokens are signed first and the code is taken last, in the step that
// stores the refresh token (store.RedeemCode), so the exchange costs one store call and a
// signing failure does not use the code up. done is false when a check fails: the caller then
// takes the code and checks as usual, so that the failure burns the code and is answered
// exactly as without a known record.
func (g AuthorizationCode) exchangeKnown(ctx context.Context, req *Request, h store.Hash, code store.Code) (resp *Response, done bool, err error) {
	if code.ClientID != req.Client.ID || checkRedirectURI(req.Client, code.RedirectURI, req.RedirectURI) != nil ||
		checkVerifier(req.Client, code, req.CodeVerifier) != nil {
		return nil, false, nil //nolint:nilerr // the store's path answers a failed check
	}
	user, ok := req.Snapshot.UserBySubject(code.Subject)
	if !ok || user.Disabled {
		return nil, false, nil
	}
	ug, err := g.userGrant(ctx, req, code, user)
	if err != nil {
		return nil, false, nil //nolint:nilerr // the store's path answers a failed check
	}
	resp, err = g.tokens.issue(ctx, ug, nil, &redemption{code: h, admission: req.Admission})
	switch {
	case errors.Is(err, store.ErrAlreadyUsed):
		// A replay, with the code's verifier (checked above): what the first exchange issued
		// is revoked; what this one signed is discarded.
		g.revokeReplayed(ctx, req.Client, code)
		return nil, true, oauth2.ErrInvalidGrant.WithDescription(badCode).WithCause(err)
	case errors.Is(err, store.ErrNotFound):
		return nil, true, oauth2.ErrInvalidGrant.WithDescription(badCode)
	}
	return resp, true, err
}

// userGrant is what the exchange of code issues to user.
// The token request may narrow the code's resources, never widen them (invalid_target).
func (g AuthorizationCode) userGrant(ctx context.Context, req *Request, code store.Code, user *registry.User) (UserGrant, error) {
	audiences, err := grantedResources(req, code.Resources)
	if err != nil {
		return UserGrant{}, err
	}
	return UserGrant{
		AccessNotAfter: req.AccessNotAfter(),
		Client:         req.Client, User: user, Snapshot: req.Snapshot,
		Scopes:    oauth2.StillAllowed(ctx, req.Snapshot, req.Client, code.Scopes),
		Resources: code.Resources, Audiences: audiences,
		AuthTime: code.AuthTime, Nonce: code.Nonce, FamilyID: code.FamilyID, SessionID: code.SessionID,
		DPoPThumbprint: req.DPoPThumbprint,
	}, nil
}

// grantedResources returns the audiences of a grant's new access token: the request's
// resources when it names some (each among granted, when the grant holds resources), else
// granted. The granted resources must all still be ones the client may reach: a grant whose
// resource the client lost is refused rather than widened to every audience.
func grantedResources(req *Request, granted []string) ([]string, error) {
	if _, err := oauth2.AllowedResources(req.Snapshot, req.Client, granted); err != nil {
		return nil, err
	}
	return oauth2.NarrowResources(granted, req.Resources)
}

// revokeReplayed revokes what the first exchange of a replayed code issued (RFC 6749 4.1.2):
// the refresh token family of the code and, through it, the access tokens. Only the code's own
// client gets here (TakeCode), with the code's verifier when it had a challenge. The replay is
// audited and reported.
func (g AuthorizationCode) revokeReplayed(ctx context.Context, client *registry.Client, code store.Code) {
	log := logr.FromContextOrDiscard(ctx)
	oauth2.Audit(ctx, oauth2.AuditEvent{Event: oauth2.AuditCodeReplayed, ClientID: client.ID, Subject: code.Subject,
		GrantType: oauth2.GrantAuthorizationCode, Outcome: "failure", Reason: "grant of the first exchange revoked"})
	g.replays.AuthorizationCodeReplayed(client.ID)
	if code.FamilyID == "" {
		return
	}
	until := g.lifetimes.FamilyRevocationEnd(client, g.now(), time.Time{})
	if err := g.codes.RevokeFamily(ctx, code.FamilyID, until); err != nil {
		log.Error(err, "revoking the grant of a replayed authorization code failed", "client_id", code.ClientID)
		return
	}
	log.Info("authorization code replayed: its grant is revoked", "client_id", code.ClientID, "presented_by", client.ID)
}

// checkRedirectURI: when the authorization request named a redirect URI, the token request
// must repeat it exactly (RFC 6749 4.1.3); when it did not, a redirect_uri that is sent must
// still be one of the client's.
func checkRedirectURI(c *registry.Client, codeURI, sent string) error {
	switch {
	case codeURI != "" && sent != codeURI,
		codeURI == "" && sent != "" && !slices.Contains(c.RedirectURIs, sent):
		return oauth2.ErrInvalidGrant.WithDescription("The redirect_uri does not match the authorization request.")
	}
	return nil
}

// checkVerifier applies PKCE (RFC 7636 4.6): a code issued with a challenge needs the matching
// verifier; a code issued without one must not be presented with a verifier (a downgrade), and
// is refused when the client's policy now requires PKCE.
func checkVerifier(c *registry.Client, code store.Code, verifier string) error {
	if code.CodeChallenge == "" {
		switch {
		case verifier != "":
			return oauth2.ErrInvalidGrant.WithDescription("The authorization request had no code_challenge, so code_verifier is not allowed.")
		case oauth2.PKCERequired(c):
			return oauth2.ErrInvalidGrant.WithDescription("The client must use PKCE.")
		}
		return nil
	}
	if verifier == "" {
		return oauth2.ErrInvalidGrant.WithDescription("The code_verifier parameter is missing.")
	}
	if !oauth2.VerifyCodeChallenge(code.CodeChallenge, code.CodeChallengeMethod, verifier) {
		return oauth2.ErrInvalidGrant.WithDescription("The code_verifier does not match the code_challenge.")
	}
	return nil
}
