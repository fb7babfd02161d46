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
//   - Scope policy: every requested scope must be listed in the client's Scopes and exist in
//     the registry for the client's namespace, else invalid_scope. With none requested, the
//     client's DefaultScopes (those passing the same policy; others are dropped and logged at
//     V(1)), else its allowed scopes marked Default. The granted set may be empty, in which
//     case the response has no scope member and the token no scope claim. OIDC's built-in
//     scopes (openid, ...) are not special yet; they come with the authorization_code grant.
//   - Metadata describes what works now. There is no authorization endpoint yet, so both
//     documents omit authorization_endpoint and list response_types_supported as []: OpenID
//     Connect Discovery calls both REQUIRED, but advertising an endpoint that answers 404 would
//     send relying parties into a broken flow; the fields appear with the authorization_code
//     grant. openid-configuration adds subject_types_supported ["public"] and
//     id_token_signing_alg_values_supported (the keyring's algorithms).
//     token_endpoint_auth_signing_alg_values_supported is omitted: it applies only to
//     private_key_jwt and client_secret_jwt, which are not supported. Discovery and JWKS are
//     cacheable for 5 minutes.
//   - A token request that arrives before the signing keys are loaded (or for an algorithm with
//     no active key) is temporarily_unavailable (503), not server_error: a retry will work.
//
// This package must never import controller-runtime, client-go or api/. It logs with
// logr.FromContextOrDiscard and never logs a secret, password or token.
package oauth2
