package manifests

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const upstreamYAML = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OIDCIdentityProvider
metadata: {name: corp}
spec:
  issuer: http://127.0.0.1:5556
  displayName: Corp SSO
  client: {clientID: latchkey, secretRef: {namespace: default, name: corp-idp}}
  claims: {username: "claims.preferred_username"}
  allowPolicy: "'staff' in user.groups"
`

const upstreamSecretYAML = "apiVersion: v1\nkind: Secret\nmetadata: {name: corp-idp, namespace: default}\nstringData: {client-secret: s3cret}\n"

func TestEmbeddedServesOIDCIdentityProvidersWithTheirSecret(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "idp.yaml", upstreamYAML)
	l, reg, w := loadWarned(t, dir)
	_, ok := reg.Snapshot().UpstreamOIDC("corp")
	assert.False(t, ok, "not served without its client secret")
	assert.Contains(t, w.String(), "SecretNotFound")

	write(t, dir, "secret.yaml", upstreamSecretYAML)
	require.NoError(t, l.Load(t.Context()))
	u, ok := reg.Snapshot().UpstreamOIDC("corp")
	require.True(t, ok)
	assert.Equal(t, "Corp SSO", u.DisplayName)
	assert.Equal(t, "s3cret", u.ClientSecret)
	assert.Equal(t, EmbeddedUIDPrefix+"corp", u.UID, "a stable UID across restarts")
	assert.Equal(t, "claims.preferred_username", u.Claims.Username)
	gen := u.Generation

	require.NoError(t, l.Load(t.Context()))
	again, _ := reg.Snapshot().UpstreamOIDC("corp")
	assert.Equal(t, gen, again.Generation, "a reload that changes nothing keeps the value")

	require.NoError(t, os.Remove(filepath.Join(dir, "idp.yaml")))
	require.NoError(t, l.Load(t.Context()))
	_, ok = reg.Snapshot().UpstreamOIDC("corp")
	assert.False(t, ok, "removed from the folder, withdrawn")
}
