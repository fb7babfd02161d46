package convert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

func TestOIDCIdentityProvider(t *testing.T) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "idp", Name: "corp"}, Data: map[string][]byte{"client-secret": []byte("s3cret")}}
	base := func() *v1alpha1.OIDCIdentityProvider {
		return &v1alpha1.OIDCIdentityProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "corp", UID: "uid-1", Generation: 3},
			Spec: v1alpha1.OIDCIdentityProviderSpec{
				Issuer: "https://sso.example.com/realms/corp",
				Client: v1alpha1.UpstreamClient{ClientID: "latchkey", SecretRef: &v1alpha1.SecretKeyRef{Namespace: "idp", Name: "corp"}},
			},
		}
	}
	tests := []struct {
		name    string
		change  func(p *v1alpha1.OIDCIdentityProvider)
		secret  *corev1.Secret
		wantErr error
		check   func(t *testing.T, p *v1alpha1.OIDCIdentityProvider)
	}{
		{name: "a minimal provider gets the default scopes, its name as display name and its secret", secret: secret},
		{name: "openid is added to the listed scopes", secret: secret,
			change: func(p *v1alpha1.OIDCIdentityProvider) { p.Spec.Scopes = []string{"email"} }},
		{name: "http on a loopback host is accepted", secret: secret,
			change: func(p *v1alpha1.OIDCIdentityProvider) { p.Spec.Issuer = "http://127.0.0.1:5556/dex" }},
		{name: "http elsewhere is refused", secret: secret, wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.OIDCIdentityProvider) { p.Spec.Issuer = "http://sso.example.com" }},
		{name: "a reserved authorize parameter is refused", secret: secret, wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.OIDCIdentityProvider) {
				p.Spec.AdditionalAuthorizeParameters = map[string]string{"nonce": "fixed"}
			}},
		{name: "a mapping that does not compile is refused", secret: secret, wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.OIDCIdentityProvider) { p.Spec.AllowPolicy = "user.groups.(" }},
		{name: "a CA bundle that is no certificate is refused", secret: secret, wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.OIDCIdentityProvider) { p.Spec.CABundle = "not pem" }},
		{name: "a missing secret is SecretNotFound", wantErr: ErrSecretNotFound},
		{name: "a workloadIdentity tokenPath that is not absolute is refused", wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.OIDCIdentityProvider) {
				p.Spec.Client.SecretRef, p.Spec.Client.WorkloadIdentity = nil, &v1alpha1.UpstreamWorkloadIdentity{TokenPath: "tokens/x"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base()
			if tt.change != nil {
				tt.change(p)
			}
			u, err := OIDCIdentityProvider(p, tt.secret)
			assert.Equal(t, "corp", u.Name)
			assert.Equal(t, "uid-1", u.UID)
			assert.Equal(t, int64(3), u.Generation)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Empty(t, u.ClientSecret, "never a value to serve")
				assert.Empty(t, u.Issuer)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "s3cret", u.ClientSecret)
			assert.Equal(t, "corp", u.DisplayName)
			assert.Contains(t, u.Scopes, "openid")
			if p.Spec.Scopes == nil {
				assert.Equal(t, DefaultUpstreamScopes, u.Scopes)
			}
		})
	}
}

func TestOIDCIdentityProviderWorkloadIdentity(t *testing.T) {
	tests := []struct {
		name, tokenPath, want string
	}{
		{"without a tokenPath the chart's mount path is read", "", DefaultUpstreamTokenPath},
		{"a tokenPath is read as given", "/var/run/secrets/idp/token", "/var/run/secrets/idp/token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &v1alpha1.OIDCIdentityProvider{
				ObjectMeta: metav1.ObjectMeta{Name: "corp", UID: "uid-1", Generation: 2},
				Spec: v1alpha1.OIDCIdentityProviderSpec{Issuer: "https://idp.example.com", Client: v1alpha1.UpstreamClient{
					ClientID: "latchkey", WorkloadIdentity: &v1alpha1.UpstreamWorkloadIdentity{TokenPath: tt.tokenPath, Audience: "idp"},
				}},
			}
			u, err := OIDCIdentityProvider(p, nil)
			require.NoError(t, err, "no Secret is needed")
			assert.Equal(t, tt.want, u.AssertionFile)
			assert.Empty(t, u.ClientSecret)
			assert.Equal(t, "latchkey", u.ClientID)
			assert.Equal(t, "https://idp.example.com", u.Issuer)
		})
	}
}
