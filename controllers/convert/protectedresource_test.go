package convert_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/server/oauth2"
)

func protectedResource(mutate func(s *v1alpha1.ProtectedResourceSpec)) *v1alpha1.ProtectedResource {
	pr := &v1alpha1.ProtectedResource{
		ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "api", CreationTimestamp: metav1.NewTime(time.Unix(1_700_000_000, 0))},
		Spec:       v1alpha1.ProtectedResourceSpec{Audience: "https://payments.example.com"},
	}
	if mutate != nil {
		mutate(&pr.Spec)
	}
	return pr
}

func TestProtectedResourceConversion(t *testing.T) {
	selectAll := func(namespace string, sel labels.Selector) []string {
		if sel.Matches(labels.Set{"team": "payments"}) {
			return []string{namespace + "/selected", namespace + "/billing"}
		}
		return nil
	}
	pr := protectedResource(func(s *v1alpha1.ProtectedResourceSpec) {
		s.Scopes = []string{"payments:read"}
		s.AllowedClients = []v1alpha1.ClientReference{{Name: "billing"}, {Namespace: "shop", Name: "checkout"}}
		s.AllowedClientSelector = &v1alpha1.ClientSelector{MatchLabels: map[string]string{"team": "payments"},
			MatchExpressions: []v1alpha1.ClientSelectorRequirement{{Key: "team", Operator: "In", Values: []string{"payments", "billing"}}}}
		s.TokenExchange = &v1alpha1.TokenExchangePolicy{AllowedRequesters: []v1alpha1.ExchangeRequester{{
			Client: v1alpha1.ClientReference{Name: "gateway"}, SubjectTokenSources: []v1alpha1.SubjectTokenSource{v1alpha1.SubjectTokenAccessToken},
		}}}
	})
	p, err := convert.ProtectedResource(pr, selectAll)
	require.NoError(t, err)
	assert.Equal(t, "payments/api", p.Source)
	assert.Equal(t, "https://payments.example.com", p.Audience)
	assert.Equal(t, pr.CreationTimestamp.Time, p.Created)
	assert.Equal(t, []string{"payments/billing", "payments/selected", "shop/checkout"}, p.AllowedClients,
		"names default to the resource's namespace; selected and named merge without repeats")
	require.Len(t, p.ExchangeRequesters, 1)
	assert.Equal(t, "payments/gateway", p.ExchangeRequesters[0].Client)
	assert.Equal(t, []string{"AccessToken"}, p.ExchangeRequesters[0].SubjectTokenSources)
	assert.Equal(t, []string{"header"}, p.Metadata.BearerMethods, "the default bearer method")
	assert.Equal(t, []string{"payments/billing", "payments/gateway", "shop/checkout"}, convert.ResourceClientSources(pr))
}

