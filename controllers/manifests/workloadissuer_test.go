package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness/oidcissuer"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// issuerYAML is a WorkloadIssuer whose keys are in the Secret default/ci-keys, for the namespaces.
func issuerYAML(name string, namespaces ...string) string {
	return `apiVersion: oauth.latchkey.dev/v1alpha1
kind: WorkloadIssuer
metadata: {name: ` + name + `}
spec:
  issuer: https://ci.example
  audiences: ["https://latchkey.example"]
  allowedNamespaces: ["` + strings.Join(namespaces, `", "`) + `"]
  jwksSecretRef: {namespace: default, name: ci-keys}
`
}

// keysYAML is the Secret default/ci-keys holding the JWK set.
func keysYAML(jwks []byte) string {
	return "apiVersion: v1\nkind: Secret\nmetadata: {name: ci-keys, namespace: default}\nstringData:\n  jwks.json: '" + string(jwks) + "'\n"
}

// workloadClientYAML is an OAuthClient of the namespace bound to the subject of the issuer.
func workloadClientYAML(namespace, name, issuer, subject string) string {
	return `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: ` + name + `, namespace: ` + namespace + `}
spec:
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: service_account_token
  workloadIdentity: {issuerRef: {name: ` + issuer + `}, subject: "` + subject + `"}
`
}

func TestEmbeddedServesWorkloadIssuersAsAClusterDoes(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := oidcissuer.NewKey(t, "k1"), oidcissuer.NewKey(t, "k2")
	write(t, dir, "issuer.yaml", issuerYAML("ci", "default"))
	write(t, dir, "keys.yaml", keysYAML(oidcissuer.JWKS(t, k1)))
	l, reg, w := loadWarned(t, dir)
	assert.Empty(t, w.String())

	first, ok := reg.Snapshot().WorkloadIssuer("ci")
	require.True(t, ok)
	assert.Equal(t, "https://ci.example", first.Issuer)
	require.Len(t, first.StaticKeys, 1)
	assert.Equal(t, "k1", first.StaticKeys[0].KeyID)
	assert.Positive(t, first.Generation)

	t.Run("A reload of the same folder keeps the value the server built its key set from", func(t *testing.T) {
		require.NoError(t, l.Load(t.Context()))
		again, ok := reg.Snapshot().WorkloadIssuer("ci")
		require.True(t, ok)
		assert.Same(t, first, again)
	})
	t.Run("New keys in the Secret are a new generation", func(t *testing.T) {
		write(t, dir, "keys.yaml", keysYAML(oidcissuer.JWKS(t, k1, k2)))
		require.NoError(t, l.Load(t.Context()))
		got, ok := reg.Snapshot().WorkloadIssuer("ci")
		require.True(t, ok)
		assert.Len(t, got.StaticKeys, 2)
		assert.Greater(t, got.Generation, first.Generation)
	})
	t.Run("Without its Secret the issuer is not served and the warning says why", func(t *testing.T) {
		w.reset()
		require.NoError(t, os.Remove(filepath.Join(dir, "keys.yaml")))
		require.NoError(t, l.Load(t.Context()))
		_, ok := reg.Snapshot().WorkloadIssuer("ci")
		assert.False(t, ok, "never served without its keys")
		assert.Len(t, w.with("manifest not served", "WorkloadIssuer", "reason=SecretNotFound", "Secret default/ci-keys does not exist",
			filepath.Join(dir, "issuer.yaml")), 1, "got:\n%s", w)
	})
	t.Run("An issuer whose claim rule does not compile is not served", func(t *testing.T) {
		w.reset()
		write(t, dir, "keys.yaml", keysYAML(oidcissuer.JWKS(t, k1)))
		write(t, dir, "issuer.yaml", issuerYAML("ci", "default")+"  claimValidationRules: [{expression: \"claims.sub ==\"}]\n")
		require.NoError(t, l.Load(t.Context()))
		_, ok := reg.Snapshot().WorkloadIssuer("ci")
		assert.False(t, ok)
		assert.Len(t, w.with("manifest not served", "reason=InvalidSpec", "claimValidationRules: rule 0"), 1, "got:\n%s", w)
	})
	t.Run("An issuer removed from the folder is no longer served", func(t *testing.T) {
		write(t, dir, "issuer.yaml", issuerYAML("ci", "default"))
		require.NoError(t, l.Load(t.Context()))
		_, ok := reg.Snapshot().WorkloadIssuer("ci")
		require.True(t, ok)
		require.NoError(t, os.Remove(filepath.Join(dir, "issuer.yaml")))
		require.NoError(t, l.Load(t.Context()))
		_, ok = reg.Snapshot().WorkloadIssuer("ci")
		assert.False(t, ok)
	})
}

