package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// readmeBlock returns the first ```sh block of the README after the line heading.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	root, err := harness.Root()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(b), "\n"+heading+"\n")
	require.True(t, ok, "README has %q", heading)
	_, after, ok = strings.Cut(after, "```sh\n")
	require.True(t, ok, "a sh block after %q", heading)
	block, _, ok := strings.Cut(after, "```\n")
	require.True(t, ok)
	return block
}

func TestTheREADMEsCommandLineExamplesWork(t *testing.T) {
	for _, line := range strings.Split(strings.TrimSpace(readmeBlock(t, "## The command line")), "\n") {
		cmd, _, _ := strings.Cut(line, "#")
		args := strings.Fields(cmd)
		require.Equal(t, "latchkey", args[0])
		t.Run(strings.TrimSpace(cmd)+" exits 0 and prints on stdout only", func(t *testing.T) {
			r := latchkey(t, "", nil, args[1:]...)
			assert.Equal(t, 0, r.code, r.stderr)
			assert.NotEmpty(t, r.stdout)
			assert.Empty(t, r.stderr)
		})
	}
}

func TestMakeRunListensOnLoopbackUnlessToldOtherwise(t *testing.T) {
	root, err := harness.Root()
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		args    []string
		wantEnd string
	}{
		{name: "make run binds 127.0.0.1:8080 with the issuer http://localhost:8080",
			wantEnd: "serve --manifests config/samples --listen-address 127.0.0.1:8080 --issuer http://localhost:8080"},
		{name: "RUN_ARGS come last, so the README's --listen-address and --issuer take over",
			args:    []string{"RUN_ARGS=--listen-address :8080 --issuer http://my-laptop.example:8080"},
			wantEnd: "--listen-address 127.0.0.1:8080 --issuer http://localhost:8080 --listen-address :8080 --issuer http://my-laptop.example:8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), "make", append([]string{"--no-print-directory", "-n", "run"}, tc.args...)...)
			cmd.Dir = root
			out, err := cmd.Output()
			require.NoError(t, err)
			assert.True(t, strings.HasSuffix(strings.TrimSpace(string(out)), tc.wantEnd), string(out))
		})
	}
}
