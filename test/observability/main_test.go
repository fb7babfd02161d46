package observability

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

const (
	clientID     = "obs-app"
	clientSecret = "obs-app-secret-Zq9"
)

const fixtures = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: obs-app, namespace: payments}
spec:
  clientID: ` + clientID + `
  grantTypes: [client_credentials]
  scopes: [read]
  secretPolicy: External
  secretRef: {name: obs-app, key: client-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: obs-app, namespace: payments}
stringData: {client-secret: ` + clientSecret + `}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: Scope
metadata: {name: read}
spec: {name: read, description: Read}
`

// The server every test talks to, with its access and audit logs in files and traces exported
// to the receiver.
var (
	srv       *harness.Server //nolint:gochecknoglobals // set once by TestMain
	binary    string          //nolint:gochecknoglobals // set once by TestMain
	accessLog string          //nolint:gochecknoglobals // set once by TestMain
	auditLog  string          //nolint:gochecknoglobals // set once by TestMain
	receiver  *otlpReceiver   //nolint:gochecknoglobals // set once by TestMain
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "observability:", err); return 1 }
	tmp, err := os.MkdirTemp("", "latchkey-observability-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // temp
	dir := filepath.Join(tmp, "manifests")
	if err := os.Mkdir(dir, 0o750); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fixtures.yaml"), []byte(fixtures), 0o600); err != nil {
		return fail(err)
	}
	if binary, err = harness.BuildBinary(tmp); err != nil {
		return fail(err)
	}
	receiver = startOTLPReceiver()
	defer receiver.close()
	// Export spans within 100 ms instead of the SDK's 5 s, so that the test waits less.
	if err := os.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100"); err != nil {
		return fail(err)
	}
	accessLog, auditLog = filepath.Join(tmp, "access.log"), filepath.Join(tmp, "audit.log")
	srv, err = harness.StartServer(context.Background(), binary, filepath.Join(tmp, "latchkey.log"), 30*time.Second,
		func(harness.ServeAddrs) []string {
			return []string{"serve", "--manifests", dir, "--access-log", accessLog, "--audit-log", auditLog,
				"--log-level", "debug", "--otlp-endpoint", receiver.url()}
		})
	if err != nil {
		return fail(err)
	}
	defer srv.Stop(10 * time.Second)
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "latchkey log:\n%s\n", srv.Log())
	}
	return code
}

// tokenRequest asks the shared server for a client_credentials token with extra headers (key,
// value pairs).
func tokenRequest(t *testing.T, query string, headers ...string) *http.Response {
	t.Helper()
	return tokenRequestTo(t, srv, query, headers...)
}

// tokenRequestTo is tokenRequest to server s.
func tokenRequestTo(t *testing.T, s *harness.Server, query string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/oauth2/token"+query,
		strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res
}

// eventually polls check every 20 ms until it returns true or 10 s pass.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startServer starts another server of the fixtures with extra flags.
func startServer(t *testing.T, logPath string, args ...string) (*harness.Server, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fixtures.yaml"), []byte(fixtures), 0o600); err != nil {
		return nil, err
	}
	return harness.StartServer(t.Context(), binary, logPath, 30*time.Second, func(harness.ServeAddrs) []string {
		return append([]string{"serve", "--manifests", dir}, args...)
	})
}
