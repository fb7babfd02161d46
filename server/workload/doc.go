// Package workload verifies the JWT-bearer client assertions (RFC 7523 2.2) of the clients
// that authenticate without a secret, and implements oauth2.AssertionVerifier:
//
//   - service_account_token with a ServiceAccount of the client's namespace: a projected token
//     whose aud is exactly Latchkey's issuer, whose sub is that ServiceAccount, whose lifetime
//     (exp - iat) is at most the client's maxAssertionLifetime (1 h by default) and that is not
//     one of the kubelet's one-year extended tokens. In TokenReview mode (the default) the API
//     server then reviews it, which also refuses a token whose Pod was deleted or whose
//     ServiceAccount was re-created; successful reviews are reused for at most 30 s, never past
//     exp (assertion.CachedReviewer). The claims are checked before the review so that a token
//     that cannot pass costs the API server nothing. In JWKS mode the signature is checked
//     against the cluster's keys instead (keysReviewer, behind the same cache: the kubelet hands
//     one token out many times): no round trip, but a deleted Pod's token stays valid until it
//     expires. jti is not single-use: the kubelet hands the same token out many times.
//   - service_account_token with a WorkloadIssuer subject: the issuer's keys (static, its
//     jwksURI, or OIDC discovery; refreshed on a period and on an unknown kid), its audiences,
//     its CEL claim rules, the client's namespace among its allowedNamespaces. Key sets and
//     compiled rules are kept per issuer value and rebuilt when it changes.
//   - private_key_jwt: the client's keys (inline, from a Secret, generated, or its jwksURI);
//     iss and sub are the client ID, aud Latchkey's issuer or token endpoint URL, jti required
//     and single-use until the assertion expires (counted in the leased store: without a store
//     private_key_jwt is refused, and a store that cannot be reached is a 503, never an unchecked
//     accept).
//
// A client bound to a workload identity (issuer, subject) that another client, created earlier,
// holds is refused (registry.Snapshot.SubjectHolder; the leader reports SubjectConflict).
// Every refusal is invalid_client with a description that never quotes the assertion; keys or a
// reviewer that cannot be reached are temporarily_unavailable.
//
// It must not import controller-runtime, client-go or api/: the TokenReview and the cluster's
// key set come from the controllers through assertion.Reviewer and assertion.KeySet.
package workload
