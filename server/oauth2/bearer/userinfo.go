package bearer

import (
	"net/http"
	"slices"
	"strings"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/token"
)

// serveUserinfo is the OpenID Connect UserInfo endpoint (OIDC Core 5.3), GET or POST with a
// Bearer access token (RFC 6750 2.1, or 2.2 on POST). It answers sub and the claims the
// token's scopes release, as JSON. The token must be valid and active (401 invalid_token),
// carry openid (403 insufficient_scope) and act for a user: a client_credentials token is 401
// invalid_token, since no user stands behind it whatever its scopes.
func (e *Endpoints) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	describe := oauth2.Challenge{Describe: true}
	tok, err := accessToken(r, e.maxBody)
	switch {
	case err != nil:
		oauth2.WriteBearerError(w, r, err, describe)
		return
	case tok == "":
		oauth2.WriteBearerError(w, r, oauth2.ErrInvalidToken.WithDescription("The request has no access token."),
			oauth2.Challenge{NoToken: true})
		return
	}
	claims, err := e.verifier.Verify(tok)
	if err != nil {
		oauth2.WriteBearerError(w, r, oauth2.ErrInvalidToken.WithDescription("The access token is invalid or expired."), describe)
		return
	}
	snap := e.registry.Snapshot()
	active, err := e.active(r.Context(), snap, claims)
	if err != nil {
		oauth2.WriteError(w, r, oauth2.FromStore(err))
		return
	}
	if !active {
		oauth2.WriteBearerError(w, r, oauth2.ErrInvalidToken.WithDescription("The access token was revoked."), describe)
		return
	}
	scopes := strings.Fields(claims.Scope)
	if !slices.Contains(scopes, oauth2.ScopeOpenID) {
		oauth2.WriteBearerError(w, r, oauth2.ErrInsufficientScope.WithDescription("The access token lacks the openid scope."),
			oauth2.Challenge{Describe: true, Scope: oauth2.ScopeOpenID})
		return
	}
	user, ok := snap.UserBySubject(claims.Subject)
	if !claims.ForUser() || !ok {
		oauth2.WriteBearerError(w, r, oauth2.ErrInvalidToken.WithDescription("The access token does not act for a user."), describe)
		return
	}
	oauth2.WriteJSON(w, r, http.StatusOK, &userinfoBody{
		Subject: user.Subject, UserClaims: token.NewUserClaims(user, oauth2.ReleasedClaims(snap, scopes)),
	})
}

// userinfoBody is the JSON of a UserInfo answer: sub and the released claims.
type userinfoBody struct {
	Subject string `json:"sub"`
	token.UserClaims
}
