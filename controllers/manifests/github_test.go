package manifests

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const githubYAML = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: GitHubIdentityProvider
metadata: {name: ghes}
spec:
  host: github.corp.example
  displayName: Corp GitHub
  client: {secretRef: {namespace: default, name: ghes-app}}
  allowedOrganizations: [acme]
  teamsAsGroups: name
`

const githubSecretYAML = "apiVersion: v1\nkind: Secret\nmetadata: {name: ghes-app, namespace: default}\nstringData: {clientID: Iv1.abc, clientSecret: s3cret}\n"

func TestEmbeddedServesGitHubIdentityProvidersWithTheirSecret(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "gh.yaml", githubYAML)
	l, reg, w := loadWarned(t, dir)
	_, ok := reg.Snapshot().UpstreamGitHub("ghes")
	assert.False(t, ok, "not served without its OAuth App credentials")
	assert.Contains(t, w.String(), "SecretNotFound")

	write(t, dir, "secret.yaml", githubSecretYAML)
	require.NoError(t, l.Load(t.Context()))
	u, ok := reg.Snapshot().UpstreamGitHub("ghes")
	require.True(t, ok)
	assert.Equal(t, "Corp GitHub", u.DisplayName)
	assert.Equal(t, "Iv1.abc", u.ClientID)
	assert.Equal(t, "s3cret", u.ClientSecret)
	assert.Equal(t, "https://github.corp.example", u.WebURL)
	assert.Equal(t, "https://github.corp.example/api/v3", u.APIURL, "an Enterprise host's REST API")
	assert.Equal(t, []string{"acme"}, u.AllowedOrganizations)
	assert.Equal(t, "name", u.TeamsAsGroups)
	assert.Equal(t, EmbeddedUIDPrefix+"ghes", u.UID, "a stable UID across restarts")
	gen := u.Generation

	require.NoError(t, l.Load(t.Context()))
	again, _ := reg.Snapshot().UpstreamGitHub("ghes")
	assert.Equal(t, gen, again.Generation, "a reload that changes nothing keeps the value")

	write(t, dir, "gh.yaml", "apiVersion: oauth.latchkey.dev/v1alpha1\nkind: GitHubIdentityProvider\nmetadata: {name: ghes}\n"+
		"spec: {client: {secretRef: {namespace: default, name: ghes-app}}}\n")
	require.NoError(t, l.Load(t.Context()))
	_, ok = reg.Snapshot().UpstreamGitHub("ghes")
	assert.False(t, ok, "neither allowedOrganizations nor allowAllUsers: an invalid spec is not served")

	require.NoError(t, os.Remove(filepath.Join(dir, "gh.yaml")))
	require.NoError(t, l.Load(t.Context()))
	_, ok = reg.Snapshot().UpstreamGitHub("ghes")
	assert.False(t, ok, "removed from the folder, withdrawn")
}
