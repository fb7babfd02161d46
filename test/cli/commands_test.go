package cli

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
)

// noStackTrace fails when out holds a Go stack trace or a zap stacktrace field.
func noStackTrace(t *testing.T, out string) {
	t.Helper()
	for _, s := range []string{"stacktrace", "goroutine ", ".go:", "panic"} {
		assert.NotContains(t, out, s, "a user's mistake is reported without a stack trace")
	}
}

func TestTheCommandLineAnswersAsAUserExpects(t *testing.T) {
	manifests := t.TempDir()
	write(t, filepath.Join(manifests, "broken.yaml"), "apiVersion: oauth.latchkey.dev/v1alpha1\nkind: Scope\nmetadata:\n  name: a\n   spec: [\n")
	deadCluster := filepath.Join(t.TempDir(), "kubeconfig")
	write(t, deadCluster, `apiVersion: v1
kind: Config
clusters: [{name: gone, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: gone, context: {cluster: gone, user: u}}]
users: [{name: u, user: {token: t}}]
current-context: gone
`)
	folder := t.TempDir()
	for _, tc := range []struct {
		name       string
		args       []string
		env        []string
		wantCode   int
		wantStdout []string
		wantStderr []string
		notStderr  []string
	}{
		{name: "latchkey without a command prints the usage and exits 2",
			wantCode: 2, wantStderr: []string{"Usage:", "latchkey serve", "latchkey hash-password", "missing command"}},
		{name: "latchkey --help prints the usage on stdout and exits 0",
			args: []string{"--help"}, wantStdout: []string{"Usage:", "latchkey serve", "latchkey hash-password", "latchkey version"}},
		{name: "latchkey -h is --help",
			args: []string{"-h"}, wantStdout: []string{"Usage:"}},
		{name: "serve --help lists the flags and the two modes on stdout and exits 0",
			args: []string{"serve", "--help"}, wantStdout: []string{"--manifests DIR", "--kubeconfig FILE", "\n  --listen-address string\n", "\n  --access-token-lifetime duration\n", "127.0.0.1:9090"},
			notStderr: []string{"help requested"}},
		{name: "serve -h is serve --help",
			args: []string{"serve", "-h"}, wantStdout: []string{"Usage: latchkey serve"}},
		{name: "hash-password --help shows how to make a User's Secret and exits 0",
			args: []string{"hash-password", "--help"}, wantStdout: []string{"Usage: latchkey hash-password", "\n  --argon2id\n", "\n  --secret string\n", "kubectl apply -f -"}},
		{name: "version --help exits 0",
			args: []string{"version", "--help"}, wantStdout: []string{"Usage: latchkey version"}},
		{name: "latchkey version prints the version and the Go version it was built with",
			args: []string{"version"}, wantStdout: []string{"latchkey ", "go: " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}},
		{name: "latchkey --version is latchkey version",
			args: []string{"--version"}, wantStdout: []string{"latchkey ", "go: " + runtime.Version()}},
		{name: "an unknown command is named and exits 2",
			args: []string{"hash-pasword"}, wantCode: 2, wantStderr: []string{`unknown command "hash-pasword"`, "latchkey --help"}},
		{name: "an unknown flag exits 2 and points at the command's help",
			args: []string{"serve", "--manifest", "x"}, wantCode: 2, wantStderr: []string{"-manifest", "latchkey serve --help"}},
		{name: "a stray argument is refused with exit 2",
			args: []string{"serve", "--manifests", folder, "extra"}, wantCode: 2, wantStderr: []string{`unexpected argument "extra"`, "takes flags only"}},
		{name: "a folder given as an argument is pointed at --manifests",
			args: []string{"serve", folder}, wantCode: 2, wantStderr: []string{"--manifests " + folder}},
		{name: "a stray argument to version is refused with exit 2",
			args: []string{"version", "now"}, wantCode: 2, wantStderr: []string{`unexpected argument "now"`}},
		{name: "a duration without a unit names the flag, the value and examples",
			args: []string{"serve", "--manifests", folder, "--access-token-lifetime", "3600"}, wantCode: 2,
			wantStderr: []string{`--access-token-lifetime "3600" is not a duration`, "90s, 15m or 1h"}, notStderr: []string{"parse error"}},
		{name: "every duration flag explains its format, also the registration ones",
			args: []string{"serve", "--registration-rate-limit-window=1 hour"}, wantCode: 2,
			wantStderr: []string{`--registration-rate-limit-window "1 hour" is not a duration`}},
		{name: "a flag value the server refuses exits 2",
			args: []string{"serve", "--manifests", folder, "--store", "mongo"}, wantCode: 2, wantStderr: []string{`--store "mongo"`}},
		{name: "without a cluster and without --manifests the error explains the two modes",
			args: []string{"serve", "--listen-address", "127.0.0.1:0"}, wantCode: 1,
			wantStderr: []string{"no Kubernetes cluster to run against", "latchkey serve --manifests DIR", "latchkey serve --kubeconfig FILE"},
			notStderr:  []string{"KUBERNETES_MASTER", "in-cluster config\""}},
		{name: "a $KUBECONFIG that does not exist is named, with the two modes",
			args: []string{"serve", "--listen-address", "127.0.0.1:0"}, env: []string{"KUBECONFIG=" + filepath.Join(folder, "nope")}, wantCode: 1,
			wantStderr: []string{filepath.Join(folder, "nope") + " does not exist or names no cluster", "latchkey serve --manifests DIR"},
			notStderr:  []string{"KUBERNETES_MASTER"}},
		{name: "in a Pod the in-cluster config is named when it is missing or its API server does not answer, with the two modes",
			args: []string{"serve", "--listen-address", "127.0.0.1:0"}, env: []string{"KUBERNETES_SERVICE_HOST=127.0.0.1", "KUBERNETES_SERVICE_PORT=1"}, wantCode: 1,
			wantStderr: []string{"the in-cluster config", "latchkey serve --manifests DIR"},
			notStderr:  []string{`"level":"error"`}},
		{name: "an API server that does not answer is named, with the two modes",
			args: []string{"serve", "--kubeconfig", deadCluster, "--listen-address", "127.0.0.1:0"}, wantCode: 1,
			wantStderr: []string{"the Kubernetes API server https://127.0.0.1:1 (from " + deadCluster + ") does not answer", "latchkey serve --manifests DIR"}},
		{name: "a manifest that does not parse stops the start, naming the file and the line",
			args: []string{"serve", "--manifests", manifests, "--listen-address", "127.0.0.1:0", "--metrics-bind-address", "0", "--health-probe-bind-address", "0"}, wantCode: 1,
			wantStderr: []string{filepath.Join(manifests, "broken.yaml") + ":5: yaml: mapping values are not allowed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := latchkey(t, "", tc.env, tc.args...)
			assert.Equal(t, tc.wantCode, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			for _, s := range tc.wantStdout {
				assert.Contains(t, r.stdout, s)
			}
			for _, s := range tc.wantStderr {
				assert.Contains(t, r.stderr, s)
			}
			for _, s := range tc.notStderr {
				assert.NotContains(t, r.stderr, s)
			}
			if tc.wantCode == 0 {
				assert.Empty(t, r.stderr, "success and help print nothing on stderr")
			} else {
				assert.Empty(t, r.stdout, "errors go to stderr")
			}
			noStackTrace(t, r.stderr)
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
