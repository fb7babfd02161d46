package manifests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const generatedKeyClientYAML = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: signer}
spec:
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: private_key_jwt
  keyPolicy: Generate
`

func TestEmbeddedServesAGeneratedKeyClientWithoutKeysUntilItsSecretIsInTheFolder(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "client.yaml", generatedKeyClientYAML)
	l, reg, w := loadWarned(t, dir)

	c, ok := reg.Snapshot().Client("signer.default")
	require.True(t, ok, "the client holds its ID")
	assert.Empty(t, c.PublicKeys, "no key verifies its assertions")
	got := w.with("SecretNotFound", "default/signer", "keyPolicy Generate generates no key pair without a cluster",
		"Secret default/signer-oauth-client-key", `under "jwks.json"`, filepath.Join(dir, "client.yaml"))
	assert.Len(t, got, 1, "a warning names the client, its file, the Secret to add and why; got:\n%s", w)

	// The public keys, as a cluster's generated key Secret holds them.
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: "k1", Use: "sig", Algorithm: "ES256"}}})
	require.NoError(t, err)
	write(t, dir, "keys.yaml", `apiVersion: v1
kind: Secret
metadata: {name: signer-oauth-client-key}
stringData:
  jwks.json: '`+string(jwks)+`'
`)
	w.reset()
	require.NoError(t, l.Load(t.Context()))
	c, ok = reg.Snapshot().Client("signer.default")
	require.True(t, ok)
	require.Len(t, c.PublicKeys, 1)
	assert.Equal(t, "k1", c.PublicKeys[0].KeyID)
	assert.True(t, priv.PublicKey.Equal(c.PublicKeys[0].Key))
	assert.Empty(t, w.with("signer"), "served with its keys: no warning")
}

func TestEmbeddedWarningOfAnExternalKeyClientSaysNothingOfGeneration(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "client.yaml", `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: signer}
spec:
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: private_key_jwt
  jwksSecretRef: {name: signer-keys}
`)
	_, _, w := loadWarned(t, dir)
	assert.Len(t, w.with("SecretNotFound", "Secret default/signer-keys"), 1, "got:\n%s", w)
	assert.Empty(t, w.with("keyPolicy Generate"))
}
