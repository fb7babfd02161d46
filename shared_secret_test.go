package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestASharedSecretFileMustHoldThirtyTwoBytes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"thirty-two bytes are read as they are", write("exact", strings.Repeat("k", 32)), ""},
		{"thirty-one bytes are refused, naming the flag", write("short", strings.Repeat("k", 31)), "--some-flag: the secret must be at least 32 bytes"},
		{"a missing file is refused, naming the flag", filepath.Join(dir, "nope"), "--some-flag: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readSharedSecret("some-flag", tt.path)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, strings.Repeat("k", 32), string(got))
		})
	}
}
