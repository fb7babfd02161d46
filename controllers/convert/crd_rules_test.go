package convert

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	"github.com/latchkey-dev/latchkey/server/redirecturi"
)

// redirectURIRules evaluates the generated CRD's CEL rules on one redirect URI with the API
// server's own validator (as kube-apiserver runs them), so the rules and redirecturi.Check can be
// compared without a cluster.
type redirectURIRules struct {
	schema    *structuralschema.Structural
	validator *cel.Validator
}

func loadRedirectURIRules(tb testing.TB) *redirectURIRules {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "oauth.latchkey.dev_oauthclients.yaml"))
	require.NoError(tb, err)
	var crd apiextensionsv1.CustomResourceDefinition
	require.NoError(tb, yaml.Unmarshal(data, &crd))
	require.Len(tb, crd.Spec.Versions, 1)
	items := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["redirectURIs"].Items
	require.NotNil(tb, items)
	require.NotEmpty(tb, items.Schema.XValidations, "the CRD has CEL rules on each redirect URI")
	var internal apiextensions.JSONSchemaProps
	require.NoError(tb, apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(items.Schema, &internal, nil))
	s, err := structuralschema.NewStructural(&internal)
	require.NoError(tb, err)
	v := cel.NewValidator(s, false, celconfig.PerCallLimit)
	require.NotNil(tb, v)
	return &redirectURIRules{schema: s, validator: v}
}

// refusals returns the messages of the rules u breaks; none means the CRD accepts it.
func (r *redirectURIRules) refusals(u string) []string {
	errs, _ := r.validator.Validate(context.Background(), field.NewPath("spec", "redirectURIs").Index(0), r.schema, u, nil, celconfig.RuntimeCELCostBudget)
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func TestCRDRulesRefuseWhatCELCanExpress(t *testing.T) {
	rules := loadRedirectURIRules(t)
	tests := []struct {
		name, uri  string
		celRefuses bool // false: only redirecturi.Check (the controller) can refuse it
		// checkRefuses: redirecturi.Check refuses it (always so when celRefuses).
		checkRefuses bool
	}{
		{"https with a host is accepted by both", "https://app.example/cb", false, false},
		{"http on [::1] is accepted by both", "http://[::1]:8080/cb", false, false},
		{"a private-use URI is accepted by both", "com.example.app:/cb", false, false},
		{"user information is refused by both", "https://user:pw@example.com/cb", true, true},
		{"a space is refused by both", "https://example.com/a b", true, true},
		{"a no-break space is refused by both", "https://example.com/a\u00a0b", true, true},
		{"a C1 control character is refused by both", "https://example.com/\u0085", true, true},
		{"nothing after a private-use scheme is refused by both", "com.example.app:", true, true},
		{"https without a host is refused by both", "https:///cb", true, true},
		{"https with only a port is refused by both", "https://:443/cb", true, true},
		{"a fragment is refused by both", "https://app.example/cb#x", true, true},
		{"http on a look-alike host is refused by both", "http://localhost.evil.example/cb", true, true},
		{"javascript is refused by both", "javascript:alert(1)", true, true},
		{"ws is refused by both", "ws://app.example/cb", true, true},
		{"ftp is refused by both", "ftp://app.example/cb", true, true},
		{"blob is refused by both", "blob:https://app.example/x", true, true},
		{"about:blank is refused by both", "about:blank", true, true},
		{"view-source is refused by both", "view-source:https://app.example/", true, true},
		{"ms-officecmd is refused by both", "ms-officecmd:x", true, true},
		{"a single-label private-use scheme is refused by both", "myapp:/cb", true, true},
		{"a scheme with an empty label is refused by both", "com..example:/cb", true, true},
		{"a port net/url refuses is left to the controller", "https://app.example:port/cb", false, true},
		{"an unclosed IPv6 host is left to the controller", "https://[::1/cb", false, true},
		{"a zero-width space is left to the controller", "https://app.example/c\u200bb", false, true},
		{"a non-ASCII host is left to the controller", "https://\u0430pp.example/cb", false, true},
		{"port 0 is left to the controller", "http://127.0.0.1:0/cb", false, true},
		{"port 99999 is left to the controller", "https://app.example:99999/cb", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rules.refusals(tt.uri)
			if tt.celRefuses {
				require.NotEmpty(t, got, "the CRD must refuse %q", tt.uri)
				require.Error(t, redirecturi.Check(tt.uri), "what the CRD refuses, the controller refuses")
				if !strings.ContainsRune(tt.uri, '\u0085') { // a line break: the API server falls back to the fixed message
					assert.Contains(t, strings.Join(got, "\n"), `"`+tt.uri+`"`, "the message names the URI")
				}
				return
			}
			assert.Empty(t, got, "the CRD accepts it")
			if tt.checkRefuses {
				assert.Error(t, redirecturi.Check(tt.uri), "the controller refuses it")
			} else {
				assert.NoError(t, redirecturi.Check(tt.uri), "the controller accepts it")
			}
		})
	}
}

// FuzzCRDRulesNeverRefuseWhatCheckAccepts: the CRD's CEL rules express part of redirecturi.Check,
// never more, so a client that registration accepts is never refused by the API server, and the
// CRD and the controller never disagree about an accepted URI.
func FuzzCRDRulesNeverRefuseWhatCheckAccepts(f *testing.F) {
	for _, u := range []string{
		"https://app.example/cb", "http://localhost:8080/cb", "http://[::1]/", "http://127.0.0.1?x",
		"com.example.app:/cb", "myapp://cb", "com.example.app:", "https://u@a/", "https://a/\u2028",
		"https://[::1]:443/", "a+b.c-d:x", "a.b-c:x", "https://a/b?c=@", "ws://a/", "com.example://u@h/",
	} {
		f.Add(u)
	}
	rules := loadRedirectURIRules(f)
	f.Fuzz(func(t *testing.T, u string) {
		if redirecturi.Check(u) != nil {
			return
		}
		if got := rules.refusals(u); len(got) > 0 {
			t.Fatalf("redirecturi.Check accepts %q, the CRD refuses it: %v", u, got)
		}
	})
}

func TestPostLogoutRedirectURIsHaveTheRedirectURIRules(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "oauth.latchkey.dev_oauthclients.yaml"))
	require.NoError(t, err)
	var crd apiextensionsv1.CustomResourceDefinition
	require.NoError(t, yaml.Unmarshal(data, &crd))
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties
	redirect, postLogout := spec["redirectURIs"], spec["postLogoutRedirectURIs"]
	require.NotNil(t, postLogout.Items, "the CRD has spec.postLogoutRedirectURIs")
	require.Len(t, postLogout.Items.Schema.XValidations, len(redirect.Items.Schema.XValidations))
	for i, r := range redirect.Items.Schema.XValidations {
		assert.Equal(t, r.Rule, postLogout.Items.Schema.XValidations[i].Rule, "rule %d", i)
	}
	assert.Equal(t, redirect.MaxItems, postLogout.MaxItems)
	assert.Equal(t, redirect.Items.Schema.MaxLength, postLogout.Items.Schema.MaxLength)
}
