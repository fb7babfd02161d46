package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
)

func TestUpstreamFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	require.NoError(t, os.WriteFile(good, []byte(strings.Repeat("s", 32)), 0o600))
	short := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(short, []byte("short"), 0o600))
	tests := []struct {
		name       string
		args       []string
		invalid    bool
		applyFails bool
		check      func(t *testing.T, c handler.UpstreamConfig)
	}{
		{name: "the defaults re-check every 5m with the handler's per-process key", check: func(t *testing.T, c handler.UpstreamConfig) {
			assert.Equal(t, 5*time.Minute, c.RecheckInterval)
			assert.Nil(t, c.TokenSealer)
		}},
		{name: "a token key file gives a sealer every replica shares", args: []string{"--upstream-token-key-file", good, "--upstream-recheck-interval", "30s"},
			check: func(t *testing.T, c handler.UpstreamConfig) {
				assert.Equal(t, 30*time.Second, c.RecheckInterval)
				require.NotNil(t, c.TokenSealer)
			}},
		{name: "an interval under a second is refused", args: []string{"--upstream-recheck-interval", "10ms"}, invalid: true},
		{name: "a secret shorter than 32 bytes is refused", args: []string{"--upstream-token-key-file", short}, applyFails: true},
		{name: "a missing key file is refused", args: []string{"--upstream-token-key-file", filepath.Join(dir, "nope")}, applyFails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o upstreamOptions
			bindAndParse(t, o.bind, tt.args...)
			if tt.invalid {
				require.Error(t, o.validate())
				return
			}
			require.NoError(t, o.validate())
			var cfg handler.Config
			err := o.apply(&cfg)
			if tt.applyFails {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg.Upstream)
		})
	}
}
