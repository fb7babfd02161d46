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

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/redirecturi"
)

// logoutURIRule evaluates the generated CRD's CEL rules of spec.backchannelLogoutURI with the
// API server's own validator.
func logoutURIRule(tb testing.TB) func(u string) []string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "oauth.latchkey.dev_oauthclients.yaml"))
	require.NoError(tb, err)
	var crd apiextensionsv1.CustomResourceDefinition
	require.NoError(tb, yaml.Unmarshal(data, &crd))
	prop, ok := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["backchannelLogoutURI"]
	require.True(tb, ok, "the CRD has spec.backchannelLogoutURI")
	require.NotEmpty(tb, prop.XValidations)
	var internal apiextensions.JSONSchemaProps
	require.NoError(tb, apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(&prop, &internal, nil))
	s, err := structuralschema.NewStructural(&internal)
	require.NoError(tb, err)
	v := cel.NewValidator(s, false, celconfig.PerCallLimit)
	require.NotNil(tb, v)
	return func(u string) []string {
		errs, _ := v.Validate(context.Background(), field.NewPath("spec", "backchannelLogoutURI"), s, u, nil, celconfig.RuntimeCELCostBudget)
		var out []string
		for _, e := range errs {
			out = append(out, e.Error())
		}
		return out
	}
}

func TestBackchannelLogoutURIRules(t *testing.T) {
	refusals := logoutURIRule(t)
	tests := []struct {
		name, uri  string
		celRefuses bool
	}{
		{"https with a host is accepted", "https://app.example/backchannel-logout", false},
		{"http on a loopback host is accepted", "http://127.0.0.1:9000/logout", false},
		{"http on another host is refused", "http://app.example/logout", true},
		{"a private-use scheme is refused", "com.example.app:/logout", true},
		{"a fragment is refused", "https://app.example/logout#x", true},
		{"user information is refused", "https://u:p@app.example/logout", true},
		{"white space is refused", "https://app.example/log out", true},
		{"https without a host is refused", "https:///logout", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := refusals(tc.uri)
			if tc.celRefuses {
				assert.NotEmpty(t, got, "the CRD refuses %q", tc.uri)
				assert.Error(t, redirecturi.CheckLogoutURI(tc.uri), "what the CRD refuses, the controller refuses")
				return
			}
			assert.Empty(t, got)
			assert.NoError(t, redirecturi.CheckLogoutURI(tc.uri))
		})
	}
}

// FuzzBackchannelLogoutURIRulesNeverRefuseWhatCheckAccepts: the CEL rules express part of
// redirecturi.CheckLogoutURI, never more.
func FuzzBackchannelLogoutURIRulesNeverRefuseWhatCheckAccepts(f *testing.F) {
	for _, u := range []string{
		"https://app.example/l", "http://localhost/l", "http://[::1]:1/", "https://a/b?c=@", "https://[::1]:443/",
		"com.example.app:/l", "https://a/\u2028",
	} {
		f.Add(u)
	}
	refusals := logoutURIRule(f)
	f.Fuzz(func(t *testing.T, u string) {
		if redirecturi.CheckLogoutURI(u) != nil {
			return
		}
		if got := refusals(u); len(got) > 0 {
			t.Fatalf("CheckLogoutURI accepts %q, the CRD refuses it: %v", u, got)
		}
	})
}

func TestBackchannelLogoutFieldsReachTheRegistryClient(t *testing.T) {
	sec := secret("payments", "billing-oauth-client", map[string]string{"client-secret": "s"})
	c, err := Client(oauthClient(func(oc *v1alpha1.OAuthClient) {
		oc.Spec.BackchannelLogoutURI = "https://billing.example/backchannel-logout"
		oc.Spec.BackchannelLogoutSessionRequired = true
	}), sec)
	require.NoError(t, err)
	assert.Equal(t, "https://billing.example/backchannel-logout", c.BackchannelLogoutURI)
	assert.True(t, c.BackchannelLogoutSessionRequired)

	_, err = Client(oauthClient(func(oc *v1alpha1.OAuthClient) {
		oc.Spec.BackchannelLogoutURI = "http://billing.example/logout"
	}), sec)
	require.ErrorIs(t, err, ErrInvalidSpec)
	assert.True(t, strings.Contains(err.Error(), "backchannelLogoutURI"), err.Error())
}
