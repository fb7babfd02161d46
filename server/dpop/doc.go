// Package dpop verifies DPoP proofs (RFC 9449): the JWT a client sends in the DPoP header to
// show it holds the private key an access or refresh token is bound to. It owns the proof
// parser, the htu comparison (RFC 9449 4.3), the jti replay check, the server nonces and the
// form of a thumbprint (ValidThumbprint, for the dpop_jkt parameter); the token, PAR,
// introspection and userinfo handlers call Verifier.Verify and put the returned JWK thumbprint
// (RFC 7638) into cnf.jkt or compare it with the one a token or code carries.
//
// It imports go-jose and server/store only; never server/oauth2 (which maps this package's
// errors to invalid_dpop_proof and use_dpop_nonce), controller-runtime, client-go or api/.
//
// Decisions:
//   - Algorithms: ES256, EdDSA, RS256 and PS256 only; none and HMAC can never verify, because
//     the key must be the public jwk of the header and a jwk with private parts is refused.
//   - Replay: a jti is remembered per key (the store key is the hash of thumbprint and jti)
//     with Counters.Incr, which is atomic in both backends; the lease is twice the iat window,
//     so a proof is refused as stale before its jti could be forgotten. Replicas sharing Redis
//     see the same jti.
//   - Nonces are stateless: base64url(window || HMAC-SHA256(key, window)) where window is the
//     Unix time divided by the nonce period. The current and previous windows are accepted, so
//     a nonce lives between one and two periods. Every replica must be given the same key: the
//     caller derives it (NonceKey) from a secret all replicas share, the signing key set.
package dpop
