package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/password"
)

func TestHashPasswordPrintsHashesTheServerAccepts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		stdin      string
		wantPrefix string
		password   string
	}{
		{name: "bcrypt is the default, read from stdin without the final line break",
			stdin: "correct horse\n", wantPrefix: "$2a$10$", password: "correct horse"},
		{name: "a password without a final line break is taken whole",
			stdin: "correct horse", wantPrefix: "$2a$10$", password: "correct horse"},
		{name: "a Windows line break is dropped too",
			stdin: "correct horse\r\n", wantPrefix: "$2a$10$", password: "correct horse"},
		{name: "--cost sets bcrypt's cost",
			args: []string{"--cost", "11"}, stdin: "pw\n", wantPrefix: "$2a$11$", password: "pw"},
		{name: "--argon2id hashes in the PHC format the server verifies",
			args: []string{"--argon2id"}, stdin: "pw\n", wantPrefix: "$argon2id$v=19$m=19456,t=2,p=1$", password: "pw"},
		{name: "argon2id takes passwords longer than bcrypt's 72 bytes",
			args: []string{"--argon2id"}, stdin: strings.Repeat("p", 100), wantPrefix: "$argon2id$", password: strings.Repeat("p", 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := latchkey(t, tc.stdin, nil, append([]string{"hash-password"}, tc.args...)...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Empty(t, r.stderr)
			hash := strings.TrimSuffix(r.stdout, "\n")
			assert.NotContains(t, hash, "\n", "one line")
			assert.True(t, strings.HasPrefix(hash, tc.wantPrefix), hash)
			require.NoError(t, password.Check([]byte(hash)))
			ok, err := password.Verify([]byte(hash), tc.password)
			require.NoError(t, err)
			assert.True(t, ok, "the password verifies against its hash")
			ok, _ = password.Verify([]byte(hash), tc.password+"x")
			assert.False(t, ok)
		})
	}
}

