package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// valuePaths records the dotted path of every value in values.yaml (true for a leaf): maps are
// walked, anything else (lists, strings, empty maps) is a leaf.
func valuePaths(prefix string, m map[string]any, into map[string]bool) {
	for k, v := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		sub, isMap := v.(map[string]any)
		into[p] = !isMap || len(sub) == 0
		if isMap {
			valuePaths(p, sub, into)
		}
	}
}

// TestChartReadmeListsEveryValue: the values table of charts/latchkey/README.md names only
// values that exist, and every value (or a map holding it) has a row.
func TestChartReadmeListsEveryValue(t *testing.T) {
	s := env
	b, err := os.ReadFile(filepath.Join(s.root, "charts", "latchkey", "values.yaml"))
	require.NoError(t, err)
	var values map[string]any
	require.NoError(t, yaml.Unmarshal(b, &values))
	paths := map[string]bool{}
	valuePaths("", values, paths)

	readme, err := os.ReadFile(filepath.Join(s.root, "charts", "latchkey", "README.md"))
	require.NoError(t, err)
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		rows[m[1]] = true
		_, ok := paths[m[1]]
		assert.True(t, ok, "the README's values table names %s, which values.yaml does not have", m[1])
	}
	require.NotEmpty(t, rows)
	var missing []string
	for p, leaf := range paths {
		if !leaf {
			continue
		}
		covered := false
		for q := p; q != ""; {
			if rows[q] {
				covered = true
				break
			}
			i := strings.LastIndex(q, ".")
			if i < 0 {
				break
			}
			q = q[:i]
		}
		if !covered {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "values without a row in the chart README's values table")
}

// readmeHelmCommands returns the helm install and upgrade commands of a Markdown file (code
// blocks, backslash continuations joined, and inline spans) and the inline `--set ...` spans.
func readmeHelmCommands(t *testing.T, path string) (commands, sets []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "helm install ") || strings.HasPrefix(l, "helm upgrade ") {
			l, _, _ = strings.Cut(l, "#")
			commands = append(commands, strings.Join(strings.Fields(l), " "))
		}
	}
	for _, m := range regexp.MustCompile("`(helm (?:install|upgrade) [^`]+)`").FindAllStringSubmatch(text, -1) {
		commands = append(commands, m[1])
	}
	for _, m := range regexp.MustCompile("`(--set [^`]+)`").FindAllStringSubmatch(text, -1) {
		sets = append(sets, m[1])
	}
	return commands, sets
}

// TestReadmeHelmCommandsRender renders each helm install and upgrade command of the READMEs
// (as helm template, which applies the same schema and checks) and each inline --set span.
func TestReadmeHelmCommandsRender(t *testing.T) {
	s := env
	chart := filepath.Join(s.root, "charts", "latchkey")
	var all []string
	for _, f := range []string{"README.md", filepath.Join("charts", "latchkey", "README.md")} {
		commands, sets := readmeHelmCommands(t, filepath.Join(s.root, f))
		require.NotEmpty(t, commands, "%s has helm commands", f)
		for _, c := range commands {
			all = append(all, c)
			t.Run(f+": "+c, func(t *testing.T) {
				args := strings.Fields(c)[2:] // after helm install|upgrade
				require.GreaterOrEqual(t, len(args), 2, "release and chart")
				require.Equal(t, "charts/latchkey", args[1])
				tmpl := []string{"template", args[0], chart}
				for _, a := range args[2:] {
					switch a {
					case "--create-namespace", "--reset-then-reuse-values":
						continue // install and upgrade only
					}
					tmpl = append(tmpl, a)
				}
				out, err := exec.Command(s.helm, tmpl...).CombinedOutput()
				assert.NoError(t, err, "%s", out)
			})
		}
		for _, set := range sets {
			t.Run(f+": "+set, func(t *testing.T) {
				out, err := exec.Command(s.helm, append([]string{"template", "latchkey", chart}, strings.Fields(set)...)...).CombinedOutput()
				assert.NoError(t, err, "%s", out)
			})
		}
	}
	require.NotEmpty(t, all)
}

// TestChartReadmeTranscriptsHold runs each `$ helm ...` line of the chart README's indented
// blocks from the repository's root and checks that it prints the lines the README shows after
// it.
func TestChartReadmeTranscriptsHold(t *testing.T) {
	s := env
	b, err := os.ReadFile(filepath.Join(s.root, "charts", "latchkey", "README.md"))
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	n := 0
	for i, l := range lines {
		cmd, ok := strings.CutPrefix(l, "    $ ")
		if !ok {
			continue
		}
		var want []string
		for _, w := range lines[i+1:] {
			if !strings.HasPrefix(w, "    ") || strings.HasPrefix(w, "    $ ") {
				break
			}
			want = append(want, strings.TrimPrefix(w, "    "))
		}
		args := strings.Fields(cmd)
		require.Equal(t, "helm", args[0], cmd)
		n++
		t.Run(cmd, func(t *testing.T) {
			c := exec.Command(s.helm, args[1:]...)
			c.Dir = s.root
			out, _ := c.CombinedOutput() // the transcript says whether it fails
			for _, w := range want {
				assert.Contains(t, string(out), w)
			}
		})
	}
	require.NotZero(t, n, "the chart README has transcripts")
}
