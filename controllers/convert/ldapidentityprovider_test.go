package convert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

func TestLDAPIdentityProvider(t *testing.T) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "idp", Name: "ldap"},
		Data: map[string][]byte{"username": []byte("cn=svc,dc=example,dc=com"), "password": []byte("pw")}}
	base := func() *v1alpha1.LDAPIdentityProvider {
		return &v1alpha1.LDAPIdentityProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "corp", UID: "uid-1", Generation: 2},
			Spec: v1alpha1.LDAPIdentityProviderSpec{
				Host:       "ldap.example.com:636",
				Bind:       v1alpha1.LDAPBind{SecretRef: v1alpha1.SecretKeyRef{Namespace: "idp", Name: "ldap"}},
				UserSearch: v1alpha1.LDAPUserSearch{Base: "ou=people,dc=example,dc=com"},
			},
		}
	}
	tests := []struct {
		name    string
		change  func(p *v1alpha1.LDAPIdentityProvider)
		secret  *corev1.Secret
		wantErr error
	}{
		{name: "a minimal provider gets the defaults, TLS and its bind credentials", secret: secret},
		{name: "a custom filter with the placeholder is accepted", secret: secret,
			change: func(p *v1alpha1.LDAPIdentityProvider) {
				p.Spec.UserSearch.Filter = "(&(objectClass=person)(|(uid={})(mail={})))"
			}},
		{name: "a filter without the placeholder is refused", secret: secret, wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.LDAPIdentityProvider) { p.Spec.UserSearch.Filter = "(uid=alice)" }},
		{name: "a filter that does not parse is refused", secret: secret, wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.LDAPIdentityProvider) { p.Spec.UserSearch.Filter = "(uid={}" }},
		{name: "a group filter that does not parse is refused", secret: secret, wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.LDAPIdentityProvider) {
				p.Spec.GroupSearch = &v1alpha1.LDAPGroupSearch{Base: "ou=groups,dc=example,dc=com", Filter: "member={dn})"}
			}},
		{name: "a base that is no DN is refused", secret: secret, wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.LDAPIdentityProvider) { p.Spec.UserSearch.Base = "people" }},
		{name: "a host without a port is refused", secret: secret, wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.LDAPIdentityProvider) { p.Spec.Host = "ldap.example.com" }},
		{name: "an attribute that is no attribute name is refused", secret: secret, wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.LDAPIdentityProvider) { p.Spec.UserSearch.UIDAttribute = "uid)(x" }},
		{name: "a plaintext mode is refused", secret: secret, wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.LDAPIdentityProvider) { p.Spec.TLS.Mode = "None" }},
		{name: "a CA bundle without a certificate is refused", secret: secret, wantErr: ErrInvalidSpec,
			change: func(p *v1alpha1.LDAPIdentityProvider) { p.Spec.TLS.CABundle = "not PEM" }},
		{name: "a missing Secret is SecretNotFound", wantErr: ErrSecretNotFound},
		{name: "a Secret without the password is SecretNotFound", wantErr: ErrSecretNotFound,
			secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "idp", Name: "ldap"}, Data: map[string][]byte{"username": []byte("cn=svc")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base()
			if tt.change != nil {
				tt.change(p)
			}
			u, err := LDAPIdentityProvider(p, tt.secret)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Equal(t, "corp", u.Name)
				assert.Empty(t, u.BindPassword, "nothing but the name, UID and generation on an error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "uid-1", u.UID)
			assert.Equal(t, int64(2), u.Generation)
			assert.Equal(t, "corp", u.DisplayName)
			assert.False(t, u.StartTLS)
			assert.Equal(t, "cn=svc,dc=example,dc=com", u.BindDN)
			assert.Equal(t, "pw", u.BindPassword)
			assert.Equal(t, "entryUUID", u.UIDAttribute)
			assert.Equal(t, "uid", u.UsernameAttribute)
			assert.Empty(t, u.GroupBase, "no group search: no groups")
		})
	}
}
