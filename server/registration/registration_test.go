package registration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/register"
)

func TestARegisteredPublicClientAllowsTheOriginsOfItsRedirectURIs(t *testing.T) {
	redirects := []string{"https://App.example/cb", "https://app.example/other", "http://localhost:3000/cb", "com.example.app:/cb"}
	public := RegistryClient("registered/dyn-a", "registered", "dyn-a", time.Now(), &register.ClientMetadata{
		TokenEndpointAuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{"authorization_code"}, RedirectURIs: redirects,
	}, nil)
	assert.Equal(t, []string{"https://app.example", "http://localhost:3000"}, public.AllowedOrigins)

	hash := HashToken("secret")
	confidential := RegistryClient("registered/dyn-b", "registered", "dyn-b", time.Now(), &register.ClientMetadata{
		TokenEndpointAuthMethod: oauth2.AuthMethodBasic, GrantTypes: []string{"authorization_code"}, RedirectURIs: redirects,
	}, &hash)
	assert.Empty(t, confidential.AllowedOrigins, "a confidential client calls the token endpoint from a server")
}

func TestARegisteredBackchannelLogoutURIIsServed(t *testing.T) {
	c := RegistryClient("registered/dyn-c", "registered", "dyn-c", time.Now(), &register.ClientMetadata{
		TokenEndpointAuthMethod: oauth2.AuthMethodBasic, GrantTypes: []string{"client_credentials"},
		BackchannelLogoutURI: "https://rp.example/bcl", BackchannelLogoutSessionRequired: true,
	}, nil)
	assert.Equal(t, "https://rp.example/bcl", c.BackchannelLogoutURI)
	assert.True(t, c.BackchannelLogoutSessionRequired)
}

func TestARegisteredPushedRequestRequirementIsServed(t *testing.T) {
	c := RegistryClient("registered/dyn-d", "registered", "dyn-d", time.Now(), &register.ClientMetadata{
		TokenEndpointAuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"https://rp.example/cb"}, RequirePushedAuthorizationRequests: true,
	}, nil)
	assert.True(t, c.RequirePushedAuthorizationRequests)
}
