// Package assertion verifies JWT client assertions (RFC 7521, RFC 7523) for the token endpoint's
// client authentication: Kubernetes ServiceAccount tokens (by TokenReview through a Reviewer, or
// against the cluster's JWKS), tokens of remote workload issuers (another cluster, SPIFFE
// JWT-SVIDs, CI jobs; keys from OIDC discovery, a jwks_uri or a static JWK set), and
// private_key_jwt (the client's own keys).
//
// It owns: Parse (size, shape and algorithm checks, the unverified claims); Verify (signature
// with a KeySet, then the claims against a Policy); the key sources StaticKeys and Remote; CEL
// claim rules in the shape of the Kubernetes API server's claimValidationRules (ClaimRules); and
// CachedReviewer, a cache in front of a TokenReview Reviewer that someone else implements.
//
// It must not import controller-runtime, client-go, Kubernetes API packages, or anything under
// latchkey/api or latchkey/controllers (depguard enforces this under server/): the controllers
// convert resources into RemoteConfig, Policy and ClaimRule values and implement Reviewer.
//
// Decisions:
//   - JWS is go-jose's (jwt.ParseSigned with an allow-list, JSONWebToken.Claims to check the
//     signature); nothing here encodes, decodes or verifies a JWS by hand. The allow-list is
//     RS256..RS512, PS256..PS512, ES256..ES512 and EdDSA: "none" and every HMAC are refused at
//     Parse. Tokens with a "crit" or "b64" header are refused. Keys embedded in or referenced by
//     the header (jwk, jku, x5c, x5u) are never used.
//   - The claims are decoded once, at Parse, from the payload go-jose later verifies, into one
//     map (integers as int64, other numbers as float64, as the Kubernetes API server gives them
//     to CEL); the typed fields are read from that map, so typed claims and CEL never disagree.
//     Until Verify returns they are UnverifiedClaims, a distinct type.
//   - Verify checks the claims before the signature, so an expired or foreign token costs
//     neither a key fetch nor a signature check; it reports the first failure. exp is always
//     required. Leeway: zero means DefaultLeeway (30 s), negative means none, more than
//     MaxLeeway (5 min) is refused as ErrPolicy.
//   - Key choice: with a kid, only the keys with that kid (an unknown kid may make Remote
//     refetch); without, every key. Of those, only public RSA (at least 2048 bits), ECDSA (the
//     alg's curve) and Ed25519 keys whose use (when set) is "sig" and whose alg (when set) is
//     the header's; at most MaxKeys are tried.
//   - ParseJWKS refuses private and symmetric keys, keys without kty, RSA keys under 2048 bits
//     and sets of more than MaxKeys keys; it skips keys of types it cannot use (RFC 7517
//     section 5), but a set with no usable key is refused.
//   - Remote fetches lazily, inside the caller's call (no background goroutine, keep-alives off
//     on the transport it builds), collapses concurrent fetches, refetches after RefreshPeriod
//     and, for an unknown kid, at most once per MinRefreshInterval; failed attempts are retried
//     no more often than MinRefreshInterval either. A failed refresh keeps the last good keys
//     (forever: an unreachable issuer cannot tell us a key was withdrawn) and shows in Status.
//     Keys returns only generic errors (ErrKeysUnavailable); Refresh and Status carry the
//     details (URLs, network errors) for the status controller, not for clients, and a failed
//     discovery wraps ErrDiscovery so that it can tell it from a failed JWK set.
//   - Every error a client can cause wraps one exported sentinel with a short description that
//     never contains the token; a claim value is echoed at most quoted and cut to 64 bytes.
//   - CachedReviewer keys its cache by SHA-256 of the token and the audiences (never the token),
//     caches only authenticated reviews, for min(ttl, until exp), and never a token without exp.
//
// It never logs.
package assertion
