package registration

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/register"
	"github.com/latchkey-dev/latchkey/server/oauth2/register/registrartest"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestMemoryRegistrar(t *testing.T) {
	ctx := t.Context()
	reg := registry.New()
	m, err := NewMemory(reg, MemoryOptions{Namespace: "registered"})
	require.NoError(t, err)
	confidential := register.ClientMetadata{TokenEndpointAuthMethod: oauth2.AuthMethodBasic, GrantTypes: []string{"client_credentials"}}

	t.Run("concurrent registrations get distinct IDs and are all served", func(t *testing.T) {
		ids := make([]string, 32)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				rc, err := m.Register(ctx, confidential, register.RegistrantInitialToken)
				assert.NoError(t, err)
				ids[i] = rc.ClientID
			})
		}
		wg.Wait()
		seen := map[string]bool{}
		for _, id := range ids {
			assert.Regexp(t, `^dyn-[a-z2-7]{10}$`, id)
			assert.False(t, seen[id], "duplicate %s", id)
			seen[id] = true
			_, ok := reg.Snapshot().Client(id)
			assert.True(t, ok)
		}
	})

	t.Run("only the hashes of the credentials are kept", func(t *testing.T) {
		rc, err := m.Register(ctx, confidential, register.RegistrantInitialToken)
		require.NoError(t, err)
		require.NoError(t, m.CheckRegistrationToken(ctx, rc.ClientID, rc.RegistrationAccessToken))
		assert.ErrorIs(t, m.CheckRegistrationToken(ctx, rc.ClientID, rc.ClientSecret), register.ErrRegistrationTokenMismatch)
		assert.ErrorIs(t, m.CheckRegistrationToken(ctx, "dyn-nothere00", rc.RegistrationAccessToken), register.ErrClientNotFound)
		got, err := m.Get(ctx, rc.ClientID)
		require.NoError(t, err)
		assert.Empty(t, got.ClientSecret)
		assert.Empty(t, got.RegistrationAccessToken)
	})

	t.Run("an update cannot make a confidential client public", func(t *testing.T) {
		rc, err := m.Register(ctx, confidential, register.RegistrantInitialToken)
		require.NoError(t, err)
		_, err = m.Update(ctx, rc.ClientID, register.ClientMetadata{TokenEndpointAuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{"refresh_token"}})
		assert.ErrorIs(t, err, register.ErrInvalidClientMetadata)
	})

	t.Run("the caller's slices are not kept", func(t *testing.T) {
		md := register.ClientMetadata{TokenEndpointAuthMethod: oauth2.AuthMethodBasic, GrantTypes: []string{"client_credentials"}, Scopes: []string{"a"}}
		rc, err := m.Register(ctx, md, register.RegistrantInitialToken)
		require.NoError(t, err)
		md.Scopes[0] = "changed"
		got, err := m.Get(ctx, rc.ClientID)
		require.NoError(t, err)
		assert.Equal(t, []string{"a"}, got.Metadata.Scopes)
		c, _ := reg.Snapshot().Client(rc.ClientID)
		assert.Equal(t, []string{"a"}, c.Scopes)
	})

	t.Run("a registered client is served as Registered and never as a resource server", func(t *testing.T) {
		rc, err := m.Register(ctx, confidential, register.RegistrantAnonymous)
		require.NoError(t, err)
		c, ok := reg.Snapshot().Client(rc.ClientID)
		require.True(t, ok)
		assert.True(t, c.Registered, "the consent page marks it unverified")
		assert.False(t, c.Introspection)
	})

	t.Run("options are checked", func(t *testing.T) {
		_, err := NewMemory(reg, MemoryOptions{})
		assert.Error(t, err)
		_, err = NewMemory(nil, MemoryOptions{Namespace: "x"})
		assert.Error(t, err)
		_, err = NewMemory(reg, MemoryOptions{Namespace: "x", MaxClients: -1})
		assert.Error(t, err)
		_, err = NewMemory(reg, MemoryOptions{Namespace: "x", MaxInitialTokenClients: -1})
		assert.Error(t, err)
	})
}

func TestMemoryRegistrarBoundsEachRegistrantOnItsOwn(t *testing.T) {
	m, err := NewMemory(registry.New(), MemoryOptions{Namespace: "registered", MaxClients: 2, MaxInitialTokenClients: 1})
	require.NoError(t, err)
	registrartest.SeparateQuotas(t, m, 2, 1)
}

func TestMemoryRegistrarDoesNothingForAnEndedRequest(t *testing.T) {
	reg := registry.New()
	m, err := NewMemory(reg, MemoryOptions{Namespace: "registered"})
	require.NoError(t, err)
	md := register.ClientMetadata{TokenEndpointAuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{oauth2.GrantRefreshToken}}
	rc, err := m.Register(t.Context(), md, register.RegistrantAnonymous)
	require.NoError(t, err)
	ended, cancel := context.WithCancel(t.Context())
	cancel()

	_, err = m.Register(ended, md, register.RegistrantAnonymous)
	require.ErrorIs(t, err, context.Canceled, "Register")
	assert.Len(t, slices.Collect(reg.Snapshot().Clients()), 1, "nothing was registered")
	_, err = m.Get(ended, rc.ClientID)
	require.ErrorIs(t, err, context.Canceled, "Get")
	_, err = m.Update(ended, rc.ClientID, register.ClientMetadata{TokenEndpointAuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{oauth2.GrantAuthorizationCode},
		RedirectURIs: []string{"http://127.0.0.1/cb"}})
	require.ErrorIs(t, err, context.Canceled, "Update")
	require.ErrorIs(t, m.CheckRegistrationToken(ended, rc.ClientID, rc.RegistrationAccessToken), context.Canceled, "CheckRegistrationToken")
	require.ErrorIs(t, m.Delete(ended, rc.ClientID), context.Canceled, "Delete")

	got, err := m.Get(t.Context(), rc.ClientID)
	require.NoError(t, err, "still there")
	assert.Equal(t, []string{oauth2.GrantRefreshToken}, got.Metadata.GrantTypes, "unchanged")
}
