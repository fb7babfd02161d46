package chart

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// explainWidth is the width kubectl explain wraps a description at (it keeps the line breaks
// of the text, so a longer line is broken again and reads ragged).
const explainWidth = 76

// upstream are the schema paths whose descriptions come from Kubernetes (TypeMeta,
// metav1.Condition), not from the types of api/v1alpha1.
var upstream = []string{".apiVersion", ".kind", ".status.conditions[]"} //nolint:gochecknoglobals // test table

// schemaCheck walks an openAPIV3Schema and reports what kubectl explain would show badly.
type schemaCheck struct {
	long     []string // description lines wider than explainWidth
	unlisted []string // enum values a field's description does not name
}

func (c *schemaCheck) walk(path string, s map[string]any, isItems bool) {
	for _, u := range upstream {
		if path == u || strings.HasPrefix(path, u+".") {
			return
		}
	}
	desc, _ := s["description"].(string)
	for _, l := range strings.Split(desc, "\n") {
		// A line of one word (a URL) cannot be wrapped.
		if len(l) > explainWidth && strings.Contains(strings.TrimSpace(l), " ") {
			c.long = append(c.long, path+": "+l)
		}
	}
	// kubectl explain prints a field's own enum, but not the enum of a list's items: the
	// description names the values of both.
	enum, _ := s["enum"].([]any)
	if items, ok := s["items"].(map[string]any); ok {
		if e, ok := items["enum"].([]any); ok {
			enum = e
		}
	}
	for _, v := range enum {
		if v, _ := v.(string); !isItems && !strings.Contains(desc, v) {
			c.unlisted = append(c.unlisted, path+": "+v)
		}
	}
	props, _ := s["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if p, ok := props[n].(map[string]any); ok {
			c.walk(path+"."+n, p, false)
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		c.walk(path+"[]", items, true) // its list's description names the values
	}
}

// crdFiles are the CRDs controller-gen generates (and hack/chart-sync.sh copies into the chart).
func crdFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(env.root, "config", "crd", "bases", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

func TestCRDDescriptionsReadWellInKubectlExplain(t *testing.T) {
	files := crdFiles(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			var crd struct {
				Spec struct {
					Versions []struct {
						Schema struct {
							OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
						} `json:"schema"`
					} `json:"versions"`
				} `json:"spec"`
			}
			require.NoError(t, yaml.Unmarshal(b, &crd))
			require.NotEmpty(t, crd.Spec.Versions)
			for _, v := range crd.Spec.Versions {
				var c schemaCheck
				c.walk("", v.Schema.OpenAPIV3Schema, false)
				assert.Empty(t, c.long, "description lines wider than %d characters (wrap the comments in api/v1alpha1 at %d and run make manifests)", explainWidth, explainWidth)
				assert.Empty(t, c.unlisted, "enum values the field's description does not name")
			}
		})
	}
}

func TestEveryKindHasAShortName(t *testing.T) {
	seen := map[string]string{}
	for _, f := range crdFiles(t) {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var crd struct {
			Spec struct {
				Names struct {
					Kind       string   `json:"kind"`
					ShortNames []string `json:"shortNames"`
				} `json:"names"`
			} `json:"spec"`
		}
		require.NoError(t, yaml.Unmarshal(b, &crd))
		k := crd.Spec.Names.Kind
		assert.NotEmpty(t, crd.Spec.Names.ShortNames, "%s has no short name", k)
		for _, s := range crd.Spec.Names.ShortNames {
			assert.Empty(t, seen[s], "%s and %s share the short name %s", seen[s], k, s)
			seen[s] = k
		}
	}
}
