package manifests

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClientListingUnknownScopesIsServedWithAWarning(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "client.yaml", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: billing}
spec:
  clientID: billing-service
  grantTypes: [client_credentials]
  scopes: ["read:projects", "openid", "write:projects"]
  secretPolicy: External
  secretRef: {name: billing-oauth, key: client-secret}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: Scope
metadata: {name: read-projects}
spec: {name: "read:projects"}
`)
	write(t, dir, "secret.yaml", secretYAML("s3cret", false))
	l, reg, w := loadWarned(t, dir)

	c, ok := reg.Snapshot().Client("billing-service")
	require.True(t, ok, "the client is served")
	assert.True(t, c.CheckSecret("s3cret"))
	lines := w.with("manifest client lists unknown or disallowed scopes; it is served without them", "reason=UnknownScope",
		`unknown scopes "write:projects"`, "resource=default/billing", "file="+dir+"/client.yaml", "clientID=billing-service")
	require.Len(t, lines, 1, w.String())
	assert.NotContains(t, lines[0], `"read:projects"`)
	assert.NotContains(t, lines[0], `"openid"`)

	t.Run("a Scope added to the folder silences it", func(t *testing.T) {
		write(t, dir, "more.yaml", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: Scope
metadata: {name: write-projects}
spec: {name: "write:projects"}
`)
		w.reset()
		require.NoError(t, l.Load(t.Context()))
		assert.Empty(t, w.with("unknown scopes"), w.String())
	})
}
