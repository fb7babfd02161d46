// Package upstream signs users in through upstream identity providers: OpenID Connect
// (OIDCIdentityProvider), LDAP directories (LDAPIdentityProvider, ldap.go) and GitHub
// (GitHubIdentityProvider, github.go). At refresh, Dispatcher re-checks a user with the
// Rechecker of their provider's kind (recheck.go). It owns the provider side of the login flow
// (the authorization request to the upstream, the code exchange, ID token verification) and the
// CEL mapping of upstream claims to a local identity (Mapper). The browser flow
// (server/oauth2/browser) drives it through the small interface it declares there.
//
// Decisions:
//   - The local subject is "oidc:" + base64url(SHA-256(len(UID) + ":" + UID + upstream sub)),
//     unpadded (48 characters; len in decimal, so no UID and sub pair collides with another): stable per (provider resource UID, upstream subject), never
//     reassigned, opaque (it says nothing about the upstream sub), and different when the
//     provider resource is deleted and created again (a new UID is a new trust decision).
//   - The upstream flow is the authorization code flow with PKCE (S256) and a nonce; the ID
//     token is verified with go-oidc (signature from the upstream's JWKS, iss, aud = our
//     client ID, expiry) and its nonce compared in constant time. Userinfo, when the upstream
//     has an endpoint, adds the claims the ID token lacks (never overriding them), and only
//     when its sub matches.
//   - Latchkey authenticates at an OIDC upstream's token endpoint with client_secret_basic, or,
//     with a token file (spec.client.workloadIdentity, assertion.go), with an RFC 7523 client
//     assertion: client_id in the form plus the file's JWT, no secret. The file is read at every
//     token request (code exchange and refresh re-check alike: a transport adds the two
//     parameters to golang.org/x/oauth2's request, whose TokenSource takes no extra ones), so
//     the kubelet's rotations apply at once; an unreadable file or an invalid_client answer is
//     ErrClientCredentials, a clear page and never the token.
//   - Discovery uses go-oidc with the provider's CA bundle as the only roots (none: the
//     system's), and is done again when the provider's generation changes; a failed discovery
//     is retried at the next login, at most every 10 s.
//   - Claim mappings, validation rules and the allow policy are CEL, compiled once per
//     provider generation with a runtime cost limit per expression (ClaimRuleCostLimit). A
//     mapping of the wrong type (a username that is not a string) refuses the login with a
//     message that names the mapping, never the claims' values.
//   - LDAP (ldap.go, go-ldap/v3): TLS or StartTLS only (never plaintext), the CA bundle as the
//     only roots; the service account searches the user with the username escaped (RFC 4515,
//     UserFilter), exactly one entry must match, then the entry's DN binds with the password;
//     an empty password is refused before any bind (an unauthenticated bind). Unknown users,
//     several matches and wrong passwords are all ErrBadCredentials. The subject is Subject(
//     provider UID, value of the UID attribute) with the same "oidc:" prefix (the registry's
//     ExternalSubjectPrefix): resource UIDs are unique across kinds, so no subject collides
//     with an OIDC provider's. LDAP.Recheck (the Rechecker of refreshes, LDAPRechecker) finds
//     the user by the UID attribute and checks the user filter still matches them.
//   - A GitHub user's subject is "github:" + the same hash over the provider UID and the
//     numeric GitHub user ID (immutable; the login may change): never an OIDC user's subject.
//   - Refresh re-checks (Dispatcher): at most once per interval per user, the last check a
//     leased store record every replica sees; a login counts as one. A refusal
//     (ErrUserRefused, remembered for the interval too, until the next login) fails the
//     refresh and revokes its family; an upstream that cannot be
//     asked fails closed (temporarily_unavailable, nothing revoked). The upstream tokens this
//     needs are kept in the identity record sealed with AES-256-GCM (Sealer), the subject as
//     additional data.
//
// It must not import controller-runtime, client-go or api/, and never logs a code or token.
package upstream
