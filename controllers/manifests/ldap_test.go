package manifests

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const ldapYAML = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: LDAPIdentityProvider
metadata: {name: corp}
spec:
  host: ldap.example.com:389
  tls: {mode: StartTLS}
  bind: {secretRef: {namespace: default, name: corp-ldap}}
  userSearch: {base: "ou=people,dc=example,dc=com", uidAttribute: uidNumber}
  displayName: Corp Directory
`

const ldapSecretYAML = "apiVersion: v1\nkind: Secret\nmetadata: {name: corp-ldap, namespace: default}\n" +
	"stringData: {username: \"cn=latchkey,dc=example,dc=com\", password: s3cret}\n"

func TestEmbeddedServesLDAPIdentityProvidersWithTheirBindSecret(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "ldap.yaml", ldapYAML)
	l, reg, w := loadWarned(t, dir)
	_, ok := reg.Snapshot().UpstreamLDAP("corp")
	assert.False(t, ok, "not served without its bind Secret")
	assert.Contains(t, w.String(), "SecretNotFound")

	write(t, dir, "secret.yaml", ldapSecretYAML)
	require.NoError(t, l.Load(t.Context()))
	u, ok := reg.Snapshot().UpstreamLDAP("corp")
	require.True(t, ok)
	assert.Equal(t, "Corp Directory", u.DisplayName)
	assert.True(t, u.StartTLS)
	assert.Equal(t, "cn=latchkey,dc=example,dc=com", u.BindDN)
	assert.Equal(t, "s3cret", u.BindPassword)
	assert.Equal(t, "uidNumber", u.UIDAttribute)
	assert.Equal(t, "(uid={})", u.UserFilter)
	assert.Equal(t, EmbeddedLDAPUIDPrefix+"corp", u.UID, "a stable UID across restarts, not an OIDC provider's")
	gen := u.Generation

	require.NoError(t, l.Load(t.Context()))
	again, _ := reg.Snapshot().UpstreamLDAP("corp")
	assert.Equal(t, gen, again.Generation, "a reload that changes nothing keeps the value")

	require.NoError(t, os.Remove(filepath.Join(dir, "ldap.yaml")))
	require.NoError(t, l.Load(t.Context()))
	_, ok = reg.Snapshot().UpstreamLDAP("corp")
	assert.False(t, ok, "removed from the folder, withdrawn")
}
