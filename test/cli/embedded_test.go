package cli

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

const mistakes = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: first}
spec: {clientID: shared, grantTypes: [client_credentials], secretPolicy: External, secretRef: {name: s, key: k}}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: second}
spec: {clientID: shared, grantTypes: [client_credentials], secretPolicy: External, secretRef: {name: s, key: k}}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: public}
spec: {type: Public, grantTypes: [client_credentials]}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {k: the-secret}
`

// The embedded mode reports what is wrong in the folder as warnings naming the file, the resource
// and the reason, keeps serving the last good contents of a file broken while it runs, and never
// prints a stack trace.
func TestEmbeddedModeWarnsAboutMistakesWithoutStackTraces(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		warn string // how a warning line begins
	}{
		{name: "JSON logs (the default)", warn: `"level":"warn"`},
		{name: "development logs (--zap-devel), whose stack traces began at warn", args: []string{"--zap-devel"}, warn: "WARN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "clients.yaml")
			write(t, file, mistakes)
			srv, err := harness.StartServer(t.Context(), binary, filepath.Join(t.TempDir(), "latchkey.log"), 30*time.Second,
				func(harness.ServeAddrs) []string {
					return append([]string{"serve", "--manifests", dir, "--audit-log", "off"}, tc.args...)
				})
			require.NoError(t, err)
			t.Cleanup(func() { srv.Stop(10 * time.Second) })

			lineWith := func(parts ...string) bool {
				for _, l := range strings.Split(srv.Log(), "\n") {
					all := strings.Contains(l, tc.warn)
					for _, p := range parts {
						all = all && strings.Contains(l, p)
					}
					if all {
						return true
					}
				}
				return false
			}
			assert.True(t, lineWith("manifest not served", "default/public", file, "InvalidSpec", "a Public client must not use client_credentials"), srv.Log())
			assert.True(t, lineWith("ClientIDConflict", "default/second", "default/first", file), srv.Log())
			assert.Equal(t, http.StatusOK, clientCredentials(t, srv.URL()), "the first claimant of the client ID is served")

			write(t, file, mistakes[:200]+"\n  : [half-saved")
			require.Eventually(t, func() bool {
				return lineWith("manifest file does not parse; its last good contents stay served", file+":")
			}, 10*time.Second, 20*time.Millisecond, srv.Log())
			assert.Equal(t, http.StatusOK, clientCredentials(t, srv.URL()), "the last good contents are served")

			log := srv.Log()
			noStackTrace(t, log)
			assert.NotContains(t, log, `"level":"error"`)
			assert.NotContains(t, log, "ERROR")
		})
	}
}

func clientCredentials(t *testing.T, base string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/oauth2/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("shared", "the-secret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}
