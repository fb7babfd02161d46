package convert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

func TestAllowedOrigins(t *testing.T) {
	tests := []struct {
		name      string
		redirects []string
		allowed   []string
		want      []string
	}{
		{"the default is the origins of the http and https redirect URIs, once each",
			[]string{"http://localhost:3000/callback", "https://app.example/cb", "https://app.example/other", "com.example.app:/cb"}, nil,
			[]string{"http://localhost:3000", "https://app.example"}},
		{"a redirect URI's default port and upper-case host are written as browsers send them",
			[]string{"https://App.Example:443/cb", "http://127.0.0.1:80/cb", "http://[0:0:0:0:0:0:0:1]:8080/cb"}, nil,
			[]string{"https://app.example", "http://127.0.0.1", "http://[::1]:8080"}},
		{"a client without http(s) redirect URIs allows no origin",
			[]string{"com.example.app:/cb"}, nil, nil},
		{"spec.allowedOrigins replace the default",
			[]string{"http://localhost:3000/callback"}, []string{"https://spa.example", "http://localhost:5173"},
			[]string{"https://spa.example", "http://localhost:5173"}},
		{"spec.allowedOrigins are written as browsers send them, once each",
			nil, []string{"HTTPS://SPA.Example:443", "https://spa.example", "http://localhost:08080"},
			[]string{"https://spa.example", "http://localhost:8080"}},
		{"an entry that is not an origin browsers send is left out",
			nil, []string{"https://127.1", "http://[fe80::1%25eth0]:80", "https://spa.example", "https://x:99999"},
			[]string{"https://spa.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oc := &v1alpha1.OAuthClient{Spec: v1alpha1.OAuthClientSpec{
				Type: v1alpha1.ClientTypePublic, RedirectURIs: tt.redirects, AllowedOrigins: tt.allowed,
			}}
			assert.Equal(t, tt.want, AllowedOrigins(oc))
		})
	}
}

func TestClientAllowedOrigins(t *testing.T) {
	public := func(origins ...string) func(*v1alpha1.OAuthClient) {
		return func(oc *v1alpha1.OAuthClient) {
			withRedirectURIs("https://App.example:443/cb")(oc)
			oc.Spec.Type, oc.Spec.AllowedOrigins = v1alpha1.ClientTypePublic, origins
		}
	}
	t.Run("a Public client gets the origins of its redirect URIs as browsers send them", func(t *testing.T) {
		c, err := Client(oauthClient(public()), nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"https://app.example"}, c.AllowedOrigins)
	})
	t.Run("a Public client gets its allowedOrigins as browsers send them", func(t *testing.T) {
		c, err := Client(oauthClient(public("HTTP://LOCALHOST:3000")), nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"http://localhost:3000"}, c.AllowedOrigins)
	})
	t.Run("a Confidential client gets no origins, not even its redirect URIs'", func(t *testing.T) {
		c, err := Client(oauthClient(withRedirectURIs("https://app.example/cb")),
			secret("payments", "billing-oauth-client", map[string]string{"client-secret": "s"}))
		require.NoError(t, err)
		assert.Empty(t, c.AllowedOrigins)
	})
	t.Run("a Confidential client with allowedOrigins is an invalid spec (the CRD's rule, for manifests)", func(t *testing.T) {
		_, err := Client(oauthClient(func(oc *v1alpha1.OAuthClient) { oc.Spec.AllowedOrigins = []string{"https://app.example"} }), nil)
		require.ErrorIs(t, err, ErrInvalidSpec)
		assert.Contains(t, err.Error(), "allowedOrigins (CORS) is for Public clients")
	})
	t.Run("an allowedOrigin browsers never send is an invalid spec that names it", func(t *testing.T) {
		_, err := Client(oauthClient(public("https://app.example", "http://127.1")), nil)
		require.ErrorIs(t, err, ErrInvalidSpec)
		assert.Contains(t, err.Error(), `allowedOrigin "http://127.1" is not an http(s) origin`)
		assert.NotContains(t, err.Error(), `"https://app.example"`)
	})
}
