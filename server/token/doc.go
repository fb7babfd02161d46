// Package token issues and verifies the tokens Latchkey signs: the access token, a JWT in the
// RFC 9068 profile (header typ "at+jwt", alg and kid set by the keys package; claims iss, sub,
// aud, exp, iat, jti, client_id, scope, latchkey_family for tokens of a user grant, and sid for
// those of a grant started in an OP session), and the OpenID Connect ID token (IssueIDToken:
// typ "JWT"; iss, sub, aud, exp, iat, auth_time, nonce, at_hash, sid and the user claims a
// grant releases, UserClaims). Verifier checks access tokens
// against the published keys with the same claims type (AccessTokenClaims) issuance writes.
// Refresh tokens are opaque: NewRefreshToken makes them ("<family ID>.<secret>"),
// IsRefreshToken recognizes their shape; the store keeps only their hash.
//
// The claims are structs (AccessTokenClaims, UserClaims) marshalled with encoding/json and
// handed to the keys.Signer as bytes; go-jose's JWT builder is not used. encoding/json costs
// well under a microsecond more per token than hand-written JSON did, against 25-900 µs for the
// signature, so there is no hand-rolled encoder (ARCHITECTURE.md section 7). Audience and
// JoinScope give aud and scope their JSON forms; the endpoints use them in their answers too.
//
// Decisions:
//   - aud is the client's audiences, else its client ID; one value is written as a string,
//     several as an array (RFC 7519 4.1.3 allows both; the Audience type).
//   - The lifetime is the client's, else the configured default; it is at least one second and
//     whole seconds only, so exp - iat equals the expires_in the token endpoint reports.
//   - The algorithm is the client's SigningAlgorithm, else the configured default.
//   - nbf is not written: RFC 9068 does not require it and iat carries the same time.
//   - jti is 128 random bits, base64url without padding.
//   - latchkey_family is the grant's refresh token family ID, a private claim (RFC 7519 4.3,
//     named after the product so that no registered claim is taken). It lets the server revoke
//     every access token of a grant at once (userinfo, introspection and revocation check it).
//     A token without it acts for no user (client_credentials). Tokens issued before the claim
//     existed carried the family in sid; AccessTokenClaims.Family reads it from there, so a
//     revoked family's old tokens stay revoked across the upgrade.
//   - sid is the OP session (OpenID Connect Front-/Back-Channel Logout, RP-Initiated Logout):
//     the browser login session the grant was started in, shared by every client signed in
//     through it. It is in ID tokens and in the access tokens of a grant started in a session
//     (authorization code flow and its refreshes); the password grant has none.
//   - at_hash hashes with the JWS algorithm's hash: SHA-256 for RS256 and ES256, SHA-512 for
//     EdDSA (as go-oidc verifies). ID token aud is the client ID alone, so there is no azp.
//   - User claims: empty strings (no display name, no email) are omitted, email_verified only
//     with email, groups always when released (possibly []).
//   - Verification (Verifier): only the algorithms of keys.SupportedAlgorithms, and only with
//     the published key the header's kid names and whose algorithm it states (no alg none, no
//     HS256 keyed with a public key); typ at+jwt (an ID token is refused); iss equal to the
//     issuer; exp in the future; iat and nbf no later than keys.ClockSkew ahead; jti,
//     client_id and sub present; at most MaxTokenBytes. Revocation is not the verifier's: the
//     bearer endpoints check the store.
//   - CachedVerifier keeps verified access tokens so that one presented again costs no
//     signature (introspection, userinfo and revocation use it). Keyed by the SHA-256 of the
//     token, never the token; only tokens that passed every check enter; an entry answers only
//     before the token's exp and while the key that verified it is still published under its
//     kid and algorithm (same public key), so a retired or withdrawn key takes its cached
//     tokens with it on the next lookup, without a purge. The count is bounded (2Q eviction
//     from hashicorp/golang-lru: a burst of tokens seen once cannot flush the ones presented
//     again); there is no negative cache, so an unknown token never displaces a known one.
//
// It never logs a token.
package token
