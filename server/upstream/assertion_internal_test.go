package upstream

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadAssertion(t *testing.T) {
	dir := t.TempDir()
	const secretish = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	tests := []struct {
		name    string
		content *string
		want    string
		wantErr string
	}{
		{name: "a token with the kubelet's trailing newline is read without it", content: ptr(secretish + "\n"), want: secretish},
		{name: "a missing file is an error naming the path", wantErr: "no such file"},
		{name: "an empty file is an error", content: ptr(" \n"), wantErr: "is empty"},
		{name: "a file larger than 64 KiB is refused, not sent", content: ptr(strings.Repeat("a", maxAssertionBytes+1)), wantErr: "larger than"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, string(rune('a'+i)))
			if tt.content != nil {
				require.NoError(t, os.WriteFile(path, []byte(*tt.content), 0o600))
			}
			got, err := readAssertion(path)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrClientCredentials), "%v", err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Contains(t, err.Error(), path)
				assert.NotContains(t, err.Error(), "aaaa", "never the content")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func ptr(s string) *string { return &s }
