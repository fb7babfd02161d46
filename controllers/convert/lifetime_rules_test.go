package convert

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

// lifetimeRules evaluates the generated CRD's CEL rule of spec.lifetimes.accessToken with the API
// server's own validator, so the rule and validateClient can be compared without a cluster.
type lifetimeRules struct {
	schema    *structuralschema.Structural
	validator *cel.Validator
}

func loadAccessTokenRules(tb testing.TB) *lifetimeRules {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "oauth.latchkey.dev_oauthclients.yaml"))
	require.NoError(tb, err)
	var crd apiextensionsv1.CustomResourceDefinition
	require.NoError(tb, yaml.Unmarshal(data, &crd))
	require.Len(tb, crd.Spec.Versions, 1)
	prop := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["lifetimes"].Properties["accessToken"]
	require.True(tb, prop.XIntOrString, "accessToken is an int-or-string")
	require.NotEmpty(tb, prop.XValidations, "the CRD has a CEL rule on accessToken")
	var internal apiextensions.JSONSchemaProps
	require.NoError(tb, apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(&prop, &internal, nil))
	s, err := structuralschema.NewStructural(&internal)
	require.NoError(tb, err)
	v := cel.NewValidator(s, false, celconfig.PerCallLimit)
	require.NotNil(tb, v)
	return &lifetimeRules{schema: s, validator: v}
}

// accepts reports whether the rule accepts the value (an int64 or a string, as decoded JSON).
func (r *lifetimeRules) accepts(v any) bool {
	errs, _ := r.validator.Validate(context.Background(), field.NewPath("spec", "lifetimes", "accessToken"), r.schema, v, nil, celconfig.RuntimeCELCostBudget)
	return len(errs) == 0
}

// accessTokenAccepted reports whether validateClient accepts the accessToken value and what it
// converts to.
func accessTokenAccepted(v intstr.IntOrString) (time.Duration, bool) {
	c, err := Client(oauthClient(func(oc *v1alpha1.OAuthClient) {
		oc.Spec.Lifetimes = &v1alpha1.TokenLifetimes{AccessToken: &v}
	}), nil)
	// Without a Secret the client is served without one (ErrSecretNotFound); only
	// ErrInvalidSpec keeps it from being served.
	return c.AccessTokenLifetime, !errors.Is(err, ErrInvalidSpec)
}

func TestLifetimeCRDRuleAndConvertAgree(t *testing.T) {
	rules := loadAccessTokenRules(t)
	tests := []struct {
		name  string
		value intstr.IntOrString
		crd   bool // the API server accepts it
		disk  bool // convert accepts it (a file of the embedded mode)
		want  time.Duration
	}{
		{"integer seconds are accepted by both", intstr.FromInt(3600), true, true, time.Hour},
		{"a duration is accepted by both", intstr.FromString("1h30m"), true, true, 90 * time.Minute},
		{"a fractional duration is accepted by both", intstr.FromString("1.5s"), true, true, 1500 * time.Millisecond},
		{"the largest duration is accepted by both", intstr.FromString("24h"), true, true, 24 * time.Hour},
		{"one second more is refused by both", intstr.FromString("86401s"), false, false, 0},
		{"one second more as an integer is refused by both", intstr.FromInt(86401), false, false, 0},
		{"a negative integer is refused by both", intstr.FromInt(-5), false, false, 0},
		{"a negative duration is refused by both", intstr.FromString("-1h"), false, false, 0},
		{"a quoted integer is refused by both", intstr.FromString("3600"), false, false, 0},
		{"days are refused by both", intstr.FromString("1d"), false, false, 0},
		{"under a second is refused by both", intstr.FromString("999ms"), false, false, 0},
		{"an empty string is refused by both", intstr.FromString(""), false, false, 0},
		{"0 seconds is refused by the API server, the server default on disk", intstr.FromInt(0), false, true, 0},
		{"a leading dot is left to Go's parser on disk", intstr.FromString(".5h"), false, true, 30 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any = tt.value.StrVal
			if tt.value.Type == intstr.Int {
				v = int64(tt.value.IntVal)
			}
			assert.Equal(t, tt.crd, rules.accepts(v), "the CRD")
			got, ok := accessTokenAccepted(tt.value)
			assert.Equal(t, tt.disk, ok, "convert")
			assert.Equal(t, tt.want, got)
		})
	}
}

// FuzzLifetimeCRDRuleNeverAcceptsWhatConvertRefuses: whatever the API server stores, the
// controller serves, with the lifetime the rule bounded.
func FuzzLifetimeCRDRuleNeverAcceptsWhatConvertRefuses(f *testing.F) {
	for _, s := range []string{"1h", "30m", "1h30m", "1.5s", "24h", "24h0m1s", "0s", "1d", "3600", "-1h", "1e3s", "1h-5m", "01s"} {
		f.Add(s)
	}
	rules := loadAccessTokenRules(f)
	f.Fuzz(func(t *testing.T, s string) {
		if !rules.accepts(s) {
			return
		}
		d, ok := accessTokenAccepted(intstr.FromString(s))
		if !ok || d < time.Second || d > 24*time.Hour {
			t.Fatalf("the CRD accepts accessToken %q, convert gives %v (accepted: %v)", s, d, ok)
		}
	})
}
