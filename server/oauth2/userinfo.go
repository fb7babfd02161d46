package oauth2

import (
	"net/http"
	"slices"
	"strings"

	"github.com/latchkey-dev/latchkey/server/token"
)

// serveUserinfo is the OpenID Connect UserInfo endpoint (OIDC Core 5.3), GET or POST with a
// Bearer access token (RFC 6750 2.1, or 2.2 on POST). It answers sub and the claims the
// token's scopes release, as JSON. The token must be valid and active (401 invalid_token),
// carry openid (403 insufficient_scope) and act for a user: a client_credentials token is 401
// invalid_token, since no user stands behind it whatever its scopes.
func (e *tokenEndpoints) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	tok, err := bearerToken(r, e.maxBody)
	if err != nil {
		writeBearerError(w, r, err)
		return
	}
	claims, err := e.verifier.verify(tok)
	if err != nil {
		writeBearerError(w, r, errInvalidToken("The access token is invalid or expired."))
		return
	}
	snap := e.registry.Snapshot()
	active, err := e.verifier.active(r.Context(), snap, claims)
	if err != nil {
		writeBearerError(w, r, storeUnavailable(err))
		return
	}
	if !active {
		writeBearerError(w, r, errInvalidToken("The access token was revoked."))
		return
	}
	scopes := strings.Fields(claims.Scope)
	if !slices.Contains(scopes, scopeOpenID) {
		writeBearerError(w, r, &bearerError{code: "insufficient_scope", status: http.StatusForbidden,
			description: "The access token lacks the openid scope.", scope: scopeOpenID})
		return
	}
	user, ok := snap.UserBySubject(claims.Subject)
	if !claims.forUser() || !ok {
		writeBearerError(w, r, errInvalidToken("The access token does not act for a user."))
		return
	}
	writeNoStoreJSON(w, r, &userinfoBody{
		Subject: user.Subject, UserClaims: token.NewUserClaims(user, releasedClaims(snap, scopes)),
	})
}

// userinfoBody is the JSON of a UserInfo answer: sub and the released claims.
type userinfoBody struct {
	Subject string `json:"sub"`
	token.UserClaims
}
