package manifests

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestAFileThatDoesNotParseFailsTheFirstLoadNamingFileAndLine(t *testing.T) {
	scope := "apiVersion: oauth.latchkey.dev/v1alpha1\nkind: Scope\nmetadata: {name: a}\nspec: {name: a}\n"
	for _, tc := range []struct {
		name    string
		content string
		want    string
	}{
		{name: "a YAML syntax error names the line of the file, past earlier documents",
			content: scope + "---\n# b\napiVersion: oauth.latchkey.dev/v1alpha1\nkind: Scope\nmetadata:\n  name: b\n   spec: [\n",
			want:    "broken.yaml:11: yaml: mapping values are not allowed in this context"},
		{name: "a misspelt field names the line where its document starts",
			content: scope + "---\napiVersion: oauth.latchkey.dev/v1alpha1\nkind: Scope\nmetadata: {name: b}\nspec: {name: b, descripton: typo}\n",
			want:    `broken.yaml:6: strict decoding error: unknown field "spec.descripton"`},
		{name: "leading separators and blank documents are counted as the YAML reader counts them",
			content: "---\n---\n\n---\napiVersion: oauth.latchkey.dev/v1alpha1\nkind: Scope\nmetadata: {name: a}\nspec: {name: a, nam: x}\n",
			want:    `broken.yaml:5: strict decoding error: unknown field "spec.nam"`},
		{name: "a leading separator is part of the first document",
			content: "---\napiVersion: oauth.latchkey.dev/v1alpha1\nkind: Scope\nmetadata:\n  name: b\n   spec: [\n",
			want:    "broken.yaml:6: yaml: mapping values are not allowed in this context"},
		{name: "a value of the wrong type is refused",
			content: "apiVersion: oauth.latchkey.dev/v1alpha1\nkind: Scope\nmetadata: {name: a}\nspec: {name: [a]}\n",
			want:    "broken.yaml:1: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "good.yaml", clientYAML)
			write(t, dir, "broken.yaml", tc.content)
			l, err := New(dir, registry.New(), &warnings{})
			require.NoError(t, err)
			err = l.Load(t.Context())
			require.Error(t, err)
			assert.Contains(t, err.Error(), filepath.Join(dir, tc.want))
		})
	}
}

func TestAReloadWarnsAboutAFileThatDoesNotParse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		file      string
		wantWarn  string
		wantScope bool
	}{
		{name: "a file that parsed before keeps its last good contents", file: "client.yaml",
			wantWarn: "manifest file does not parse; its last good contents stay served", wantScope: true},
		{name: "a new file that never parsed serves nothing", file: "new.yaml",
			wantWarn: "manifest file does not parse; nothing of it is served", wantScope: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "client.yaml", clientYAML)
			l, reg, w := loadWarned(t, dir)
			write(t, dir, tc.file, "kind: Scope\nmetadata: [\n")
			require.NoError(t, l.Load(t.Context()), "a reload does not fail on a file")
			assert.NotEmpty(t, w.with(tc.wantWarn, "file="+filepath.Join(dir, tc.file), "error="+filepath.Join(dir, tc.file)+":2: yaml: "), w.String())
			_, ok := reg.Snapshot().Scope("read:projects")
			assert.Equal(t, tc.wantScope, ok)
		})
	}
}
