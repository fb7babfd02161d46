package bearer

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/latchkey-dev/latchkey/server/dpop"
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
	tok, isDPoP, err := dpopAccessToken(r)
	if isDPoP {
		describe.DPoPAlgs = strings.Join(dpop.AlgorithmNames(), " ")
	} else if err == nil {
		tok, err = accessToken(r, e.maxBody)
	}
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
	if err := e.checkDPoP(r, tok, isDPoP, claims); err != nil {
		oauth2.WriteBearerError(w, r, err, describe)
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

// dpopAccessToken returns the token of an Authorization header with the DPoP scheme (RFC 9449
// 7.1); isDPoP is false for any other header.
func dpopAccessToken(r *http.Request) (tok string, isDPoP bool, err error) {
	auth := r.Header.Values("Authorization")
	if len(auth) != 1 {
		return "", false, nil // none, or several: accessToken answers
	}
	scheme, tok, _ := strings.Cut(auth[0], " ")
	if !strings.EqualFold(scheme, dpop.HeaderName) {
		return "", false, nil
	}
	tok = strings.TrimLeft(tok, " ")
	if !oauth2.IsB64Token(tok) {
		return "", true, oauth2.InvalidRequest("The DPoP credentials are malformed.")
	}
	return tok, true, nil
}

// checkDPoP applies RFC 9449 7 to a verified token: a bound token needs the DPoP scheme and a
// proof of its key over this request and the token (ath); a Bearer token is refused with the
// DPoP scheme, and a bound token as Bearer (its holder must prove the key).
func (e *Endpoints) checkDPoP(r *http.Request, tok string, isDPoP bool, claims *token.AccessTokenClaims) error {
	jkt := claims.DPoPThumbprint()
	switch {
	case !isDPoP && jkt == "":
		return nil
	case !isDPoP:
		return oauth2.ErrInvalidToken.WithDescription("The access token is bound to a DPoP key: send it with the DPoP scheme and a proof.")
	case jkt == "":
		return oauth2.ErrInvalidToken.WithDescription("The access token is not bound to a DPoP key: send it with the Bearer scheme.")
	case e.dpop == nil:
		return oauth2.ErrInvalidToken.WithDescription("DPoP is not available on this server.")
	}
	proof, ok, err := dpop.FromHeader(r.Header)
	if err != nil || !ok {
		return oauth2.ErrInvalidDPoPProof.WithStatus(http.StatusUnauthorized).WithDescription("The request needs one DPoP proof.")
	}
	p, err := e.dpop.Verify(r.Context(), dpop.Request{Proof: proof, Method: r.Method, URI: e.userinfo, AccessToken: tok})
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		return oauth2.ErrUseDPoPNonce.WithStatus(http.StatusUnauthorized).WithCause(err)
	case errors.Is(err, dpop.ErrInvalidProof):
		return oauth2.ErrInvalidDPoPProof.WithStatus(http.StatusUnauthorized).WithCause(err)
	case err != nil:
		return oauth2.FromStore(err)
	case subtle.ConstantTimeCompare([]byte(p.Thumbprint), []byte(jkt)) != 1:
		return oauth2.ErrInvalidDPoPProof.WithStatus(http.StatusUnauthorized).WithDescription("The DPoP proof is signed with another key than the token is bound to.")
	}
	return nil
}

// userinfoBody is the JSON of a UserInfo answer: sub and the released claims.
type userinfoBody struct {
	Subject string `json:"sub"`
	token.UserClaims
}
