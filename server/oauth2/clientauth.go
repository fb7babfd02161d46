package oauth2

import (
	"github.com/latchkey-dev/latchkey/server/registry"
)

// authenticateClient finds the client of the request and checks its credentials.
// A public client authenticates with its client ID alone; a confidential one needs its secret.
func authenticateClient(snap *registry.Snapshot, req *TokenRequest) (*registry.Client, error) {
	if req.AuthMethod == "" {
		return nil, clientAuthFailed(req, "The request names no client.")
	}
	client, ok := snap.Client(req.ClientID)
	if !ok {
		// Hash the secret anyway, so an unknown client ID takes as long as a wrong secret.
		unknown := registry.Client{}
		unknown.CheckSecret(req.ClientSecret)
		return nil, clientAuthFailed(req, "Unknown client or wrong credentials.")
	}
	if isPublic(client) {
		if req.ClientSecret != "" {
			return nil, clientAuthFailed(req, "A public client has no secret.")
		}
		return client, nil
	}
	if req.ClientSecret == "" || !client.CheckSecret(req.ClientSecret) {
		return nil, clientAuthFailed(req, "Unknown client or wrong credentials.")
	}
	return client, nil
}

// clientAuthFailed is invalid_client: 401 with a Basic challenge when the client tried Basic.
func clientAuthFailed(req *TokenRequest, description string) error {
	e := ErrInvalidClient.WithDescription(description)
	if req.AuthMethod == AuthMethodBasic {
		e = e.WithBasicChallenge()
	}
	return e
}

// isPublic reports whether the client authenticates without a secret.
func isPublic(c *registry.Client) bool {
	return c.Type == registry.Public || c.AuthMethod == AuthMethodNone
}

// checkGrantAllowed applies the client's grant policy.
func checkGrantAllowed(c *registry.Client, g Grant) error {
	if g.ConfidentialOnly() && isPublic(c) {
		return ErrUnauthorizedClient.WithDescription("A public client may not use this grant type.")
	}
	if !c.AllowsGrant(g.Type()) {
		return ErrUnauthorizedClient.WithDescription("The client is not allowed this grant type.")
	}
	return nil
}
