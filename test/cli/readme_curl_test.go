package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// runScript runs a README block in the repository's root with bash -euo pipefail, the test's
// binary and kubectl (if given) first on PATH and the variables of env, and returns its standard
// output.
func runScript(t *testing.T, script string, kubectlDir string, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	root, err := harness.Root()
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = root
	path := filepath.Dir(binary)
	if kubectlDir != "" {
		path += string(os.PathListSeparator) + kubectlDir
	}
	cmd.Env = append(os.Environ(), append(env, "PATH="+path+string(os.PathListSeparator)+os.Getenv("PATH"))...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), &scriptError{err: err, stderr: stderr.String()}
	}
	return string(out), nil
}

// scriptError is a failed run of a README block, with what it wrote on stderr.
type scriptError struct {
	err    error
	stderr string
}

func (e *scriptError) Error() string { return e.err.Error() + ": " + e.stderr }

// TestTheREADMEsCurlExamplesWork runs the README's curl examples, as written, against the binary
// in embedded mode with config/samples (what make run serves). Only the host and port change
// (http://localhost:8080 becomes the test's server), and the credentials the README leaves to the
// reader get the test's: $INITIAL_TOKEN from the server's token file, CODE from signing in as
// alice at the README's authorize URL.
func TestTheREADMEsCurlExamplesWork(t *testing.T) {
	root, err := harness.Root()
	require.NoError(t, err)
	tokenFile := filepath.Join(t.TempDir(), "initial-tokens")
	const initialToken = "readme-initial-access-token-0123"
	write(t, tokenFile, initialToken+"\n")
	srv, err := harness.StartServer(t.Context(), binary, filepath.Join(t.TempDir(), "latchkey.log"), 30*time.Second,
		func(a harness.ServeAddrs) []string {
			return []string{"serve", "--manifests", filepath.Join(root, "config", "samples"), "--issuer", a.URL(),
				"--audit-log", "off", "--registration-initial-token-file", tokenFile}
		})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Stop(10 * time.Second) })
	local := func(s string) string { return strings.ReplaceAll(s, "http://localhost:8080", srv.URL()) }

	for _, tc := range []struct {
		name    string
		heading string
		block   int
		env     []string
		want    []string
	}{
		{name: "the set-up's curl line gets demo-service a token", heading: "## Set-up", block: 1,
			want: []string{`"access_token":"`, `"token_type":"Bearer"`}},
		{name: "the registration example registers a client with an initial access token",
			heading: "## Dynamic client registration", env: []string{"INITIAL_TOKEN=" + initialToken},
			want: []string{`"client_id":"`, `"client_name":"My App"`}},
		{name: "the CORS preflight example is answered 204 for the origin of the sample's redirect URI",
			heading: "## Browser apps (CORS)",
			want:    []string{"HTTP/1.1 204", "Access-Control-Allow-Origin: http://localhost:3000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := readmeBlocks(t, tc.heading)[tc.block]
			require.Contains(t, script, "http://localhost:8080")
			out, err := runScript(t, local(script), "", tc.env...)
			require.NoError(t, err, out)
			for _, w := range tc.want {
				assert.Contains(t, out, w)
			}
		})
	}

	t.Run("the set-up's authorize URL signs alice in and its code exchange gets an ID token", func(t *testing.T) {
		authorize := readmeFenced(t, "## Set-up", "text")[0]
		b := harness.NewBrowser(t, nil, srv.URL())
		p := b.Get(local(strings.TrimSpace(authorize)))
		require.True(t, p.IsLogin(), "%d %s", p.Status, p.Body)
		p = b.Login(p, "alice", "alice-password") // the README's words
		if p.IsConsent() {
			p = b.Decide(p, "allow")
		}
		cb := p.Callback(t)
		require.Equal(t, "http://localhost:3000/callback", cb.URI)
		require.Equal(t, "xyz", cb.State)
		require.NotEmpty(t, cb.Code, cb.Query)
		script := readmeBlocks(t, "## Set-up")[2]
		require.Contains(t, script, "code=CODE")
		out, err := runScript(t, local(strings.Replace(script, "code=CODE", "code="+cb.Code, 1)), "")
		require.NoError(t, err, out)
		assert.Contains(t, out, `"id_token":"`)
	})
}

// TestTheDeviceFlowDocsCurlExamplesWork runs the curl examples of docs/device-flow.md, as
// written, against the binary in embedded mode with config/samples: the device authorization of
// demo-cli, a poll before the user decided (authorization_pending), alice's approval on the
// verification page (verification_uri_complete), and the poll that gets the tokens. Only the
// host and port change, and DEVICE_CODE becomes the device code of the first step; the server
// runs with --device-poll-interval 1s so that the test waits one second, not five.
func TestTheDeviceFlowDocsCurlExamplesWork(t *testing.T) {
	root, err := harness.Root()
	require.NoError(t, err)
	srv, err := harness.StartServer(t.Context(), binary, filepath.Join(t.TempDir(), "latchkey.log"), 30*time.Second,
		func(a harness.ServeAddrs) []string {
			return []string{"serve", "--manifests", filepath.Join(root, "config", "samples"), "--issuer", a.URL(),
				"--audit-log", "off", "--device-poll-interval", "1s"}
		})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Stop(10 * time.Second) })
	local := func(s string) string { return strings.ReplaceAll(s, "http://localhost:8080", srv.URL()) }
	const doc = "docs/device-flow.md"

	start := docFenced(t, doc, "### 1. The tool asks for a code", "sh")[0]
	require.Contains(t, start, "http://localhost:8080")
	out, err := runScript(t, local(start), "")
	require.NoError(t, err, out)
	var da struct {
		DeviceCode              string `json:"device_code"`
		UserCode                string `json:"user_code"`
		VerificationURIComplete string `json:"verification_uri_complete"`
		Interval                int    `json:"interval"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &da), out)
	require.NotEmpty(t, da.DeviceCode)
	require.Equal(t, srv.URL()+"/oauth2/device?user_code="+da.UserCode, da.VerificationURIComplete)
	require.Equal(t, 1, da.Interval)

	pollScript := docFenced(t, doc, "### 3. The tool polls", "sh")[0]
	require.Contains(t, pollScript, "device_code=DEVICE_CODE")
	poll := local(strings.Replace(pollScript, "device_code=DEVICE_CODE", "device_code="+da.DeviceCode, 1))
	out, err = runScript(t, poll, "")
	require.NoError(t, err, out)
	assert.Contains(t, out, `"error":"authorization_pending"`)

	b := harness.NewBrowser(t, nil, srv.URL())
	p := b.Get(da.VerificationURIComplete)
	require.Equal(t, 200, p.Status, p.Body)
	form := p.Hidden()
	form.Set("user_code", da.UserCode)
	p = b.Submit(p, "../oauth2/device", form)
	p = b.Login(p, "alice", "alice-password")
	require.True(t, p.IsConsent(), "%d %s", p.Status, p.Body)
	p = b.Decide(p, "allow")
	require.Contains(t, p.Body, "Device connected")

	time.Sleep(time.Duration(da.Interval)*time.Second + 200*time.Millisecond)
	out, err = runScript(t, poll, "")
	require.NoError(t, err, out)
	assert.Contains(t, out, `"access_token":"`)
	assert.Contains(t, out, `"refresh_token":"`)
	assert.Contains(t, out, `"id_token":"`)
}