func TestProtectedResourceRefusals(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *v1alpha1.ProtectedResourceSpec)
	}{
		{"a missing audience is refused", func(s *v1alpha1.ProtectedResourceSpec) { s.Audience = "" }},
		{"a relative audience is refused", func(s *v1alpha1.ProtectedResourceSpec) { s.Audience = "/payments" }},
		{"an audience with a fragment is refused", func(s *v1alpha1.ProtectedResourceSpec) { s.Audience = "https://p.example.com/#x" }},
		{"an audience over 1024 bytes is refused", func(s *v1alpha1.ProtectedResourceSpec) {
			s.Audience = "https://p.example.com/" + string(make([]byte, 1100))
		}},
		{"a scope that is not a scope token is refused", func(s *v1alpha1.ProtectedResourceSpec) { s.Scopes = []string{"a b"} }},
		{"a client reference without a name is refused", func(s *v1alpha1.ProtectedResourceSpec) {
			s.AllowedClients = []v1alpha1.ClientReference{{Namespace: "x"}}
		}},
		{"a client name that is no object name is refused", func(s *v1alpha1.ProtectedResourceSpec) {
			s.AllowedClients = []v1alpha1.ClientReference{{Name: "team/billing"}}
		}},
		{"a client namespace that is no namespace name is refused", func(s *v1alpha1.ProtectedResourceSpec) {
			s.AllowedClients = []v1alpha1.ClientReference{{Namespace: "Team_A", Name: "billing"}}
		}},
		{"an invalid selector is refused", func(s *v1alpha1.ProtectedResourceSpec) {
			s.AllowedClientSelector = &v1alpha1.ClientSelector{MatchExpressions: []v1alpha1.ClientSelectorRequirement{{Key: "team", Operator: "Near"}}}
		}},
		{"a requester without subject token sources is refused", func(s *v1alpha1.ProtectedResourceSpec) {
			s.TokenExchange = &v1alpha1.TokenExchangePolicy{AllowedRequesters: []v1alpha1.ExchangeRequester{{Client: v1alpha1.ClientReference{Name: "g"}}}}
		}},
		{"an unknown subject token source is refused", func(s *v1alpha1.ProtectedResourceSpec) {
			s.TokenExchange = &v1alpha1.TokenExchangePolicy{AllowedRequesters: []v1alpha1.ExchangeRequester{{
				Client: v1alpha1.ClientReference{Name: "g"}, SubjectTokenSources: []v1alpha1.SubjectTokenSource{"SAMLAssertion"}}}}
		}},
		{"workload issuers without the WorkloadIssuer source are refused", func(s *v1alpha1.ProtectedResourceSpec) {
			s.TokenExchange = &v1alpha1.TokenExchangePolicy{AllowedRequesters: []v1alpha1.ExchangeRequester{{
				Client: v1alpha1.ClientReference{Name: "g"}, SubjectTokenSources: []v1alpha1.SubjectTokenSource{"AccessToken"},
				WorkloadIssuers: []string{"github"}}}}
		}},
		{"an http documentation URL is refused", func(s *v1alpha1.ProtectedResourceSpec) {
			s.Metadata = &v1alpha1.ProtectedResourceMetadata{ResourceDocumentation: "http://docs.example.com"}
		}},
		{"an unknown bearer method is refused", func(s *v1alpha1.ProtectedResourceSpec) {
			s.Metadata = &v1alpha1.ProtectedResourceMetadata{BearerMethodsSupported: []string{"cookie"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convert.ProtectedResource(protectedResource(tt.mutate), nil)
			require.ErrorIs(t, err, convert.ErrInvalidSpec)
		})
	}
}

// FuzzProtectedResource checks that any audience, scope, client name and subject token source
// either converts into a value the server can use (an audience oauth2.CheckResource accepts,
// allowed clients sorted without repeats) or is ErrInvalidSpec; never a panic.
func FuzzProtectedResource(f *testing.F) {
	f.Add("https://api.example.com", "read:x", "billing", "AccessToken")
	f.Add("urn:x:y#frag", "a b", "", "SAML")
	f.Add("/rel", "", "a/b", "WorkloadIssuer")
	f.Fuzz(func(t *testing.T, audience, scope, name, source string) {
		pr := protectedResource(func(s *v1alpha1.ProtectedResourceSpec) {
			s.Audience = audience
			s.Scopes = []string{scope}
			s.AllowedClients = []v1alpha1.ClientReference{{Name: name}, {Name: name}}
			s.TokenExchange = &v1alpha1.TokenExchangePolicy{AllowedRequesters: []v1alpha1.ExchangeRequester{{
				Client: v1alpha1.ClientReference{Name: name}, SubjectTokenSources: []v1alpha1.SubjectTokenSource{v1alpha1.SubjectTokenSource(source)}}}}
		})
		p, err := convert.ProtectedResource(pr, nil)
		if err != nil {
			require.ErrorIs(t, err, convert.ErrInvalidSpec)
			return
		}
		require.NoError(t, oauth2.CheckResource(p.Audience))
		assert.Len(t, p.AllowedClients, 1, "a name listed twice is allowed once")
	})
}
