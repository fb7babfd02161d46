package convert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

func TestRequirePushedAuthorizationRequestsReachesTheRegistryClient(t *testing.T) {
	sec := secret("payments", "billing-oauth-client", map[string]string{"client-secret": "s"})
	c, err := Client(oauthClient(func(oc *v1alpha1.OAuthClient) { oc.Spec.RequirePushedAuthorizationRequests = true }), sec)
	require.NoError(t, err)
	assert.True(t, c.RequirePushedAuthorizationRequests)

	c, err = Client(oauthClient(func(*v1alpha1.OAuthClient) {}), sec)
	require.NoError(t, err)
	assert.False(t, c.RequirePushedAuthorizationRequests, "false unless set")
}
