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

func TestDPoPFlags(t *testing.T) {
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
		check      func(t *testing.T, c handler.DPoPConfig)
	}{
		{name: "the defaults issue no nonces and accept proofs a minute off", check: func(t *testing.T, c handler.DPoPConfig) {
			assert.Equal(t, time.Minute, c.ProofWindow)
			assert.Empty(t, c.NonceKey)
			assert.False(t, c.RequireNonce)
		}},
		{name: "a nonce secret file gives a derived 32-byte key, not the secret", args: []string{"--dpop-nonce-secret-file", good, "--dpop-require-nonce"},
			check: func(t *testing.T, c handler.DPoPConfig) {
				assert.Len(t, c.NonceKey, 32)
				assert.NotEqual(t, strings.Repeat("s", 32), string(c.NonceKey))
				assert.True(t, c.RequireNonce)
			}},
		{name: "requiring nonces without a secret is refused", args: []string{"--dpop-require-nonce"}, invalid: true},
		{name: "a zero proof window is refused", args: []string{"--dpop-proof-window", "0s"}, invalid: true},
		{name: "a secret shorter than 32 bytes is refused", args: []string{"--dpop-nonce-secret-file", short}, applyFails: true},
		{name: "a missing secret file is refused", args: []string{"--dpop-nonce-secret-file", filepath.Join(dir, "nope")}, applyFails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o dpopOptions
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
			tt.check(t, cfg.DPoP)
		})
	}
}
