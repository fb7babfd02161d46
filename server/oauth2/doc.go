// Package oauth2 owns Latchkey's OAuth 2.0 protocol surface: the token endpoint (with the
// seeds' aliases /token and /oauth/token), the RFC 6749 error responses, and the discovery
// documents and JWKS under /.well-known/. NewHandler is the entry point; main.go wires it to a
// registry.Registry and a keys.Keyring.
//
// A token request goes through one dispatcher (token_endpoint.go) that runs the shared steps in
// order, so that no grant can forget one: parse the request once into a TokenRequest
// (request.go), pick the Grant by grant_type, authenticate the client (clientauth.go), check
// that the client may use the grant, apply the scope policy (scope.go), call the grant, write
// the response. Each grant is one file behind the Grant interface; today only
// client_credentials exists (grant_client_credentials.go). Tokens are signed by server/token.
//
// Decisions:
//   - Bodies are application/x-www-form-urlencoded or application/json (the AuthMaster seed);
//     a charset parameter must be UTF-8 (or US-ASCII). JSON values must be strings. A known
//     parameter included twice is invalid_request (RFC 6749 3.1); unknown parameters are
//     ignored (3.2), and a parameter with an empty value counts as omitted (3.1). The query
//     string of a token request is never read. A body over MaxBodyBytes is invalid_request
//     with status 413.
//   - Client authentication: client_secret_basic (id and secret form-urlencoded inside the
//     Basic credentials, RFC 6749 2.3.1, decoded strictly) or client_secret_post; a client_id
//     in the body may accompany Basic only when equal to it. Both methods are accepted for every
//     confidential client whatever its AuthMethod says; AuthMethod "none" (or type Public) marks
//     a public client, which identifies itself by client_id alone and may not use
//     client_credentials (unauthorized_client). An Authorization header with another scheme is
//     invalid_client.
//   - invalid_client is 401 with WWW-Authenticate: Basic when the client tried the
//     Authorization header (RFC 6749 5.2), and 400 otherwise: a 401 must carry a challenge
//     (RFC 9110 15.5.2), and a Basic challenge in answer to a browser's fetch would open a
//     login dialog.
//   - 404 and 405 answers are JSON invalid_request errors with those statuses (405 with
//     Allow); a path the mux would redirect (//token, /a/../token) is 404, never an HTML
//     redirect. Every error response is JSON with Cache-Control: no-store.
//   - Every JSON answer is a struct marshalled with encoding/json (no hand-written JSON): the
//     token response, userinfo and introspection go through writeNoStoreJSON (Cache-Control:
//     no-store, Pragma: no-cache), errors through writeError.
//   - Scope policy: every requested scope must be listed in the client's Scopes and exist in
//     the registry for the client's namespace, else invalid_scope. With none requested, the
//     client's DefaultScopes (those passing the same policy; others are dropped and logged at
//     V(1)), else its allowed scopes marked Default. The granted set may be empty, in which
//     case the response has no scope member and the token no scope claim. OIDC's built-in
//     scopes (openid, ...) need no Scope resource but must still be listed in the client's
//     Scopes.
//   - Metadata describes what works now. Without a Store there is no authorization endpoint, so
//     both documents omit authorization_endpoint and list response_types_supported as []: OpenID
//     Connect Discovery calls both REQUIRED, but advertising an endpoint that answers 404 would
//     send relying parties into a broken flow. With a Store they list authorization_endpoint,
//     response_types_supported ["code"], response_modes_supported ["query"],
//     code_challenge_methods_supported ["S256","plain"],
//     authorization_response_iss_parameter_supported true, and the auth method "none".
//     openid-configuration adds subject_types_supported ["public"] and
//     id_token_signing_alg_values_supported (the keyring's algorithms).
//     token_endpoint_auth_signing_alg_values_supported is omitted: it applies only to
//     private_key_jwt and client_secret_jwt, which are not supported. Discovery and JWKS are
//     cacheable for 5 minutes.
//   - A token request that arrives before the signing keys are loaded (or for an algorithm with
//     no active key) is temporarily_unavailable (503), not server_error: a retry will work.
//
// Dynamic client registration (register.go, register_request.go; RFC 7591 and RFC 7592) is
// mounted only when Config.Registrar is set: POST /oauth2/register, and GET, PUT, DELETE
// /oauth2/register/{client_id}. The handler parses, validates and authorizes; the
// ClientRegistrar (server/registration.Memory for the embedded default,
// controllers/registration for a cluster, where clients are OAuthClient resources) stores.
// Decisions:
//   - Registration needs an initial access token (RFC 7591 3): Bearer, compared as SHA-256
//     against every configured hash in constant time (ParseInitialTokens reads a file, one a
//     line). RegistrationOpen (off by default) also accepts requests without one; a token that
//     is sent must still be valid. Anonymous registrations cannot request client_credentials
//     (anyone could mint tokens for themselves); an update never adds client_credentials.
//   - Bodies are application/json only (else 415 invalid_request), at most MaxBodyBytes (413).
//     Unknown members are ignored and not stored; any member given twice, a known member of the
//     wrong JSON type, or a malformed body is invalid_client_metadata; null means omitted.
//   - Registrable: redirect_uris, token_endpoint_auth_method (client_secret_basic (default),
//     client_secret_post, none = public), grant_types (authorization_code (default),
//     refresh_token, client_credentials; password never: ROPC is for first-party clients an
//     administrator declares), response_types (only code, exactly with authorization_code),
//     client_name (128 characters, no control characters), scope (each must exist as a Scope
//     available to the registrar's namespace, or be an OIDC standard scope). Rules are the
//     CRD's and controllers/convert's together: a public client cannot use client_credentials;
//     authorization_code needs a redirect URI; redirect URIs are https with a host, http on
//     exactly localhost/127.0.0.1/[::1], or a private-use scheme (not javascript, data,
//     vbscript, file), without fragment, user information or white space; lists are
//     deduplicated. Bad redirect URIs are invalid_redirect_uri, the rest invalid_client_metadata.
//   - The client secret is returned once, in the 201; reads and updates answer without it
//     (client_secret_expires_at stays 0). The registration access token does not expire and is
//     not rotated; GET and PUT echo the one presented. A missing or wrong token, and a client ID
//     that does not exist or was not registered dynamically, are all 401 invalid_token with a
//     Bearer challenge (RFC 7592 3), so client IDs cannot be probed.
//   - PUT replaces the metadata (omitted members get their defaults), must carry the path's
//     client_id, and a client_secret it carries must be the current one; it cannot switch
//     between public and confidential. DELETE is 204. A registrar at its bound is 403
//     access_denied.
//
// The authorization endpoint (authorize.go, authorize_request.go; RFC 6749 4.1, RFC 7636, OpenID
// Connect Core 3.1.2) and its pages (login.go, consent.go, pages.go, templates/, static/) are
// mounted when Config.Store is set: GET and POST /oauth2/authorize (alias /oauth/authorize),
// GET and POST /oauth2/login and /oauth2/consent, GET /oauth2/static/latchkey.css. Codes are
// exchanged by grant_authorization_code.go. Decisions:
//   - The request is parsed once (AuthorizeRequest); a parameter given twice is an error. A
//     problem with client_id or redirect_uri (unknown client, a redirect URI that is not one of
//     the client's, byte for byte, repeated or badly encoded) is a 400 HTML page and never a
//     redirect; every other error is a 303 to the redirect URI with error, error_description,
//     state (verbatim, when sent) and iss (RFC 9207). redirect_uri may be omitted when the
//     client has exactly one, except in an OpenID Connect request (scope openid). The redirect
//     URI's own query is kept. response_type is code only (else unsupported_response_type),
//     response_mode query only; request, request_uri and registration are *_not_supported.
//   - PKCE: public clients always need it; policy RequiredS256 (the default) takes S256 only,
//     Required also plain, Optional lets confidential clients omit it (and accepts plain, which
//     is no weaker than none). A challenge without a method is plain (RFC 7636 4.3). At the
//     token endpoint a code with a challenge needs its verifier (43 to 128 unreserved
//     characters), and a code without one refuses any verifier (downgrade): invalid_grant.
//   - Codes: 32 random bytes, base64url, stored by hash for the client's CodeLifetime (10 min
//     by default) with a new family ID. TakeCode happens first, so a failed exchange uses the
//     code up; a replayed code is invalid_grant and revokes its family (the refresh tokens and,
//     through sid, the access tokens of the first exchange). redirect_uri must repeat the
//     authorization request's when that had one. Public clients exchange with client_id alone.
//   - State between pages lives in the store only: the pending request (10 min) under the hash
//     of a random ID that the pages carry, the session (8 h, not sliding) under the hash of its
//     cookie, remembered consents (90 days, per subject and client, the union of allowed
//     scopes). Sessions and consents name the user by subject (see the sub decision below).
//     The session cookie is __Host-latchkey-session (Secure) for an https issuer, else
//     latchkey-session; HttpOnly, SameSite=Lax, Path=/. A login always gets a new session ID.
//   - CSRF (csrf.go): http.CrossOriginProtection refuses cross-site POSTs; each pending request
//     has a synchronizer token (compared in constant time) and is bound to the browser by the
//     hash of a latchkey-csrf cookie, so a request started elsewhere cannot be completed (login
//     CSRF); pages of another browser's request are not shown. Failures are a 403 page.
//   - Login: unknown users, users without a hash and disabled users fail like a wrong password
//     ("Incorrect username or password."), after a dummy hash check and a fixed delay
//     (250 ms); at most GOMAXPROCS hash checks run at once. Attempts per username share the
//     password grant's counter (10 without a success in 15 min lock the name, known or not);
//     failures per client address (50 in 15 min, the address from LoginConfig.ClientIPHeader
//     behind a proxy) lock the address. A locked login is 429 with its own message.
//   - Consent: Skip never asks, Always always asks, Remember (the default) asks when a
//     requested scope was not allowed before. prompt=consent always asks (even under Skip).
//     Deny is access_denied. Scope descriptions come from Scope resources, else built-in ones
//     for OIDC's scopes. prompt=none answers login_required or consent_required instead of a
//     page; prompt=login, select_account (there is no account chooser) and a session older than
//     max_age (max_age=0 always) show the login page.
//   - Pages: html/template, no JavaScript, one embedded stylesheet; headers
//     Content-Security-Policy "default-src 'none'; style-src 'self'; form-action 'self'
//     <redirect origin>; frame-ancestors 'none'", X-Frame-Options DENY, Cache-Control no-store,
//     Referrer-Policy no-referrer. Chromium applies form-action to the redirects after a form
//     POST, so the login and consent pages add the client's redirect origin (or scheme, for a
//     native app or an IPv6 literal) to form-action: without it the 303 to the client is
//     blocked. Links and form actions are relative ("../oauth2/..."), so the pages work under a
//     path prefix.
//
// User tokens (tokenset.go, grant_password.go, grant_refresh_token.go) and the endpoints that
// take tokens back (userinfo.go, revoke.go, introspect.go, bearer.go) need Config.Store: without
// it the password and refresh_token grants are unsupported_grant_type and /oauth2/userinfo,
// /oauth2/revoke (alias /oauth/revoke) and /oauth2/introspect are 404. Every user grant goes
// through tokenService.issueForUser. Decisions:
//   - sub (access tokens, ID tokens, userinfo, introspection) is registry.User.Subject, a stable
//     identifier that is never reassigned (OIDC Core 2): the User resource's metadata.uid, so a
//     User deleted and re-created with the same username is a new subject. Everything that
//     names a user after the login does so by subject, never by username: store.Code and
//     store.RefreshToken Subject, login sessions, remembered consents, and the lookups of
//     userinfo, introspection, the code and refresh grants (Snapshot.UserBySubject). A token,
//     code, session or consent whose subject is no longer in the registry is inactive, invalid
//     or ignored, so nothing of a deleted user passes to a new one with its username. Only the
//     password check looks users up by username, and failed-login counters stay keyed by the
//     username typed. Clients see the username as preferred_username (profile) and, at
//     introspection, as username.
//   - A user grant has a family ID (grant ID, 16 random bytes base64url): a new one for a
//     password login, the code's for authorization_code, the presented token's for a refresh.
//     Access tokens of users carry it as sid (besides RFC 9068's claims; sub is the subject),
//     so revoking the family (code replay, refresh token reuse, revocation of a refresh token)
//     also revokes every access token issued from the grant: userinfo and introspection check
//     the revoked jti and the revoked family on every call. client_credentials tokens have no
//     sid; that is how a token without a user is recognized.
//   - ID tokens (OIDC Core 2) only when openid is granted: typ JWT, the client's algorithm, iss,
//     sub, aud = client ID, exp (client IDTokenLifetime, else Config.IDTokenLifetime, 1 h), iat,
//     auth_time, nonce when the authorization request had one (never on refresh), at_hash: the
//     left half of SHA-256 of the access token for RS256 and ES256, of SHA-512 for EdDSA
//     (Ed25519 hashes with SHA-512; go-oidc verifies it so). No azp: aud is one value.
//   - Claims by scope: a Scope resource with a claims list releases exactly those claims;
//     otherwise profile releases name (DisplayName) and preferred_username, email releases
//     email and email_verified, groups releases groups. The same set goes into the ID token and
//     userinfo. address and phone are accepted but release nothing (users have no such data).
//   - Refresh tokens: issued by a user grant iff the client lists the refresh_token grant type
//     (offline_access is accepted but neither required nor sufficient); never for
//     client_credentials. Shape "<family ID>.<32 random bytes base64url>" (a Redis backend can
//     hash-tag by family); only store.HashOf(token) is stored. Lifetime: the client's
//     RefreshTokenLifetime, else Config.RefreshTokenLifetime (30 d), from each rotation
//     (sliding). Every use rotates (store.RotateRefresh): reuse of a rotated token within
//     RefreshReuseGrace (2 s, a concurrent retry) is invalid_grant and changes nothing; later
//     it is invalid_grant and the store revokes the family. A token of another client is
//     invalid_grant and neither rotated nor revoked. scope may narrow the new access and ID
//     tokens, never widen them (invalid_scope); the new refresh token keeps the family's scopes
//     (RFC 6749 6). The user must still exist and be enabled (else invalid_grant) and the client
//     must still pass the scope policy for the scopes (else invalid_scope). All invalid_grant
//     answers of the grant share one description.
//   - Password grant (RFC 6749 4.3): only for clients listing password; public clients
//     identify by client_id alone (auth method none); a request naming no client is
//     invalid_client, so the Authup seed's examples need client_id added. Unknown user, user
//     without a hash, disabled user and wrong password are one invalid_grant ("The username or
//     password is wrong.") after a real or dummy (bcrypt cost 10) hash check. Attempts per
//     username are counted in store.Counters (incremented before the check, reset on success,
//     shared with the login page); more than 10 in 15 minutes is invalid_grant "Too many failed
//     attempts" without a hash check, for known and unknown names alike (a locked name can be a
//     denial of service for its user: the price of not being a password oracle). At most
//     GOMAXPROCS hash checks run at once.
//   - Userinfo (OIDC Core 5.3): GET or POST, token in the Authorization header or, on POST, an
//     application/x-www-form-urlencoded access_token; never the query. The token is verified
//     with the keyring's published keys (go-jose; algorithms RS256, ES256, EdDSA only), typ
//     at+jwt (an ID token is refused), iss, exp; then revocation, client and user still
//     present. No token: 401 with a bare Bearer challenge; bad, expired or revoked token, or
//     one without a user (client_credentials): 401 invalid_token; no openid scope: 403
//     insufficient_scope; both methods or a malformed header: 400 invalid_request. The body is
//     JSON with the error too, never cached.
//   - Revocation (RFC 7009): client authentication as at the token endpoint (public clients by
//     client_id). The token's shape says what it is; token_type_hint is accepted and not
//     needed. A refresh token revokes its family, an access token its jti until exp; another
//     client's, unknown or malformed tokens are 200 with nothing revoked; an already rotated
//     refresh token revokes nothing (the store keeps no owner for it). 200 has an empty body;
//     a store outage is 503.
//   - Introspection (RFC 7662): confidential clients only (public: invalid_client). Any
//     confidential client may introspect any access token (it acts as a resource server);
//     refresh tokens only their own client's. Active access tokens answer token_type Bearer,
//     scope, client_id, username (users only), exp, iat, sub, aud, iss, jti, sid; refresh
//     tokens token_type refresh_token, scope, client_id, username, exp, iat, sub, iss, sid.
//     Everything else (expired, revoked, foreign issuer, bad signature, ID tokens, deleted
//     client, missing or disabled user, a subject no longer in the registry) is exactly
//     {"active":false}. sub is the subject, username the user's current username.
//   - Discovery with a Store adds revocation_endpoint, introspection_endpoint and their auth
//     methods, "none" to token_endpoint_auth_methods_supported, OIDC's built-in scopes to
//     scopes_supported, and in openid-configuration userinfo_endpoint and claims_supported.
//
// This package must never import controller-runtime, client-go or api/. It logs with
// logr.FromContextOrDiscard and never logs a secret, password or token.
package oauth2
