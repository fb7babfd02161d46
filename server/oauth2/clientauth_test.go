package oauth2

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// unreachable is a store whose throttles always fail, like Redis during an outage.
type unreachable struct{}

func (unreachable) Throttle(context.Context, []store.ThrottleKey, store.Outcome) (store.ThrottleResult, error) {
	return store.ThrottleResult{}, errors.New("dial tcp: connection refused")
}

func TestClientAuthWhenTheStoreIsUnreachable(t *testing.T) {
	reg := registry.New()
	reg.PutClient(registry.Client{Source: "ns/svc", Namespace: "ns", ID: "svc", Type: registry.Confidential,
		GrantTypes: []string{GrantClientCredentials}, SecretHash: registry.HashSecret([]byte("s3cret")), HasSecret: true})
	auth := NewClientAuth(ClientAuthConfig{Guard: NewGuard(unreachable{}, "client", DefaultClientBruteForce())})
	req := func(secret string) *TokenRequest {
		return &TokenRequest{GrantType: GrantClientCredentials, ClientID: "svc", ClientSecret: secret, AuthMethod: AuthMethodBasic}
	}
	t.Run("The right secret is accepted: protection fails open", func(t *testing.T) {
		c, err := auth.Authenticate(t.Context(), reg.Snapshot(), req("s3cret"))
		require.NoError(t, err)
		assert.Equal(t, "svc", c.ID)
	})
	t.Run("A wrong secret is still invalid_client", func(t *testing.T) {
		_, err := auth.Authenticate(t.Context(), reg.Snapshot(), req("wrong"))
		assert.ErrorIs(t, err, ErrInvalidClient)
	})
	t.Run("A caller that has gone gets temporarily_unavailable, not a client", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := auth.Authenticate(ctx, reg.Snapshot(), req("s3cret"))
		assert.ErrorIs(t, err, ErrTemporarilyUnavailable)
	})
}
