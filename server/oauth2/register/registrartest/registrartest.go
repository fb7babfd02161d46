// Package registrartest checks what every register.ClientRegistrar must do, so the memory
// registrar (server/registration) and the Kubernetes one (controllers/registration) are held to
// one contract by their tests. It is for tests only.
package registrartest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/register"
)

// SeparateQuotas checks that r bounds anonymous registrations and those with an initial access
// token each on its own: r must have room for exactly anonymous more anonymous clients and
// token more token clients (both at least 1). It fills both bounds, checks that neither kind
// takes the other's place and that a deleted client frees a place of its own kind, and returns
// the IDs of the clients it left registered, by kind.
func SeparateQuotas(t *testing.T, r register.ClientRegistrar, anonymous, token int) map[register.Registrant][]string {
	t.Helper()
	ctx := t.Context()
	m := register.ClientMetadata{TokenEndpointAuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{oauth2.GrantRefreshToken}}
	ids := map[register.Registrant][]string{}
	fill := func(by register.Registrant, n int) {
		t.Helper()
		for i := range n {
			rc, err := r.Register(ctx, m, by)
			require.NoError(t, err, "%s registration %d of %d", by, i+1, n)
			ids[by] = append(ids[by], rc.ClientID)
		}
		_, err := r.Register(ctx, m, by)
		require.ErrorIs(t, err, register.ErrRegistrationLimit, "the %s bound is reached", by)
	}
	fill(register.RegistrantAnonymous, anonymous)
	fill(register.RegistrantInitialToken, token) // anonymous registrations at their bound lock no token holder out
	_, err := r.Register(ctx, m, register.RegistrantAnonymous)
	require.ErrorIs(t, err, register.ErrRegistrationLimit, "token clients take no anonymous place")

	for _, by := range []register.Registrant{register.RegistrantInitialToken, register.RegistrantAnonymous} {
		last := len(ids[by]) - 1
		require.NoError(t, r.Delete(ctx, ids[by][last]))
		ids[by] = ids[by][:last]
		fill(by, 1) // a deleted client frees one place of its own kind
	}
	return ids
}
