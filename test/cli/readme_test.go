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
	return readmeBlocks(t, heading)[0]
}

// readmeBlocks returns the ```sh blocks of the README's section under the line heading, up to the
// next heading of the same or a higher level; at least one.
func readmeBlocks(t *testing.T, heading string) []string {
	t.Helper()
	return readmeFenced(t, heading, "sh")
}

// readmeFenced returns the blocks fenced as ```lang of the README's section under the line
// heading; at least one.
func readmeFenced(t *testing.T, heading, lang string) []string {
	t.Helper()
	return docFenced(t, "README.md", heading, lang)
}

// docFenced is readmeFenced of another Markdown file of the repository (docs/...).
func docFenced(t *testing.T, file, heading, lang string) []string {
	t.Helper()
	root, err := harness.Root()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, file))
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(b), "\n"+heading+"\n")
	require.True(t, ok, "%s has %q", file, heading)
	level, _, _ := strings.Cut(heading, " ")
	for _, h := range []string{"##", "###"} { // not "#": shell comments begin so
		if len(h) <= len(level) {
			section, _, _ = strings.Cut(section, "\n"+h+" ")
		}
	}
	var blocks []string
	for {
		var after string
		if _, after, ok = strings.Cut(section, "```"+lang+"\n"); !ok {
			break
		}
		var block string
		block, section, ok = strings.Cut(after, "```\n")
		require.True(t, ok, "the %s block under %q ends", lang, heading)
		blocks = append(blocks, block)
	}
	require.NotEmpty(t, blocks, "%s blocks under %q", lang, heading)
	return blocks
}

// readmeInline returns the README's first inline code span that begins with prefix.
func readmeInline(t *testing.T, prefix string) string {
	t.Helper()
	root, err := harness.Root()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(b), "`"+prefix)
	require.True(t, ok, "README has `%s...`", prefix)
	span, _, ok := strings.Cut(after, "`")
	require.True(t, ok)
	return prefix + span
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
