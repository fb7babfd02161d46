package chart

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestKubectlShortNamesAndExplain: the chart's CRDs give every kind a short name, and kubectl
// explain names the values a list of enums accepts (it prints only a field's own enum).
func TestKubectlShortNamesAndExplain(t *testing.T) {
	s := env
	var crds []*unstructured.Unstructured
	for _, o := range s.render(t, "latchkey", "latchkey") {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		}
	}
	s.install(t, "latchkey", crds)
	s.cp.MustKubectl(t, nil, "get", "oac,oacp,scp,usr,wli,oidcidp", "--all-namespaces")
	for _, tc := range []struct {
		name  string
		field string
		want  []string
	}{
		{name: "an OAuthClient's grant types", field: "oauthclient.spec.grantTypes",
			want: []string{"authorization_code", "client_credentials", "refresh_token", "password"}},
		{name: "an OAuthClientPolicy's grant types", field: "oauthclientpolicy.spec.allowedGrantTypes",
			want: []string{"authorization_code", "client_credentials", "refresh_token", "password"}},
		{name: "an OAuthClientPolicy's authentication methods", field: "oauthclientpolicy.spec.allowedAuthenticationMethods",
			want: []string{"secret", "service_account_token", "private_key_jwt"}},
		{name: "an OAuthClient's authentication method", field: "oauthclient.spec.tokenEndpointAuthMethod",
			want: []string{"client_secret_basic", "client_secret_post", "none", "service_account_token", "private_key_jwt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := s.cp.MustKubectl(t, nil, "explain", tc.field)
			for _, w := range tc.want {
				assert.Contains(t, out, w)
			}
		})
	}
}
