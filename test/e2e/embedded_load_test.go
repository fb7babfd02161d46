package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/genclients"
	"github.com/latchkey-dev/latchkey/internal/harness"
)

// TestTheEmbeddedServerStopsWhenSignalledWhileLoading starts the embedded mode on a folder of
// 100,000 generated clients and sends SIGTERM as soon as it has started loading: it stops
// without finishing the load, at once and cleanly.
func TestTheEmbeddedServerStopsWhenSignalledWhileLoading(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "clients")
	require.NoError(t, genclients.Write(dir, genclients.Options{Clients: 100_000}))
	addrs, err := harness.FreeServeAddrs()
	require.NoError(t, err)
	p, err := harness.Start(harness.Command{Path: env.binary, Log: filepath.Join(t.TempDir(), "latchkey.log"),
		Args: append([]string{"serve", "--manifests", dir}, addrs.Args()...)})
	require.NoError(t, err)
	defer p.Kill() //nolint:errcheck // ends it if an assertion failed first
	require.Eventually(t, func() bool { return strings.Contains(p.Log(), "loading manifests") }, 30*time.Second, 20*time.Millisecond,
		"the server starts loading")
	require.NoError(t, p.Signal(syscall.SIGTERM))
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatalf("the server did not stop within 10 s of SIGTERM; log:\n%s", p.Tail(20))
	}
	assert.Equal(t, 0, p.ExitCode(), "a signalled server exits cleanly")
	assert.Contains(t, p.Log(), "stopped while loading manifests", "it stopped mid-load")
	assert.NotContains(t, p.Log(), "manifests loaded")
}
