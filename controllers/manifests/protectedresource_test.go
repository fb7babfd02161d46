package manifests

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const resourceYAML = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: ProtectedResource
metadata: {name: projects}
spec:
  audience: https://projects.example.com
  scopes: ["read:projects", "write:projects"]
  allowedClients: [{name: billing}, {name: ghost, namespace: elsewhere}]
  allowedClientSelector: {matchLabels: {team: projects}}
  tokenExchange:
    allowedRequesters:
      - client: {name: billing}
        subjectTokenSources: [AccessToken, WorkloadIssuer]
        workloadIssuers: [github]
  metadata: {resourceName: Projects API}
`

const labelledClientYAML = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: reporter, labels: {team: projects}}
spec: {type: Public, grantTypes: [authorization_code], redirectURIs: ["https://r.example.com/cb"]}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: other-team, labels: {team: other}}
spec: {type: Public, grantTypes: [authorization_code], redirectURIs: ["https://o.example.com/cb"]}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: same-label-elsewhere, namespace: other, labels: {team: projects}}
spec: {type: Public, grantTypes: [authorization_code], redirectURIs: ["https://e.example.com/cb"]}
`

func TestEmbeddedServesProtectedResources(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "client.yaml", clientYAML)
	write(t, dir, "secret.yaml", secretYAML("s3cret", false))
	write(t, dir, "clients.yaml", labelledClientYAML)
	write(t, dir, "resource.yaml", resourceYAML)
	l, reg, w := loadWarned(t, dir)

	p, ok := reg.Snapshot().ProtectedResource("https://projects.example.com")
	require.True(t, ok, "%s", w)
	assert.Equal(t, "default/projects", p.Source)
	assert.Equal(t, []string{"default/billing", "default/reporter", "elsewhere/ghost"}, p.AllowedClients,
		"named clients (existing or not) and the selected ones of its namespace only")
	assert.Equal(t, []string{"read:projects", "write:projects"}, p.Scopes)
	require.Len(t, p.ExchangeRequesters, 1)
	assert.Equal(t, "default/billing", p.ExchangeRequesters[0].Client)
	assert.Equal(t, []string{"AccessToken", "WorkloadIssuer"}, p.ExchangeRequesters[0].SubjectTokenSources)
	assert.Equal(t, "Projects API", p.Metadata.Name)
	assert.Equal(t, []string{"header"}, p.Metadata.BearerMethods)
	assert.NotEmpty(t, w.with("ProtectedResource", "elsewhere/ghost"), "a named client the folder lacks is warned about")
	assert.NotEmpty(t, w.with("UnknownScope", `"write:projects"`), "an owned scope no Scope defines is warned about")

	t.Run("a label change re-resolves the selector on reload", func(t *testing.T) {
		write(t, dir, "clients.yaml", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: reporter, labels: {team: other}}
spec: {type: Public, grantTypes: [authorization_code], redirectURIs: ["https://r.example.com/cb"]}
`)
		require.NoError(t, l.Load(t.Context()))
		p, ok := reg.Snapshot().ProtectedResource("https://projects.example.com")
		require.True(t, ok)
		assert.Equal(t, []string{"default/billing", "elsewhere/ghost"}, p.AllowedClients)
	})
	t.Run("a later resource claiming the audience is warned about and does not hold it", func(t *testing.T) {
		w.reset()
		write(t, dir, "z-resource.yaml", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: ProtectedResource
metadata: {name: squatter, namespace: other}
spec: {audience: https://projects.example.com, allowedClients: [{name: evil}]}
`)
		require.NoError(t, l.Load(t.Context()))
		p, ok := reg.Snapshot().ProtectedResource("https://projects.example.com")
		require.True(t, ok)
		assert.Equal(t, "default/projects", p.Source)
		assert.NotEmpty(t, w.with("AudienceConflict", "other/squatter", "default/projects"), "%s", w)
	})
	t.Run("a resource that breaks its namespace's audience policy is not served", func(t *testing.T) {
		w.reset()
		write(t, dir, "policy.yaml", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClientPolicy
metadata: {name: internal-only, namespace: other}
spec: {allowedAudiences: ["https://internal.example.com/*"]}
`)
		require.NoError(t, l.Load(t.Context()))
		_, ok := reg.Snapshot().ProtectedResourceBySource("other/squatter")
		assert.False(t, ok)
		assert.NotEmpty(t, w.with("PolicyViolation", "other/internal-only", "allowedAudiences"), "%s", w)
	})
	t.Run("an invalid resource is not served and removing a file withdraws it", func(t *testing.T) {
		w.reset()
		write(t, dir, "resource.yaml", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: ProtectedResource
metadata: {name: projects}
spec: {audience: "https://projects.example.com#frag"}
`)
		require.NoError(t, l.Load(t.Context()))
		_, ok := reg.Snapshot().ProtectedResourceBySource("default/projects")
		assert.False(t, ok)
		assert.NotEmpty(t, w.with("InvalidSpec", "fragment"), "%s", w)
	})
}
