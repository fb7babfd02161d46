// Package bearer holds the endpoints that take issued tokens back: the OpenID Connect UserInfo
// endpoint (/oauth2/userinfo), token revocation (RFC 7009; /oauth2/revoke, alias
// /oauth/revoke) and token introspection (RFC 7662; /oauth2/introspect). They are mounted on
// the route table when the server has a store. Access tokens are verified by
// server/token.Verifier (the package that issues them), usually a token.CachedVerifier, so a
// token presented again costs no signature verification; whether a verified token is still in
// force (revoked jti or family, deleted client, missing or disabled user) is decided here, on
// every call, cached verification or not.
//
// Decisions:
//   - Userinfo (OIDC Core 5.3): GET or POST, token in the Authorization header or, on POST, an
//     application/x-www-form-urlencoded access_token; never the query. The token must be an
//     access token (typ at+jwt: an ID token is refused) of this issuer, unexpired and active.
//     No token: 401 with a bare Bearer challenge; bad, expired or revoked token, or one without
//     a user (client_credentials): 401 invalid_token; no openid scope: 403 insufficient_scope;
//     both methods or a malformed header: 400 invalid_request. The body is JSON with the error
//     too, never cached. Claims by scope per oauth2.ReleasedClaims.
//   - DPoP at userinfo (RFC 9449 7): a token with cnf.jkt needs Authorization: DPoP and one DPoP
//     proof of that key over the method, the userinfo URL and the token (ath), used up like at
//     the token endpoint; as Bearer it is 401 invalid_token, and so is a Bearer token sent with
//     the DPoP scheme. Proof failures are 401 invalid_dpop_proof with a DPoP challenge. Nonces
//     are checked when a proof carries one, never required here.
//   - Revocation (RFC 7009): client authentication as at the token endpoint (public clients by
//     client_id). The token's shape says what it is; token_type_hint is accepted and not
//     needed. A refresh token revokes its family (for oauth2.Lifetimes.FamilyRevocationEnd), an
//     access token its jti until exp; another client's, unknown or malformed tokens are 200
//     with nothing revoked; an already rotated refresh token revokes nothing (the store keeps
//     no owner for it). 200 has an empty body; a store outage is 503.
//   - Introspection (RFC 7662): declared resource servers only (OAuthClient
//     spec.introspection; a public client is invalid_client, another confidential one 403
//     unauthorized_client). A resource server may introspect any access token; refresh tokens
//     only its own. Active access tokens answer token_type Bearer (DPoP, with cnf, when bound),
//     scope, client_id, username (users only), exp, iat, sub, aud, iss, jti, sid (the OP
//     session, when the grant has one), latchkey_family (users only) and act (a token
//     exchange's actor chain, RFC 8693 4.1); refresh tokens
//     token_type refresh_token, scope, client_id, username, exp, iat, sub, iss, sid,
//     latchkey_family. A user's access token is revoked with its family
//     (token.AccessTokenClaims.Family).
//     Everything else (expired, revoked, foreign issuer, bad signature, ID tokens, deleted
//     client, missing or disabled user, a subject no longer in the registry) is exactly
//     {"active":false}. sub is the subject, username the user's current username.
//
// It never logs a token.
package bearer
