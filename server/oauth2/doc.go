// Package oauth2 is the OAuth 2.0 core that every endpoint package builds on: the RFC 6749
// error type and its sentinels (errors.go), FromStore, the one mapping from backend errors to
// OAuth errors (fromstore.go), request parsing (request.go, form.go), client authentication
// (clientauth.go), the response writers (responses.go), the route table and its Mux
// (routes.go) with each route's CORS policy (cors.go), per-request instrumentation, metrics and audit (metrics.go, audit.go), the scope
// policy and OIDC's built-in scopes (scopes.go), PKCE (pkce.go), the grant type names
// (grants.go), token lifetimes (lifetimes.go), the random identifiers of codes and the
// browser flow (secrets.go) and the user codes of the device flow (usercode.go: RFC 8628 6.1,
// 8 characters of BCDFGHJKLMNPQRSTVWXZ shown as XXXX-XXXX, normalised from what a person
// types; stored by UserCodeHash only).
//
// The endpoints live beside it, one package per seam, each mounting its routes on a Mux:
// server/oauth2/grants (the token endpoint and one file per grant), server/oauth2/browser (the
// authorization endpoint, login, consent, logout and account pages), server/oauth2/bearer (userinfo,
// revocation, introspection) and server/oauth2/register (RFC 7591/7592). server/oauth2/handler
// wires them into one http.Handler with discovery and the JWKS. Tokens are issued and verified
// by server/token, passwords checked by server/userauth.
//
// Decisions:
//   - Errors: *Error values copied from sentinels with the With methods, matched with
//     errors.Is by error code. Every error answer is JSON (error, error_description) with
//     Cache-Control: no-store, never HTML, never a panic (RecoverPanics is the backstop).
//     Anything unexpected is server_error and its cause is logged, never sent. invalid_client
//     is 401 with WWW-Authenticate: Basic when the client tried the Authorization header (RFC
//     6749 5.2), and 400 otherwise: a 401 must carry a challenge (RFC 9110 15.5.2), and a Basic
//     challenge in answer to a browser's fetch would open a login dialog. Requests with a
//     Bearer token are answered with a Bearer challenge (WriteBearerError, RFC 6750 3).
//   - FromStore: store.ErrUnavailable, keys.ErrNoKey and an ended request are
//     temporarily_unavailable (503, a retry works); the store's not-found, conflict, used,
//     reused and revoked are invalid_grant; anything else server_error.
//   - Bodies are application/x-www-form-urlencoded or application/json (the AuthMaster seed);
//     a charset parameter must be UTF-8 (or US-ASCII). JSON values must be strings. A known
//     parameter included twice is invalid_request (RFC 6749 3.1); unknown parameters are
//     ignored (3.2), and a parameter with an empty value counts as omitted (3.1). The query
//     string of a token request is never read. A body over the limit is invalid_request with
//     status 413. FormParams is the one form decoder (token, revocation, introspection and
//     userinfo bodies, authorization requests).
//   - Client authentication: client_secret_basic (id and secret form-urlencoded inside the
//     Basic credentials, RFC 6749 2.3.1, decoded strictly) or client_secret_post; a client_id
//     in the body may accompany Basic only when equal to it. A confidential client that declares
//     its method (AuthMethod) must use it; one that declares none may use either. AuthMethod
//     "none" (or type Public) marks a public client, which identifies itself by client_id
//     alone. An unknown client ID costs the same secret hash as a wrong secret. Failures are
//     counted by a bounded method label, and throttled (ClientAuth, Guard).
//   - Routing: RouteTable is the one table of paths, the seeds' aliases, methods and the
//     metrics' endpoint label; discovery advertises exactly the routes mounted. 404 and 405 are
//     JSON invalid_request errors (405 with Allow); a path the mux would redirect (//token,
//     /a/../token) is 404, never an HTML redirect.
//   - CORS (cors.go) is a column of the route table, answered by the Mux, never by an
//     endpoint. The token, revocation and userinfo endpoints (and their aliases) allow the
//     origins some Public client in the current registry snapshot allows
//     (registry.Snapshot.AllowsOrigin, one map lookup; Mux.AllowOrigins), echoing the origin,
//     never "*". Discovery and the JWKS are public documents: they answer
//     Access-Control-Allow-Origin: * to every request (with or without Origin, so caches need
//     no Vary), which is what browsers' OpenID Connect libraries need to configure themselves
//     and verify ID tokens from the relying party's origin; "*" cannot carry credentials.
//     Nothing else answers CORS: the browser pages are navigations, introspection and
//     registration are for servers. Credentials are never allowed (no
//     Access-Control-Allow-Credentials: the browser sends no cookies and reads no answer to a
//     request with them). A preflight (OPTIONS with Origin and Access-Control-Request-Method)
//     from an allowed origin is 204 with Access-Control-Allow-Methods (the route's mounted
//     methods), Access-Control-Allow-Headers "Authorization, Content-Type, DPoP, X-Request-Id"
//     (Bearer and DPoP tokens and Basic credentials, JSON bodies, DPoP proofs) and Max-Age 600 s (fewer
//     preflights; an origin removed meanwhile is refused at once all the same, as the actual
//     answers stop naming it); any other OPTIONS, a disallowed
//     preflight among them, is the route's 405 without CORS headers and never reaches the
//     endpoint. Actual requests from an allowed origin get Access-Control-Allow-Origin (the
//     origin) and Access-Control-Expose-Headers: WWW-Authenticate (Bearer errors); answers
//     that depend on the Origin header say Vary: Origin. A request without Origin (servers,
//     the token endpoint's usual callers) costs one header lookup and gets no CORS header and
//     no Vary: token and userinfo answers are no-store, so no cache can mix them up. Origins
//     are compared byte for byte with the Origin header; controllers/convert writes them as
//     browsers send them. CORS decides what a page may read, not what it may send: a simple
//     POST from any origin still reaches the token endpoint (as from curl), which trusts no
//     cookie or ambient credential.
//   - Scope policy: every requested scope must be listed in the client's Scopes and exist in
//     the registry for the client's namespace, else invalid_scope. With none requested, the
//     client's DefaultScopes (those passing the same policy; others are dropped and logged at
//     V(1)), else its allowed scopes marked Default. The granted set may be empty. OIDC's
//     built-in scopes (openid, profile, email, address, phone, offline_access) need no Scope
//     resource but must still be listed in the client's Scopes. Claims by scope: a Scope
//     resource with a claims list releases exactly those claims; otherwise profile releases
//     name and preferred_username, email releases email and email_verified, groups releases
//     groups.
//   - Resource policy (resources.go): AllowedResources is the one place that decides which
//     resources (RFC 8707) a client may reach: its own audiences, or the audience of the
//     ProtectedResource that holds it (registry.Snapshot.ProtectedResource) when that allows
//     the client. A token without resource never carries a ProtectedResource's audience.
//     ResourceScopes is the one place of scope ownership: when every resource of a token is a
//     ProtectedResource that declares scopes, the token keeps only the scopes they own and the
//     OIDC scopes; a resource without declared scopes keeps them all. It only ever narrows.
//     Target applies both (token endpoint, authorize); TokenSet narrows each access token of
//     a user grant to its audiences (refresh tokens keep the family's scopes).
//   - RFC 9728 metadata (resource_metadata.go) of the ProtectedResource that holds its
//     audience, at ProtectedResourceMetadataPath; the leader writes the same document to a
//     ConfigMap for the resource server (ProtectedResourceMetadataKey).
//   - Instrumentation gives each request its metrics, auditor and client address (the
//     connection's, or the last value of a trusted proxy's header), through the context, and a
//     request ID (the request's valid X-Request-Id or a generated one, requestid.go) that the
//     response echoes and the access log (accesslog.go), the audit log, the request's logger and
//     its span carry. It times each request by endpoint and status code. The Mux names the
//     recording server span (OpenTelemetry, started by otelhttp in main.go when tracing is on)
//     after the route; WriteError sets the error code on it. Tracing off costs a check of the
//     context's span per site (server/tracing).
//
// It logs with logr.FromContextOrDiscard and never logs a secret, password or token.
package oauth2
