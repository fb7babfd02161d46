package manifests

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/genclients"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// BenchmarkLoad loads a generated folder (one OAuthClient and one Secret per client, 1,000
// clients per file), its documents in YAML's block style or in JSON form, into an empty
// registry. hack/loadtime.sh measures the whole server.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		for _, format := range []string{"yaml", "json"} {
			b.Run(strconv.Itoa(n)+" clients "+format, func(b *testing.B) {
				dir := b.TempDir()
				require.NoError(b, genclients.Write(dir, genclients.Options{Clients: n, JSON: format == "json"}))
				for b.Loop() {
					reg := registry.New()
					l, err := New(dir, reg, nil)
					require.NoError(b, err)
					require.NoError(b, l.Load(b.Context()))
					got, _, _ := reg.Snapshot().Counts()
					require.Equal(b, n, got)
				}
			})
		}
	}
}

func TestLoadAtScale(t *testing.T) {
	t.Run("a file of many megabytes loads whole", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, genclients.Write(dir, genclients.Options{Clients: 9_000, PerFile: 9_000}))
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		require.NoError(t, err)
		require.Len(t, files, 1)
		fi, err := os.Stat(files[0])
		require.NoError(t, err)
		require.Greater(t, fi.Size(), int64(4<<20), "the file is larger than the 4 MiB the loader once refused")
		reg := registry.New()
		l, err := New(dir, reg, nil)
		require.NoError(t, err)
		require.NoError(t, l.Load(t.Context()))
		got, _, _ := reg.Snapshot().Counts()
		assert.Equal(t, 9_000, got)
		c, ok := reg.Snapshot().Client("gen-8999")
		require.True(t, ok, "the last client of the file is served")
		assert.True(t, c.CheckSecret("gen-secret-8999"), "with its secret")
	})
	t.Run("a load whose context ends returns its error and publishes nothing", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, genclients.Write(dir, genclients.Options{Clients: 2_000, PerFile: 500}))
		reg := registry.New()
		before := reg.Snapshot()
		l, err := New(dir, reg, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		require.ErrorIs(t, l.Load(ctx), context.Canceled)
		assert.Same(t, before, reg.Snapshot(), "no snapshot was published")
	})
	t.Run("a load publishes one snapshot", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, genclients.Write(dir, genclients.Options{Clients: 3_000, PerFile: 1_000}))
		reg := &countingRegistry{Registry: registry.New()}
		l, err := New(dir, reg, nil)
		require.NoError(t, err)
		require.NoError(t, l.Load(t.Context()))
		assert.Equal(t, 1, reg.updates)
		got, _, _ := reg.Snapshot().Counts()
		assert.Equal(t, 3_000, got)
	})
}

// countingRegistry counts the snapshots published.
type countingRegistry struct {
	*registry.Registry
	updates int
}

func (r *countingRegistry) Update(fn func(tx *registry.Txn)) { r.updates++; r.Registry.Update(fn) }