func TestEmbeddedReportsWhatKeepsAClientFromItsWorkloadIdentity(t *testing.T) {
	jwks := oidcissuer.JWKS(t, oidcissuer.NewKey(t, "k1"))
	tests := []struct {
		name  string
		files map[string]string
		want  []string // parts of the one warning expected
		// holder is the source that holds the pair (issuer ci, subject repo:app), if any;
		// unheld: nobody holds it (a client the issuer does not allow never does).
		holder string
		unheld bool
	}{
		{
			name:   "A client whose issuer is not in the folder is IssuerNotFound",
			files:  map[string]string{"client.yaml": workloadClientYAML("default", "app", "ci", "repo:app")},
			want:   []string{"reason=IssuerNotFound", "WorkloadIssuer ci does not exist", "resource=default/app", "client.yaml"},
			unheld: true,
		},
		{
			name: "A client of a namespace the issuer does not allow is NamespaceNotAllowed",
			files: map[string]string{"issuer.yaml": issuerYAML("ci", "payments") + "---\n" + keysYAML(jwks),
				"client.yaml": workloadClientYAML("default", "app", "ci", "repo:app")},
			want:   []string{"reason=NamespaceNotAllowed", "does not allow clients of namespace default", "resource=default/app"},
			unheld: true,
		},
		{
			name: "Of two clients bound to one subject the earlier holds it and the other is SubjectConflict",
			files: map[string]string{"issuer.yaml": issuerYAML("ci", "*") + "---\n" + keysYAML(jwks),
				"a.yaml": workloadClientYAML("default", "zz-first", "ci", "repo:app"),
				"b.yaml": workloadClientYAML("default", "aa-second", "ci", "repo:app")},
			want: []string{"reason=SubjectConflict", `subject "repo:app" of WorkloadIssuer ci`, "resource=default/aa-second",
				"servedResource=default/zz-first", "a.yaml", "b.yaml"},
			holder: "default/zz-first",
		},
		{
			name: "Two clients bound to one ServiceAccount are a SubjectConflict too",
			files: map[string]string{
				"a.yaml": strings.Replace(workloadClientYAML("default", "first", "ci", "x"),
					`workloadIdentity: {issuerRef: {name: ci}, subject: "x"}`, "serviceAccount: {name: api}", 1),
				"b.yaml": strings.Replace(workloadClientYAML("default", "second", "ci", "x"),
					`workloadIdentity: {issuerRef: {name: ci}, subject: "x"}`, "serviceAccount: {name: api}", 1)},
			want: []string{"reason=SubjectConflict", "ServiceAccount default/api is already bound to OAuthClient default/first",
				"resource=default/second"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				write(t, dir, name, content)
			}
			_, reg, w := loadWarned(t, dir)
			got := w.with(tt.want...)
			assert.Len(t, got, 1, "got:\n%s", w)
			if tt.holder != "" {
				h, ok := reg.Snapshot().SubjectHolder("ci", "repo:app")
				require.True(t, ok)
				assert.Equal(t, tt.holder, h.Source)
			}
			if tt.unheld {
				_, ok := reg.Snapshot().SubjectHolder("ci", "repo:app")
				assert.False(t, ok)
			}
			for c := range reg.Snapshot().Clients() {
				assert.Equal(t, registry.AuthMethodServiceAccountToken, c.AuthMethod, "every client is served, keeping its client ID")
			}
		})
	}
}
