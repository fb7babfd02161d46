package oauth2

import (
	"context"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// Client authentication methods (RFC 7591 token_endpoint_auth_method values).
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
)

// ClientEvents is told of what a client's owner should hear about (the operator emits
// Warning Events on the OAuthClient, rate-limited): a refresh token used again after its
// rotation, an authorization code presented twice, failed authentications piling up.
type ClientEvents interface {
	RefreshReuseDetected(clientID string)
	AuthorizationCodeReplayed(clientID string)
	// AuthenticationFailures is told of every failed authentication of a registered client,
	// with its failures from all addresses in the brute-force window.
	AuthenticationFailures(clientID string, failures int64)
}

// NoClientEvents reports nothing.
type NoClientEvents struct{}

// RefreshReuseDetected does nothing.
func (NoClientEvents) RefreshReuseDetected(string) {}

// AuthorizationCodeReplayed does nothing.
func (NoClientEvents) AuthorizationCodeReplayed(string) {}

// AuthenticationFailures does nothing.
func (NoClientEvents) AuthenticationFailures(string, int64) {}

var _ ClientEvents = NoClientEvents{}

// ClientAuth authenticates the clients of token, revocation and introspection requests under
// brute-force protection (a Guard of kind "client").
type ClientAuth struct {
	guard  *Guard
	events ClientEvents
}

// NewClientAuth returns the client authentication of guard (nil: no brute-force protection,
// e.g. a handler without a store) reporting to events (nil: NoClientEvents).
func NewClientAuth(guard *Guard, events ClientEvents) *ClientAuth {
	if events == nil {
		events = NoClientEvents{}
	}
	return &ClientAuth{guard: guard, events: events}
}

// Authenticate finds the client of the request and checks its credentials. A public client
// authenticates with its client ID alone (there is no secret to guess, so it is not throttled);
// a confidential one needs its secret, by its declared method when it declares one. Every
// failure is invalid_client (with a Basic challenge after a Basic attempt), counted, audited
// (client_authentication_failed) and throttled: an attempt from a client ID and address, or
// an address, over its limit is refused with 429 and Retry-After, right secret or not. When
// the store cannot be reached the attempt is not throttled (logged), so that an outage of
// Redis does not stop client_credentials.
func (a *ClientAuth) Authenticate(ctx context.Context, snap *registry.Snapshot, req *TokenRequest) (*registry.Client, error) {
	if req.AuthMethod == "" {
		recordClientAuthFailure(ctx, req.AuthMethod)
		return nil, ClientAuthFailed(req, "The request names no client.")
	}
	client, known := snap.Client(req.ClientID)
	failure := checkCredentials(client, known, req)
	if known && IsPublic(client) && failure == "" {
		return client, nil
	}
	// Counted under the client ID whether or not it is registered, so that when a lock starts
	// does not tell which client IDs exist.
	v, err := a.guard.Record(ctx, req.ClientID, ClientAddress(ctx), failure != "")
	if err != nil {
		if err := FailOpen(ctx, err, "brute-force protection unavailable; the attempt is not throttled",
			"client_id", registeredID(client, known)); err != nil {
			return nil, err
		}
	}
	if v.RetryAfter > 0 {
		RecordRateLimited(ctx, "client_authentication")
		Audit(ctx, AuditEvent{Event: AuditRateLimited, ClientID: registeredID(client, known), Outcome: "failure",
			Reason: "client authentication: too many failures"})
		return nil, ErrTooManyRequests.WithRetryAfter(v.RetryAfter)
	}
	if failure == "" {
		return client, nil
	}
	recordClientAuthFailure(ctx, req.AuthMethod)
	Audit(ctx, AuditEvent{Event: AuditClientAuthenticationFailed, ClientID: registeredID(client, known),
		Outcome: "failure", Reason: authMethodLabel(req.AuthMethod) + ": " + failure})
	if known {
		a.events.AuthenticationFailures(client.ID, v.IdentityFailures)
	}
	return nil, ClientAuthFailed(req, failure)
}

// registeredID is the client ID for logs and audit records: a registered client's only, so an
// attacker's input never lands there.
func registeredID(c *registry.Client, known bool) string {
	if !known {
		return ""
	}
	return c.ID
}

// checkCredentials returns why the request's credentials fail for the client, or "".
func checkCredentials(client *registry.Client, known bool, req *TokenRequest) string {
	const wrong = "Unknown client or wrong credentials."
	switch {
	case !known:
		// Hash the secret anyway, so an unknown client ID takes as long as a wrong secret.
		unknown := registry.Client{}
		unknown.CheckSecret(req.ClientSecret)
		return wrong
	case IsPublic(client):
		if req.ClientSecret != "" {
			return "A public client has no secret."
		}
		return ""
	}
	ok := req.ClientSecret != "" && client.CheckSecret(req.ClientSecret)
	switch {
	case !ok:
		return wrong
	case client.AuthMethod != "" && client.AuthMethod != req.AuthMethod:
		return "The client must authenticate with " + client.AuthMethod + "."
	}
	return ""
}

// ClientAuthFailed is invalid_client: 401 with a Basic challenge when the client tried Basic.
func ClientAuthFailed(req *TokenRequest, description string) error {
	e := ErrInvalidClient.WithDescription(description)
	if req.AuthMethod == AuthMethodBasic {
		e = e.WithBasicChallenge()
	}
	return e
}

// IsPublic reports whether the client authenticates without a secret.
func IsPublic(c *registry.Client) bool {
	return c.Type == registry.Public || c.AuthMethod == AuthMethodNone
}
