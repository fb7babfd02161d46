// Package token issues the tokens Latchkey signs. Today that is the access token, a JWT in the
// RFC 9068 profile: header typ "at+jwt", alg and kid (set by the keys package), claims iss, sub,
// aud, exp, iat, jti, client_id and scope.
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
//
// This package must not import controller-runtime, client-go or api/, and never logs a token.
package token
