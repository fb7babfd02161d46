// Package token issues the tokens Latchkey signs: the access token, a JWT in the RFC 9068
// profile (header typ "at+jwt", alg and kid set by the keys package; claims iss, sub, aud, exp,
// iat, jti, client_id, scope, and sid for tokens of a user grant), and the OpenID Connect ID
// token (IssueIDToken: typ "JWT"; iss, sub, aud, exp, iat, auth_time, nonce, at_hash and the
// user claims a grant releases, AppendUserClaims). Refresh tokens are opaque and made by
// server/oauth2.
//
// The claims JSON is built by hand into a pooled buffer (AppendAccessTokenClaims,
// AppendJSONString) and handed to the keys.Signer as bytes, instead of go-jose's JWT builder
// (reflection-based marshalling, about 11 µs of a 73 µs ES256 token in PERFORMANCE.md). After
// the signature, issuing costs about 2 allocations and 1-2 µs per token. AppendJSONString
// escapes exactly like encoding/json with HTML escaping off; tests and fuzz tests compare it
// byte for byte.
//
// Decisions:
//   - aud is the client's audiences, else its client ID; one value is written as a string,
//     several as an array (RFC 7519 4.1.3 allows both).
//   - The lifetime is the client's, else the configured default; it is at least one second and
//     whole seconds only, so exp - iat equals the expires_in the token endpoint reports.
//   - The algorithm is the client's SigningAlgorithm, else the configured default.
//   - nbf is not written: RFC 9068 does not require it and iat carries the same time.
//   - jti is 128 random bits, base64url without padding.
//   - sid is the grant's refresh token family ID. It is not an RFC 9068 claim; it lets the
//     server revoke every access token of a grant at once (userinfo and introspection check it).
//   - at_hash hashes with the JWS algorithm's hash: SHA-256 for RS256 and ES256, SHA-512 for
//     EdDSA (as go-oidc verifies). ID token aud is the client ID alone, so there is no azp.
//   - User claims: empty strings (no display name, no email) are omitted, email_verified only
//     with email, groups always when released (possibly []).
//
// This package must not import controller-runtime, client-go or api/, and never logs a token.
package token
