// Package backchannel sends OpenID Connect Back-Channel Logout 1.0 logout tokens to the clients
// of an ended OP session.
//
// Sender.SessionEnded (the logout code calls it through its own one-method interface,
// SessionEndNotifier) queues one delivery per client that has a backchannelLogoutURI in the
// leased store (store.LogoutDeliveries) and returns: delivery is asynchronous. Sender.Start
// runs on every replica (a controller-runtime Runnable that does not need leadership); it
// claims due deliveries from the store under a lease, so each delivery is attempted by one
// replica at a time, and one queued on a replica that stops is delivered by another once its
// claim passes. Each attempt mints a fresh logout token and POSTs it as
// application/x-www-form-urlencoded logout_token=... with a timeout; a 2xx answer is success,
// anything else (another status, a redirect, a timeout, a refused connection) is retried with
// exponential back-off up to MaxAttempts, then given up: counted, logged and reported as a
// Warning Event on the OAuthClient (Events, controllers.ClientEvents in cluster mode).
//
// The logout token (OIDC Back-Channel Logout 2.4) is a JWT signed by go-jose with the current
// key of the client's algorithm (else the server default), header typ logout+jwt, claims iss,
// aud (the client ID), iat, exp (iat + 2 min), jti (random, new for each attempt), events
// {"http://schemas.openid.net/event/backchannel-logout": {}}, sub (always, when known) and
// sid (when the session's ID is known); never nonce.
//
// Decisions:
//   - At least once, in practice once: a claim lasts longer than an attempt can (the timeout
//     plus a margin), and only the current claim finishes or retries a delivery. A replica
//     that dies after the receiver answered but before it recorded the answer leaves the
//     delivery to be sent again when the claim passes; receivers can tell by sid/sub, and a
//     logout is idempotent.
//   - A client whose backchannelLogoutSessionRequired is set gets no token for a session
//     without a known sid (it would have to reject it): the delivery is counted dropped.
//   - A client that lost its backchannelLogoutURI (or was deleted) before the delivery is
//     dropped, not retried.
//   - Redirects are never followed (a 3xx is a failed attempt), at most 4 KiB of a response
//     body is read, and nothing of the token is logged. The URI's rules (https, or http on a
//     loopback host; no fragment) are the API's; addresses are not filtered further, as for
//     the client's redirect URIs, which its owner declares likewise.
//   - The jti is new for each attempt: each attempt is a new token with its own iat and exp.
//
// This package imports server/keys, server/registry and server/store; like all of server/, it
// never imports controllers/, controller-runtime, client-go or api/.
package backchannel
