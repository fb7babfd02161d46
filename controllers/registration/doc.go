// Package registration is the Kubernetes ClientRegistrar of server/oauth2/register: RFC 7591
// dynamic client registration creates real OAuthClient resources, so registered clients show up in
// `kubectl get oauthclients`, get status conditions and Events like any other, and reach every
// replica's registry through the informers (controllers.Setup). main.go wires New into
// handler.Config.Registrar (server/oauth2/handler).
//
// What a registration creates, in the configured namespace:
//
//   - An OAuthClient named after its client ID, "dyn-" and 10 random characters of [a-z2-7]
//     (server/registration.NewClientID), with spec.clientID set to the same value, the labels
//     oauth.latchkey.dev/registered=true and oauth.latchkey.dev/registrant=anonymous or
//     initial-token (how the registration was authorized), and the annotation
//     oauth.latchkey.dev/registration-access-token-sha256 holding the hex SHA-256 of the
//     registration access token. Only the hash is stored: it is of 32 random bytes, so it is
//     safe to show to whoever may read OAuthClients, and anyone who may edit the annotation may
//     edit the spec anyway. The spec maps the metadata: redirect_uris to redirectURIs,
//     grant_types to grantTypes, scope to scopes, client_name to displayName,
//     token_endpoint_auth_method to tokenEndpointAuthMethod and type (none is Public),
//     backchannel_logout_uri and backchannel_logout_session_required to
//     backchannelLogoutURI and backchannelLogoutSessionRequired,
//     require_pushed_authorization_requests to requirePushedAuthorizationRequests.
//   - For a confidential client, secretPolicy External with secretRef <name>-oauth-client /
//     client-secret, and that Secret, created by the registrar (not the controller) so the
//     response can carry the secret: keys client-id, client-secret and token-url (when
//     configured), the controllers' labels, and a controller ownerReference to the OAuthClient.
//     If the Secret cannot be created, the OAuthClient is deleted again.
//
// Decisions:
//   - Only OAuthClients with the label, whose name is their spec.clientID, in the configured
//     namespace, not being deleted, are managed through RFC 7592; every other client ID is
//     "not found" (answered 401 by the handler). An OAuthClient without the annotation cannot
//     be managed at all.
//   - Reads go through the Reader (the manager's API reader in main.go), never the cache: a
//     GET right after the POST must find the client, and Secrets are not cached by design.
//   - An update changes only what registration controls (the fields above); an administrator's
//     changes to other fields (lifetimes, audiences, pkce, consent, signingAlgorithm) survive,
//     and defaultScopes no longer in scopes are dropped. Public and confidential do not switch.
//     Conflicts are retried.
//   - Delete removes the OAuthClient (background propagation) and also deletes its Secret
//     when the OAuthClient controls it, so clusters without a garbage collector (envtest) end
//     up clean too. The replicas stop serving the client when their informers see the delete
//     (milliseconds), not at the instant the 204 is written.
//   - The API server's validation is the last check: a refusal (422) is answered
//     invalid_client_metadata. An API server that cannot answer now (429 throttling, 503, a
//     timeout, a refused connection) is temporarily_unavailable (503, through
//     register.ErrRegistrarUnavailable), as is a request that ended while it waited; other API
//     errors are server_error.
//   - Two separate bounds, so open registration can never lock out initial access token
//     holders: WithMaxClients counts the anonymous registrations in the namespace (registered
//     OAuthClients whose registrant label is not initial-token, so those created before the
//     label existed count here), WithMaxInitialTokenClients those made with a token. Beyond a
//     bound, registration of that kind is 403 access_denied. Each counts with a List, so
//     concurrent registrations may pass it by a few.
//   - A registration (or update) whose client would break an OAuthClientPolicy of the
//     namespace, or the default policy (WithDefaultPolicy), is refused before anything is
//     written: invalid_client_metadata whose description names the policy, the rule and the
//     value (controllers/policy, the check the server's registry applies too). The chart's
//     ValidatingAdmissionPolicy would refuse it as well (a 422, answered the same way).
//   - Registration never sets spec.introspection (only an administrator declares a resource
//     server); an update leaves whatever an administrator set.
//
// RBAC (markers in registrar.go): oauthclients create, update, patch, delete; secrets get,
// create, delete; oauthclientpolicies get, list.
//
// This package imports api/, controllers/convert, controllers/policy, server/oauth2 (and its register package) and
// server/registration.
package registration
