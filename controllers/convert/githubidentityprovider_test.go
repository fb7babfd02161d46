package convert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

func TestGitHubURLs(t *testing.T) {
	for _, tc := range []struct{ host, web, api string }{
		{"", "https://github.com", "https://api.github.com"},
		{"github.com", "https://github.com", "https://api.github.com"},
		{"github.corp.example:8443", "https://github.corp.example:8443", "https://github.corp.example:8443/api/v3"},
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000", "http://127.0.0.1:9000/api/v3"},
	} {
		web, api := GitHubURLs(tc.host)
		assert.Equal(t, tc.web, web, tc.host)
		assert.Equal(t, tc.api, api, tc.host)
	}
}

func TestGitHubIdentityProviderConversion(t *testing.T) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"},
		Data: map[string][]byte{GitHubClientIDKey: []byte("Iv1.abc"), GitHubClientSecretKey: []byte("s3cret")}}
	valid := func() *v1alpha1.GitHubIdentityProvider {
		return &v1alpha1.GitHubIdentityProvider{ObjectMeta: metav1.ObjectMeta{Name: "gh", UID: "u1", Generation: 2},
			Spec: v1alpha1.GitHubIdentityProviderSpec{AllowedOrganizations: []string{"acme"},
				Client: v1alpha1.GitHubClient{SecretRef: v1alpha1.GitHubSecretRef{Namespace: "ns", Name: "app"}}}}
	}
	for _, tc := range []struct {
		name   string
		change func(p *v1alpha1.GitHubIdentityProvider)
		secret *corev1.Secret
		want   error
	}{
		{name: "a valid provider with its Secret converts", secret: secret},
		{name: "without its Secret it is SecretNotFound", want: ErrSecretNotFound},
		{name: "a Secret without clientID is SecretNotFound", secret: &corev1.Secret{ObjectMeta: secret.ObjectMeta,
			Data: map[string][]byte{GitHubClientSecretKey: []byte("s")}}, want: ErrSecretNotFound},
		{name: "both allowAllUsers and organizations is an invalid spec", secret: secret, want: ErrInvalidSpec,
			change: func(p *v1alpha1.GitHubIdentityProvider) { p.Spec.AllowAllUsers = true }},
		{name: "an organization login that cannot be is an invalid spec", secret: secret, want: ErrInvalidSpec,
			change: func(p *v1alpha1.GitHubIdentityProvider) { p.Spec.AllowedOrganizations = []string{"a/b"} }},
		{name: "an http host off loopback is an invalid spec", secret: secret, want: ErrInvalidSpec,
			change: func(p *v1alpha1.GitHubIdentityProvider) { p.Spec.Host = "http://github.corp.example" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := valid()
			if tc.change != nil {
				tc.change(p)
			}
			u, err := GitHubIdentityProvider(p, tc.secret)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				assert.Empty(t, u.ClientSecret)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "Iv1.abc", u.ClientID)
			assert.Equal(t, "s3cret", u.ClientSecret)
			assert.Equal(t, "gh", u.DisplayName, "the name by default")
			assert.Equal(t, "slug", u.TeamsAsGroups, "the default")
			assert.Equal(t, "u1", u.UID)
		})
	}
}