func TestHashPasswordRefusesWhatTheServerWouldNot(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		want     string
	}{
		{name: "an empty password is refused", stdin: "\n", wantCode: 1, want: "empty password"},
		{name: "two lines are refused: a login form cannot send a line break", stdin: "a\nb\n", wantCode: 1, want: "line break"},
		{name: "bcrypt refuses more than 72 bytes and suggests argon2id", stdin: strings.Repeat("p", 73), wantCode: 1, want: "use --argon2id"},
		{name: "a cost above the server's limit is refused", args: []string{"--cost", "15"}, stdin: "pw", wantCode: 2, want: "--cost 15"},
		{name: "--cost with --argon2id is refused", args: []string{"--argon2id", "--cost", "12"}, stdin: "pw", wantCode: 2, want: "--cost is for bcrypt"},
		{name: "--namespace without --secret is refused", args: []string{"--namespace", "x"}, stdin: "pw", wantCode: 2, want: "--namespace is for --secret"},
		{name: "a Secret name that Kubernetes refuses is refused", args: []string{"--secret", "Alice_PW"}, stdin: "pw", wantCode: 2, want: `--secret "Alice_PW" is not a Secret name`},
		{name: "an unknown output is refused", args: []string{"--secret", "a", "--output", "json"}, stdin: "pw", wantCode: 2, want: `--output "json"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := latchkey(t, tc.stdin, nil, append([]string{"hash-password"}, tc.args...)...)
			assert.Equal(t, tc.wantCode, r.code)
			assert.Contains(t, r.stderr, tc.want)
			assert.Empty(t, r.stdout)
		})
	}
}

func TestHashPasswordPrintsASecretForTheUser(t *testing.T) {
	t.Run("the YAML is a Secret under the key a User's passwordSecretRef reads by default", func(t *testing.T) {
		r := latchkey(t, "pw\n", nil, "hash-password", "--secret", "alice-password", "--namespace", "people")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "passwordSecretRef: {namespace: people, name: alice-password, key: hash}")
		var s corev1.Secret
		require.NoError(t, yaml.UnmarshalStrict([]byte(r.stdout), &s))
		assert.Equal(t, "Secret", s.Kind)
		assert.Equal(t, "v1", s.APIVersion)
		assert.Equal(t, "alice-password", s.Name)
		assert.Equal(t, "people", s.Namespace)
		ok, err := password.Verify([]byte(s.StringData["hash"]), "pw")
		require.NoError(t, err)
		assert.True(t, ok)
	})
	t.Run("--output kubectl prints a kubectl create secret generic command with the hash quoted for a shell", func(t *testing.T) {
		r := latchkey(t, "pw\n", nil, "hash-password", "--secret", "alice-password", "--key", "pw-hash", "--output", "kubectl")
		require.Equal(t, 0, r.code, r.stderr)
		line := strings.TrimSuffix(r.stdout, "\n")
		prefix := "kubectl create secret generic alice-password --namespace default --from-literal=pw-hash='"
		require.True(t, strings.HasPrefix(line, prefix), line)
		require.True(t, strings.HasSuffix(line, "'"), line)
		hash := strings.TrimSuffix(strings.TrimPrefix(line, prefix), "'")
		ok, err := password.Verify([]byte(hash), "pw")
		require.NoError(t, err)
		assert.True(t, ok)
	})
}

// A user follows the help: hashes a password into a Secret in the manifests folder beside a User
// and logs in with the password grant.
func TestAPasswordHashedByTheCommandLogsIn(t *testing.T) {
	for _, alg := range []string{"bcrypt", "argon2id"} {
		t.Run("a "+alg+" hash lets the user log in and a wrong password does not", func(t *testing.T) {
			args := []string{"hash-password", "--secret", "carol-password"}
			if alg == "argon2id" {
				args = append(args, "--argon2id")
			}
			r := latchkey(t, "carol's password\n", nil, args...)
			require.Equal(t, 0, r.code, r.stderr)
			dir := t.TempDir()
			write(t, filepath.Join(dir, "secret.yaml"), r.stdout)
			write(t, filepath.Join(dir, "resources.yaml"), `apiVersion: oauth.latchkey.dev/v1alpha1
kind: User
metadata: {name: carol}
spec:
  username: carol
  passwordSecretRef: {namespace: default, name: carol-password}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: app}
spec:
  clientID: app
  grantTypes: [password]
  secretPolicy: External
  secretRef: {name: app, key: client-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: app}
stringData: {client-secret: app-secret}
`)
			srv, err := harness.StartServer(t.Context(), binary, filepath.Join(t.TempDir(), "latchkey.log"), 30*time.Second,
				func(harness.ServeAddrs) []string { return []string{"serve", "--manifests", dir, "--audit-log", "off"} })
			require.NoError(t, err)
			t.Cleanup(func() { srv.Stop(10 * time.Second) })
			assert.Equal(t, http.StatusOK, passwordGrant(t, srv.URL(), "carol's password"))
			assert.Equal(t, http.StatusBadRequest, passwordGrant(t, srv.URL(), "carol's passwort"))
		})
	}
}

func passwordGrant(t *testing.T, base, pw string) int {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {pw}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	if resp.StatusCode == http.StatusOK {
		assert.NotEmpty(t, body["access_token"], fmt.Sprint(body))
	} else {
		assert.Equal(t, "invalid_grant", body["error"], fmt.Sprint(body))
	}
	return resp.StatusCode
}

// On a terminal (script(1) gives the command one) the password is asked twice, without echo.
func TestHashPasswordPromptsTwiceOnATerminal(t *testing.T) {
	scriptCmd, err := harness.Tool("script", "bsdutils")
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		typed    string
		wantCode int
		want     string
	}{
		{name: "the same password typed twice is hashed", typed: "typed pw\ntyped pw\n"},
		{name: "two different passwords are refused", typed: "typed pw\ntyped px\n", wantCode: 1, want: "the passwords differ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, scriptCmd, "-qec", binary+" hash-password", "/dev/null")
			cmd.Stdin = strings.NewReader(tc.typed)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err != nil {
				require.ErrorAs(t, err, &exit)
			}
			assert.Equal(t, tc.wantCode, cmd.ProcessState.ExitCode(), string(out))
			assert.Contains(t, string(out), "Password: ")
			assert.Contains(t, string(out), "Password again: ")
			if tc.wantCode != 0 {
				assert.Contains(t, string(out), tc.want)
				return
			}
			lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(out), "\r", "")), "\n")
			hash := lines[len(lines)-1]
			ok, err := password.Verify([]byte(hash), "typed pw")
			require.NoError(t, err, string(out))
			assert.True(t, ok)
		})
	}
}
