package observability

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jsonLines are the JSON objects of a JSON-lines file.
func jsonLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		out = append(out, m)
	}
	return out
}

// lineWith waits for the line of a JSON-lines file whose key has the value.
func lineWith(t *testing.T, path, key, value string) map[string]any {
	t.Helper()
	var found map[string]any
	eventually(t, path+" line with "+key+"="+value, func() bool {
		for _, l := range jsonLines(t, path) {
			if l[key] == value {
				found = l
				return true
			}
		}
		return false
	})
	return found
}

func TestRequestIDsInResponsesAndLogs(t *testing.T) {
	t.Run("a valid request ID is echoed and carried into the access and audit logs", func(t *testing.T) {
		res := tokenRequest(t, "?code=query-code-Xy7", "X-Request-Id", "req-logs-1")
		require.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "req-logs-1", res.Header.Get("X-Request-Id"))

		access := lineWith(t, accessLog, "request_id", "req-logs-1")
		assert.Equal(t, "access", access["log"])
		assert.Equal(t, "POST", access["method"])
		assert.Equal(t, "/oauth2/token", access["path"], "the path without its query")
		assert.Equal(t, "token", access["endpoint"])
		assert.InDelta(t, 200, access["status"], 0)
		assert.Greater(t, access["bytes"], 100.0)
		assert.Greater(t, access["duration_seconds"], 0.0)
		assert.Equal(t, "127.0.0.1", access["client_addr"])

		audit := lineWith(t, auditLog, "request_id", "req-logs-1")
		assert.Equal(t, "audit", audit["log"])
		assert.Equal(t, "token_issued", audit["event"])
		assert.Equal(t, clientID, audit["client_id"])
	})
	t.Run("an invalid request ID is replaced by a generated one", func(t *testing.T) {
		res := tokenRequest(t, "", "X-Request-Id", strings.Repeat("x", 129))
		require.Equal(t, http.StatusOK, res.StatusCode)
		id := res.Header.Get("X-Request-Id")
		assert.Regexp(t, `^[0-9a-f]{32}$`, id)
		lineWith(t, accessLog, "request_id", id)
	})
	t.Run("a failed request's access line has its status", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/oauth2/token",
			strings.NewReader("grant_type=client_credentials"))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Request-Id", "req-logs-401")
		req.SetBasicAuth(clientID, "wrong-secret-Q1")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		access := lineWith(t, accessLog, "request_id", "req-logs-401")
		assert.InDelta(t, 401, access["status"], 0)
		audit := lineWith(t, auditLog, "request_id", "req-logs-401")
		assert.Equal(t, "client_authentication_failed", audit["event"])
	})
	t.Run("no log holds a secret, a token or a query string", func(t *testing.T) {
		res := tokenRequest(t, "?code=query-code-Xy7", "X-Request-Id", "req-logs-2")
		require.Equal(t, http.StatusOK, res.StatusCode)
		lineWith(t, accessLog, "request_id", "req-logs-2")
		for _, path := range []string{accessLog, auditLog, srv.LogPath()} {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			for _, secret := range []string{clientSecret, "wrong-secret-Q1", "query-code-Xy7", "eyJ"} {
				assert.NotContains(t, string(b), secret, path)
			}
		}
	})
}

// TestBufferedLogsAreWrittenOutAtShutdown starts a server whose logs may wait an hour in memory:
// a request's access and audit lines are not in the files while it serves, and are, whole, once
// SIGTERM has stopped it.
func TestBufferedLogsAreWrittenOutAtShutdown(t *testing.T) {
	dir := t.TempDir()
	access, audit := dir+"/access.log", dir+"/audit.log"
	s, err := startServer(t, dir+"/latchkey.log", "--access-log", access, "--audit-log", audit, "--log-flush-interval", "1h")
	require.NoError(t, err)
	defer s.Stop(10 * time.Second)
	for i := range 3 {
		res := tokenRequestTo(t, s, "", "X-Request-Id", fmt.Sprintf("req-buffered-%d", i))
		require.Equal(t, http.StatusOK, res.StatusCode)
	}
	for _, path := range []string{access, audit} {
		assert.Empty(t, jsonLines(t, path), "%s while the server runs: its lines wait in the buffer", path)
	}
	require.NoError(t, s.Signal(syscall.SIGTERM))
	select {
	case <-s.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop within 10 s of SIGTERM")
	}
	assert.Equal(t, 0, s.ExitCode(), s.Tail(20))
	for _, path := range []string{access, audit} {
		var ids []string
		for _, l := range jsonLines(t, path) {
			if id, _ := l["request_id"].(string); strings.HasPrefix(id, "req-buffered-") {
				ids = append(ids, id)
			}
		}
		assert.Equal(t, []string{"req-buffered-0", "req-buffered-1", "req-buffered-2"}, ids, "%s after SIGTERM: every line, in order", path)
	}
}

// runBinary runs the binary with args until it exits (at most 20 s) and returns its output.
func runBinary(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
	return string(out), err
}

func TestLogFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"an unknown log format is refused", []string{"--log-format", "xml"}, `--log-format "xml": want json or text`},
		{"an unknown log level is refused", []string{"--log-level", "trace"}, `--log-level "trace": want debug, info, warn or error`},
		{"a panic log level is refused", []string{"--log-level", "panic"}, `--log-level "panic"`},
		{"an OTLP endpoint that is not a URL is refused", []string{"--otlp-endpoint", "collector:4317"}, `--otlp-endpoint "collector:4317": want an http:// or https:// URL`},
		{"an unknown OTLP protocol is refused", []string{"--otlp-protocol", "thrift"}, `OTLP protocol "thrift"`},
		{"a negative log flush interval is refused", []string{"--log-flush-interval", "-1s"}, "--log-flush-interval -1s: want 0"},
		{"an access log in a missing folder is refused", []string{"--access-log", "/nonexistent/dir/access.log"}, "--access-log: open /nonexistent/dir/access.log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runBinary(t, append([]string{"serve", "--manifests", t.TempDir(), "--listen-address", "127.0.0.1:0",
				"--metrics-bind-address", "0", "--health-probe-bind-address", "0"}, tc.args...)...)
			require.Error(t, err, out)
			assert.Contains(t, out, tc.want)
		})
	}
}

// TestTextLogsAtWarnLevel starts the binary with --log-format text --log-level warn: its info
// lines (the start message) are gone, and what it logs is not JSON.
func TestTextLogsAtWarnLevel(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		wantStart  *regexp.Regexp
		wantAbsent string
	}{
		{"text at info shows the start line, not as JSON", []string{"--log-format", "text"},
			regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT[0-9:.]+Z?[+-]?[0-9]*\s+INFO\s+latchkey serving`), `"msg":"latchkey serving`},
		{"json at warn hides the start line", []string{"--log-format", "json", "--log-level", "warn"},
			nil, "latchkey serving"},
		{"the older --zap-log-level still works", []string{"--zap-log-level", "error"},
			nil, "latchkey serving"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := t.TempDir() + "/latchkey.log"
			s, err := startServer(t, log, tc.args...)
			require.NoError(t, err)
			s.Stop(10 * time.Second)
			out := s.Log()
			if tc.wantStart != nil {
				assert.Regexp(t, tc.wantStart, out)
			}
			assert.NotContains(t, out, tc.wantAbsent)
		})
	}
}
