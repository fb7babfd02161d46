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

// AuthenticateClient finds the client of the request and checks its credentials: a public
// client authenticates with its client ID alone, a confidential one needs its secret. Every
// failure is invalid_client (with a Basic challenge after a Basic attempt) and is counted in
// the client authentication failure metric.
func AuthenticateClient(ctx context.Context, snap *registry.Snapshot, req *TokenRequest) (*registry.Client, error) {
	c, err := authenticateClient(snap, req)
	if err != nil {
		recordClientAuthFailure(ctx, req.AuthMethod)
	}
	return c, err
}

func authenticateClient(snap *registry.Snapshot, req *TokenRequest) (*registry.Client, error) {
	if req.AuthMethod == "" {
		return nil, ClientAuthFailed(req, "The request names no client.")
	}
	client, ok := snap.Client(req.ClientID)
	if !ok {
		// Hash the secret anyway, so an unknown client ID takes as long as a wrong secret.
		unknown := registry.Client{}
		unknown.CheckSecret(req.ClientSecret)
		return nil, ClientAuthFailed(req, "Unknown client or wrong credentials.")
	}
	if IsPublic(client) {
		if req.ClientSecret != "" {
			return nil, ClientAuthFailed(req, "A public client has no secret.")
		}
		return client, nil
	}
	if req.ClientSecret == "" || !client.CheckSecret(req.ClientSecret) {
		return nil, ClientAuthFailed(req, "Unknown client or wrong credentials.")
	}
	return client, nil
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
