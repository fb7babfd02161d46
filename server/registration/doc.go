// Package registration holds what the two ClientRegistrar implementations of server/oauth2/register
// share (client IDs, secrets and registration access tokens, and the conversion of registered
// metadata into a registry.Client) and Memory, the registrar of the embedded default (no
// cluster): it writes registered clients straight into the registry. The Kubernetes registrar,
// which creates OAuthClient resources, is controllers/registration.
//
// Decisions:
//   - A client ID is "dyn-" and 10 characters of [a-z2-7] (50 random bits, from crypto/rand):
//     a valid Kubernetes name and client ID, recognisable as dynamically registered. IDs are
//     public; collisions are retried by the registrars.
//   - Client secrets and registration access tokens are 32 random bytes in unpadded
//     base64url, like the secrets the controllers generate. Registration access tokens never
//     expire and are not rotated on use (RFC 7592 allows both; the client keeps one token);
//     only their SHA-256 is kept and compared in constant time.
//   - Memory keeps only the hashes of the client secret and token. Registrations live in
//     memory only: a restart forgets them (the embedded default is for development; a cluster
//     keeps them as OAuthClient resources). MaxClients bounds how many anonymous registrations
//     it holds and MaxInitialTokenClients, separately, how many made with an initial access
//     token, so open registration can never lock out token holders.
//   - Memory asks MemoryOptions.Admit, when set, before it accepts a registration or an
//     update: main.go passes the manifest loader's check against the folder's
//     OAuthClientPolicies of the registration namespace (controllers/manifests), so the
//     embedded default refuses what a cluster refuses. Clients registered before a policy
//     was added to the folder are not re-evaluated (they live in memory only).
//   - Registered clients get the controllers' defaults for what registration cannot set:
//     audiences [client ID], PKCE RequiredS256, consent Remember, server-default lifetimes and
//     signing algorithm, and for a public client the CORS origins of its redirect URIs
//     (redirecturi.Origins). They are Registered (the consent page marks them unverified, as for
//     OAuthClients with the registered label) and never Introspection: only an administrator
//     can declare a resource server.
package registration
