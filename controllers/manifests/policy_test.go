package manifests

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/register"
	"github.com/latchkey-dev/latchkey/server/registration"
	"github.com/latchkey-dev/latchkey/server/registry"
)

const scopePolicyYAML = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClientPolicy
metadata: {name: read-only}
spec: {allowedScopes: ["read:*"]}
`

func TestEmbeddedWithholdsClientsThatBreakAPolicyOfTheirNamespace(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "client.yaml", clientYAML)
	write(t, dir, "secret.yaml", secretYAML("s3cret", false))
	_, reg := load(t, dir)
	_, ok := reg.Snapshot().Client("billing-service")
	require.True(t, ok, "served without a policy")

	tests := []struct {
		name   string
		policy string
		served bool
		warned string
	}{
		{"a policy the client satisfies changes nothing", scopePolicyYAML, true, ""},
		{"a policy the client breaks withholds it, named in the warning", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClientPolicy
metadata: {name: admin-only}
spec: {allowedScopes: ["admin:*"]}
`, false, `OAuthClientPolicy default/admin-only: allowedScopes does not allow "read:projects"`},
		{"a policy of another namespace does not apply", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClientPolicy
metadata: {name: admin-only, namespace: other}
spec: {allowedScopes: ["admin:*"]}
`, true, ""},
		{"every policy of the namespace must be satisfied", scopePolicyYAML + `---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClientPolicy
metadata: {name: no-secrets}
spec: {allowedAuthenticationMethods: [private_key_jwt]}
`, false, `OAuthClientPolicy default/no-secrets: allowedAuthenticationMethods does not allow "secret"`},
		{"an invalid pattern is warned about and matches nothing", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClientPolicy
metadata: {name: typo}
spec: {allowedScopes: ["re*d:projects"]}
`, false, "manifest policy invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			write(t, dir, "policy.yaml", tt.policy)
			_, reg, w := loadWarned(t, dir)
			_, ok := reg.Snapshot().Client("billing-service")
			assert.Equal(t, tt.served, ok)
			if tt.served {
				assert.Empty(t, w.String())
				return
			}
			assert.NotEmpty(t, w.with(tt.warned), w.String())
			assert.NotEmpty(t, w.with("manifest not served", "PolicyViolation", "billing-service"), w.String())
		})
	}
}

func TestEmbeddedRegistrationBreakingAPolicyOfTheFolderIsRefused(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "policy.yaml", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClientPolicy
metadata: {name: confidential-only, namespace: registered}
spec: {allowPublicClients: false, allowedScopes: [openid]}
`)
	l, reg := load(t, dir)
	m, err := registration.NewMemory(reg, registration.MemoryOptions{Namespace: "registered", Admit: l.AdmitRegistration("registered")})
	require.NoError(t, err)
	tests := []struct {
		name    string
		md      register.ClientMetadata
		refused string
	}{
		{"a confidential client within the policy is registered",
			register.ClientMetadata{TokenEndpointAuthMethod: oauth2.AuthMethodBasic, GrantTypes: []string{"client_credentials"}, Scopes: []string{"openid"}}, ""},
		{"a public client is refused, naming the policy",
			register.ClientMetadata{TokenEndpointAuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"http://127.0.0.1/cb"}},
			`OAuthClientPolicy registered/confidential-only: allowPublicClients does not allow "Public"`},
		{"a scope outside the policy is refused",
			register.ClientMetadata{TokenEndpointAuthMethod: oauth2.AuthMethodBasic, GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}},
			`allowedScopes does not allow "admin"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := m.Register(t.Context(), tt.md, register.RegistrantInitialToken)
			if tt.refused == "" {
				require.NoError(t, err)
				_, ok := reg.Snapshot().Client(rc.ClientID)
				assert.True(t, ok)
				return
			}
			require.ErrorIs(t, err, register.ErrInvalidClientMetadata)
			var oe *oauth2.Error
			require.ErrorAs(t, err, &oe)
			assert.Contains(t, oe.Description(), tt.refused)
		})
	}
}

func TestEmbeddedDefaultPolicyAppliesToEveryNamespace(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "client.yaml", clientYAML)
	write(t, dir, "secret.yaml", secretYAML("s3cret", false))
	write(t, dir, "policy.yaml", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClientPolicy
metadata: {name: cluster-default, namespace: latchkey}
spec: {allowedScopes: ["admin:*"]}
`)
	for _, tt := range []struct {
		name   string
		def    string
		served bool
	}{
		{"a policy of another namespace not named the default does not apply", "", true},
		{"the named default applies to every namespace", "cluster-default", false},
		{"a default not in the folder restricts nothing", "absent", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := registry.New()
			l, err := New(dir, reg, &warnings{})
			require.NoError(t, err)
			if tt.def != "" {
				l.SetDefaultPolicy("latchkey", tt.def)
			}
			require.NoError(t, l.Load(t.Context()))
			_, ok := reg.Snapshot().Client("billing-service")
			assert.Equal(t, tt.served, ok)
		})
	}
}
