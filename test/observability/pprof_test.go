package observability

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// TestRuntimeProfilesAreServedOnTheirOwnAddress: --pprof-bind-address serves Go's profiles,
// CPU profile included, on that address only (not on the OAuth listener).
func TestRuntimeProfilesAreServedOnTheirOwnAddress(t *testing.T) {
	addr, err := harness.FreeAddr()
	require.NoError(t, err)
	s, err := startServer(t, t.TempDir()+"/latchkey.log", "--pprof-bind-address", addr)
	require.NoError(t, err)
	defer s.Stop(10 * time.Second)

	get := func(url string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url) //nolint:noctx // a test
		require.NoError(t, err)
		defer resp.Body.Close() //nolint:errcheck // test
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, body
	}
	code, body := get("http://" + addr + "/debug/pprof/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), "goroutine")
	code, body = get("http://" + addr + "/debug/pprof/profile?seconds=1")
	assert.Equal(t, http.StatusOK, code, "%s", body)
	assert.NotEmpty(t, body, "a CPU profile")

	code, _ = get("http://" + s.Listen + "/debug/pprof/")
	assert.Equal(t, http.StatusNotFound, code, "the OAuth listener serves no profiles")
}
