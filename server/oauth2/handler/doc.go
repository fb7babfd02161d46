// Package handler wires the OAuth endpoints into one http.Handler: New builds the token issuer
// and verifier (server/token), the user authenticator (server/userauth), the grants, the browser
// flow, the bearer endpoints and registration, as the Config enables them, mounts them on the
// route table (oauth2.Mux) with the discovery documents (RFC 8414, OpenID Connect Discovery
// 1.0) and the JWKS, and wraps the whole in the per-request instrumentation and the panic
// backstop. main.go builds it with a registry.Registry, a keys.Keyring and a store.
//
// Decisions:
//   - Without a Store the handler serves client_credentials, discovery and the JWKS only: the
//     grants and endpoints that keep state (authorization_code, refresh_token, password,
//     device_code with the device authorization endpoint and verification page, token
//     exchange (it checks revocations), userinfo, revocation, introspection, the login pages)
//     are not mounted, so they answer 404 and the metadata does not list them.
//   - Metadata describes what works now, from the routes mounted. Without the authorization
//     endpoint both documents omit authorization_endpoint and list response_types_supported as
//     []: OpenID Connect Discovery calls both REQUIRED, but advertising an endpoint that answers
//     404 would send relying parties into a broken flow. With it they list
//     authorization_endpoint, response_types_supported ["code"], response_modes_supported
//     ["query"], code_challenge_methods_supported ["S256","plain"],
//     authorization_response_iss_parameter_supported true, and the auth method "none".
//     openid-configuration adds subject_types_supported ["public"] and
//     id_token_signing_alg_values_supported (the keyring's algorithms); with userinfo,
//     userinfo_endpoint and claims_supported. With the user endpoints, scopes_supported holds
//     OIDC's built-in scopes besides the Scope resources; revocation and introspection come
//     with their auth methods. token_endpoint_auth_signing_alg_values_supported is omitted: it
//     applies only to private_key_jwt and client_secret_jwt, which are not supported. Discovery
//     and JWKS are cacheable for 5 minutes. With a Store (DPoP proofs' jti are used up there)
//     both list dpop_signing_alg_values_supported (server/dpop.Algorithms).
//   - CORS comes from the route table (server/oauth2 cors.go): New lets the Mux allow, at the
//     token, revocation and userinfo endpoints, the origins of the Public clients of the
//     registry's current snapshot (registry.Snapshot.AllowsOrigin); discovery and the JWKS
//     answer "*".
//   - One user authenticator (and so one lockout policy and one bound on concurrent hash
//     checks) serves the login page and the password grant; LoginConfig configures both.
//   - An https issuer sends Strict-Transport-Security (one year, without includeSubDomains or
//     preload, which concern other sites of the domain) on every answer, decided by the
//     issuer's scheme and not the connection's, since TLS often ends at an ingress.
package handler
