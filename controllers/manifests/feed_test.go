package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// takeoverYAML is an OAuthClient whose resource name sorts before "billing" and that claims the
// client ID billing-service, with a demo-marked Secret of its own.
const takeoverYAML = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: aaa}
spec:
  clientID: billing-service
  grantTypes: [client_credentials]
  secretPolicy: External
  secretRef: {name: aaa-oauth, key: client-secret}
---
apiVersion: v1
kind: Secret
metadata:
  name: aaa-oauth
  annotations: {"oauth.latchkey.dev/demo-credentials": "true"}
stringData: {client-secret: stolen}
`

func TestEmbeddedClientIDConflictServesTheEarlierClient(t *testing.T) {
	tests := []struct {
		name string
		// first is written before the first load, later before a reload (if any).
		first, later map[string]string
	}{
		{
			name:  "a second file whose client sorts first does not take the ID on the first load",
			first: map[string]string{"client.yaml": clientYAML, "secret.yaml": secretYAML("s3cret", true), "zz-takeover.yaml": takeoverYAML},
		},
		{
			name:  "a file added later, sorting first by path and name, does not take the ID on reload",
			first: map[string]string{"client.yaml": clientYAML, "secret.yaml": secretYAML("s3cret", true)},
			later: map[string]string{"00-takeover.yaml": takeoverYAML},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.first {
				write(t, dir, name, content)
			}
			l, reg, w := loadWarned(t, dir)
			takeover := "zz-takeover.yaml"
			if tt.later != nil {
				for name, content := range tt.later {
					write(t, dir, name, content)
					takeover = name
				}
				w.reset()
				require.NoError(t, l.Load(t.Context()))
			}

			c, ok := reg.Snapshot().Client("billing-service")
			require.True(t, ok)
			assert.Equal(t, "default/billing", c.Source, "the earlier client holds its ID")
			assert.True(t, c.CheckSecret("s3cret"))
			assert.False(t, c.CheckSecret("stolen"))
			require.NotNil(t, l.Demo())
			assert.Equal(t, DemoClient{ClientID: "billing-service", ClientSecret: "s3cret"}, *l.Demo(),
				"the banner advertises the client that is served")

			got := w.with("ClientIDConflict", `"billing-service"`, "default/billing", "default/aaa",
				filepath.Join(dir, "client.yaml"), filepath.Join(dir, takeover))
			assert.Len(t, got, 1, "one warning names the ID, both claimants and both files; got:\n%s", w)
			assert.NotContains(t, w.String(), "s3cret", "never a secret value")
			assert.NotContains(t, w.String(), "stolen", "never a secret value")

			// Reloads keep the order; when the holder goes, the other client takes over.
			require.NoError(t, l.Load(t.Context()))
			c, _ = reg.Snapshot().Client("billing-service")
			assert.Equal(t, "default/billing", c.Source)
			require.NoError(t, os.Remove(filepath.Join(dir, "client.yaml")))
			require.NoError(t, l.Load(t.Context()))
			c, ok = reg.Snapshot().Client("billing-service")
			require.True(t, ok)
			assert.Equal(t, "default/aaa", c.Source)
			assert.True(t, c.CheckSecret("stolen"))
		})
	}
}

func TestEmbeddedNameConflictsServeTheEarlierResource(t *testing.T) {
	user := func(name, email string) string {
		return "apiVersion: oauth.latchkey.dev/v1alpha1\nkind: User\nmetadata: {name: " + name + "}\nspec: {username: alice, email: " + email + "}\n"
	}
	scope := func(name, description string) string {
		return "apiVersion: oauth.latchkey.dev/v1alpha1\nkind: Scope\nmetadata: {name: " + name + "}\nspec: {name: \"read:projects\", description: " + description + "}\n"
	}
	tests := []struct {
		name         string
		first, later string
		warning      []string
		// served returns what tells the two apart (e-mail, description) of the one served.
		served             func(snap *registry.Snapshot) (string, bool)
		original, newcomer string
	}{
		{
			name:  "a User added later with the same username does not shadow the first",
			first: user("alice", "alice@example.com"), later: user("aaa", "mallory@example.com"),
			warning: []string{"UsernameConflict", `"alice"`, "User alice", "aaa"},
			served: func(snap *registry.Snapshot) (string, bool) {
				u, ok := snap.User("alice")
				if !ok {
					return "", false
				}
				return u.Email, true
			},
			original: "alice@example.com", newcomer: "mallory@example.com",
		},
		{
			name:  "a Scope added later with the same scope name does not redefine it",
			first: scope("read-projects", "original"), later: scope("aaa", "redefinition"),
			warning: []string{"ScopeNameConflict", `"read:projects"`, "Scope read-projects", "aaa"},
			served: func(snap *registry.Snapshot) (string, bool) {
				sc, ok := snap.Scope("read:projects")
				if !ok {
					return "", false
				}
				return sc.Description, true
			},
			original: "original", newcomer: "redefinition",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "first.yaml", tt.first)
			l, reg, w := loadWarned(t, dir)
			write(t, dir, "00-later.yaml", tt.later)
			require.NoError(t, l.Load(t.Context()))
			got, ok := tt.served(reg.Snapshot())
			require.True(t, ok)
			assert.Equal(t, tt.original, got, "the earlier resource is served")
			assert.Len(t, w.with(append(tt.warning, filepath.Join(dir, "first.yaml"), filepath.Join(dir, "00-later.yaml"))...), 1,
				"the warning names the name, both claimants and both files; got:\n%s", w)

			require.NoError(t, os.Remove(filepath.Join(dir, "first.yaml")))
			require.NoError(t, l.Load(t.Context()))
			got, ok = tt.served(reg.Snapshot())
			require.True(t, ok)
			assert.Equal(t, tt.newcomer, got, "the other takes over when the first goes")
		})
	}
}

func TestEmbeddedServesAConfidentialClientWithoutItsSecretAsAClusterDoes(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "client.yaml", clientYAML) // External, secretRef billing-oauth: not in the folder
	_, reg, w := loadWarned(t, dir)

	c, ok := reg.Snapshot().Client("billing-service")
	require.True(t, ok, "the client holds its ID")
	assert.False(t, c.HasSecret)
	assert.False(t, c.CheckSecret(""), "it cannot authenticate")
	got := w.with("SecretNotFound", "default/billing", `"billing-service"`, "Secret default/billing-oauth", filepath.Join(dir, "client.yaml"))
	assert.Len(t, got, 1, "a warning names the client, its file and the missing Secret; got:\n%s", w)
}

func TestWarningsWithoutAWarnerGoToTheContextLogger(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "client.yaml", clientYAML) // its Secret is missing: a warning
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	l, err := New(dir, registry.New(), nil)
	require.NoError(t, err)
	require.NoError(t, l.Load(logr.NewContext(t.Context(), log)))
	var warned []string
	for _, line := range lines {
		if strings.Contains(line, `"level"="warn"`) && strings.Contains(line, "SecretNotFound") {
			warned = append(warned, line)
		}
	}
	assert.Len(t, warned, 1, "one level=warn line; got:\n%s", strings.Join(lines, "\n"))
}
