// Package convert is the one code path from a Latchkey resource (OAuthClient, Scope, User,
// WorkloadIssuer, ProtectedResource, plus the Secret it references) to the plain value the server's registry holds. The reconcilers in
// controllers/ call it with objects from the manager's informers; the manifest loader calls it with
// objects decoded from files, where no API server ran CRD defaulting or CEL validation. So every
// default and every cross-field rule the server relies on is applied here again, not only in the
// CRD.
//
// Errors: a problem the author of the resource must fix wraps ErrInvalidSpec; a Secret (or its
// key) that does not exist yet wraps ErrSecretNotFound. With ErrSecretNotFound, Client and User
// still return the complete value, without credentials (HasSecret false, no PasswordHash), so a
// caller may serve it: a confidential client keeps its client ID (and wins or loses a client-ID
// conflict exactly as the leader's status says) while it cannot authenticate. What to do with
// each outcome is controllers/feed's decision, the same in the cluster and the embedded mode.
//
// Decisions:
//   - Secret values are used byte for byte (no trimming); an empty value counts as missing, so an
//     empty client secret never authenticates. Data wins over StringData; StringData is read only
//     because manifests on disk carry it, in one place (SecretData), which the manifest loader
//     uses too.
//   - Password hashes are trimmed of surrounding whitespace (a hash never contains any) and must
//     be bcrypt ($2a$, $2b$, $2y$) or argon2id in PHC form with m <= 1 GiB, t <= 10, p <= 16 (a
//     hash's parameters are what every login attempt costs); anything else, plaintext included,
//     is ErrInvalidSpec and the password is never logged or echoed in the error (the errors are
//     fixed texts).
//   - Redirect URIs must pass server/redirecturi.Check, the one rule that dynamic registration
//     applies too (an allowlist: https with a host; http only on exactly localhost, 127.0.0.1 or
//     [::1]; or a private-use scheme in reverse-domain form such as com.example.app, with
//     something after it; no fragment, user information, white space or control characters;
//     at most 2048 bytes). The CRD's CEL rules check what CEL can of it; this check
//     also catches objects stored before a rule existed and manifests on disk. The message
//     names each offending URI (its first 256 bytes) and the reason.
//   - CORS origins (allowedOrigins, or the default from the redirect URIs) are written as
//     browsers send them in the Origin header, so the server compares that header byte for
//     byte: scheme and host in lower case, IPv6 compressed, no default port, no leading zeros
//     in the port. An allowedOrigin no browser sends (a path, user information, a shortened or
//     non-decimal IPv4 address, a non-ASCII host, a port over 65535) is ErrInvalidSpec, and so
//     are allowedOrigins on a Confidential client (the CRD's CEL rule, for manifests on disk);
//     a redirect URI that yields no such origin adds none.
//   - Scope names (Scope.spec.name and an OAuthClient's scopes) must be RFC 6749 scope tokens
//     of at most 128 characters, as in the CRD; an invalid Scope is ErrInvalidSpec.
//   - creationTimestamp is carried into the registry values (Created): it decides who holds a
//     contested client ID, username or scope name.
//   - A User's subject (registry.User.Subject, the OIDC sub of its tokens, sessions and
//     consents) is its metadata.uid: the API server gives every creation a new uid, so a User
//     deleted and re-created under the same username (or resource name) is a new subject and
//     inherits nothing of the old one. The manifest loader's files have no uid (no API server):
//     there the subject is derived from the resource name (SHA-256 of "latchkey-user:" + name,
//     in UUID form), so in the embedded mode a user deleted and re-added under the same
//     resource name keeps its subject (files have no identity), while one re-added under
//     another resource name with the same username does not.
//   - Only the SHA-256 of a client secret (registry.HashSecret) is kept, never the secret.
//   - Defaults filled here: type Confidential, tokenEndpointAuthMethod none (Public; a
//     Confidential client without one keeps it empty: both secret methods are accepted, a
//     declared one is enforced), pkce RequiredS256, consent Remember, audiences [clientID],
//     rateLimit.burst a tenth of requestsPerMinute (at least 1), allowedOrigins of a Public
//     client the origins of its http(s) redirect URIs (a Confidential client has none),
//     Registered from the oauth.latchkey.dev/registered label, Secret <name>-oauth-client with key client-secret, password key hash. Absent lifetimes,
//     and integer lifetimes of zero, stay zero (the server's defaults apply); spec.lifetimes
//     values are integer seconds or duration strings (Lifetime), refused (ErrInvalidSpec) when
//     they do not parse or fall outside the CRD's bounds, as a file can hold what the API server
//     would refuse. Default scopes, when absent, are left empty: the
//     server grants the allowed scopes whose Scope says default.
//   - WorkloadIssuer: besides the CRD's bounds and rules (an https issuer and jwksURI, keys from
//     one place, 1 to 8 audiences, 1 to 256 allowed namespaces, refreshPeriod 1m to 24h,
//     maxAssertionLifetime up to 24h), the claim rules must compile (assertion.CompileClaimRules,
//     the server's own compiler) and the caBundle must hold at least one PEM certificate and
//     only CERTIFICATE blocks that parse (text between blocks is ignored, as TLS clients ignore
//     it); otherwise ErrInvalidSpec. A jwksSecretRef Secret (key jwks.json by default) that is
//     missing or does not hold a JWK set of public keys is ErrSecretNotFound, and the value
//     returned then carries no issuer URL, so it can never be served with keys found elsewhere.
//     Defaults: refreshPeriod and maxAssertionLifetime 1 h. Generation is metadata.generation (the
//     manifest loader, which has none, counts changes of the converted value instead).
//   - ProtectedResource: the audience must pass server/oauth2.CheckResource (the rule of the
//     resource parameter: absolute URI, no fragment, at most 1024 bytes), so every audience can
//     be requested; owned scopes are scope tokens; client references default to the resource's
//     namespace; allowedClients are the named sources plus those the caller's ClientSelector
//     returns for the selector, sorted without repeats; bearer methods default to header.
//   - WorkloadSubjectKey gives the (issuer, subject) pair an OAuthClient binds to, the pair
//     registry.Client.WorkloadSubjectKey gives its value, for the leader's index of pairs.
//
// This package imports api/, server/registry and server/assertion (key sets, claim rules); it runs without a cluster (the embedded mode),
// which depguard keeps true (.golangci.yml).
package convert
