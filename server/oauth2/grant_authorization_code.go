package oauth2

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
)

// badCode is the description of the invalid_grant answers about the code itself, so that the
// answer does not tell an unknown code from an expired, used or another client's one.
const badCode = "The authorization code is invalid, expired, used or was issued to another client."

// authorizationCodeGrant is RFC 6749 4.1.3 with PKCE (RFC 7636) and OpenID Connect Core 3.1.3:
// a code from the authorization endpoint is exchanged, once, for the user's tokens. Public
// clients identify themselves by client_id alone (auth method none), so the grant is open to
// them; PKCE is what binds the code to the client instance that asked for it.
type authorizationCodeGrant struct {
	tokens *tokenService
}

var _ Grant = authorizationCodeGrant{}

func (authorizationCodeGrant) Type() string           { return grantAuthorizationCode }
func (authorizationCodeGrant) ConfidentialOnly() bool { return false }

func (g authorizationCodeGrant) Exchange(ctx context.Context, req *GrantRequest) (*TokenResponse, error) {
	if req.Code == "" {
		return nil, invalidRequest("The code parameter is missing.")
	}
	if !wellFormedSecret(req.Code) {
		return nil, ErrInvalidGrant.WithDescription(badCode)
	}
	// The code is taken (used up) before anything else is checked: a failed exchange burns it,
	// so it cannot be tried again with other parameters.
	st := g.tokens.store
	code, err := st.TakeCode(ctx, store.HashOf(req.Code))
	switch {
	case errors.Is(err, store.ErrAlreadyUsed):
		g.revokeReplayed(ctx, req.Client, code)
		return nil, ErrInvalidGrant.WithDescription(badCode).WithCause(err)
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrInvalidGrant.WithDescription(badCode)
	case err != nil:
		return nil, storeFailure(err)
	}
	if code.ClientID != req.Client.ID {
		return nil, ErrInvalidGrant.WithDescription(badCode)
	}
	if err := checkRedirectURI(req.Client, code.RedirectURI, req.RedirectURI); err != nil {
		return nil, err
	}
	if err := checkVerifier(req.Client, code, req.CodeVerifier); err != nil {
		return nil, err
	}
	user, ok := req.Snapshot.UserBySubject(code.Subject)
	if !ok || user.Disabled {
		return nil, ErrInvalidGrant.WithDescription("The user of the authorization code can no longer sign in.")
	}
	return g.tokens.issueForUser(ctx, userGrant{
		Client: req.Client, User: user, Scopes: stillAllowed(ctx, req.Snapshot, req.Client, code.Scopes),
		AuthTime: code.AuthTime, Nonce: code.Nonce, FamilyID: code.FamilyID,
	})
}

// revokeReplayed revokes what the first exchange of a replayed code issued (RFC 6749 4.1.2):
// the refresh token family of the code and, through it, the access tokens.
func (g authorizationCodeGrant) revokeReplayed(ctx context.Context, client *registry.Client, code store.Code) {
	log := logr.FromContextOrDiscard(ctx)
	if code.FamilyID == "" {
		return
	}
	lifetime := max(g.tokens.refreshLifetime, client.RefreshTokenLifetime, client.AccessTokenLifetime,
		token.DefaultAccessTokenLifetime)
	until := g.tokens.now().Add(lifetime)
	if err := g.tokens.store.RevokeFamily(ctx, code.FamilyID, until); err != nil {
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
		return ErrInvalidGrant.WithDescription("The redirect_uri does not match the authorization request.")
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
			return ErrInvalidGrant.WithDescription("The authorization request had no code_challenge, so code_verifier is not allowed.")
		case pkceRequired(c):
			return ErrInvalidGrant.WithDescription("The client must use PKCE.")
		}
		return nil
	}
	if verifier == "" {
		return ErrInvalidGrant.WithDescription("The code_verifier parameter is missing.")
	}
	if !verifyCodeChallenge(code.CodeChallenge, code.CodeChallengeMethod, verifier) {
		return ErrInvalidGrant.WithDescription("The code_verifier does not match the code_challenge.")
	}
	return nil
}

// stillAllowed drops the scopes of a code that the client may no longer have (the registry
// changed since the authorization request); the grant is narrowed, never refused.
func stillAllowed(ctx context.Context, snap *registry.Snapshot, c *registry.Client, scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if err := checkScope(snap, c, s); err != nil {
			logr.FromContextOrDiscard(ctx).V(1).Info("scope of an authorization code dropped",
				"client_id", c.ID, "scope", s, "reason", err.Error())
			continue
		}
		out = append(out, s)
	}
	return out
}

// codeTTL is the lifetime of the client's codes.
func codeTTL(c *registry.Client) time.Duration {
	if c.CodeLifetime > 0 {
		return c.CodeLifetime
	}
	return DefaultCodeLifetime
}
