package policy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/policy"
)

func client(change func(*v1alpha1.OAuthClientSpec)) *v1alpha1.OAuthClient {
	oc := &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "billing"},
		Spec: v1alpha1.OAuthClientSpec{
			GrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeClientCredentials},
			Scopes:     []string{"billing:read"},
		},
	}
	if change != nil {
		change(&oc.Spec)
	}
	return oc
}

func pol(name string, spec v1alpha1.OAuthClientPolicySpec) v1alpha1.OAuthClientPolicy {
	return v1alpha1.OAuthClientPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: name}, Spec: spec}
}

func TestEvaluate(t *testing.T) {
	registered := client(nil)
	registered.Labels = map[string]string{v1alpha1.LabelRegistered: "true"}
	tests := []struct {
		name     string
		client   *v1alpha1.OAuthClient
		policies []v1alpha1.OAuthClientPolicy
		want     []policy.Violation
	}{
		{"an empty policy restricts nothing", client(nil), []v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{})}, nil},
		{"no policy restricts nothing", client(nil), nil, nil},
		{"a scope matching a prefix pattern is allowed", client(nil),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowedScopes: []string{"billing:*"}})}, nil},
		{"a scope outside every pattern is named", client(func(s *v1alpha1.OAuthClientSpec) { s.Scopes = []string{"billing:read", "admin"} }),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowedScopes: []string{"billing:*", "openid"}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "allowedScopes", Value: "admin"}}},
		{"an empty list allows nothing", client(nil),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowedScopes: []string{}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "allowedScopes", Value: "billing:read"}}},
		{"a malformed pattern matches nothing but itself", client(nil),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowedScopes: []string{"bill*:read"}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "allowedScopes", Value: "billing:read"}}},
		{"a grant type not allowed is named", client(func(s *v1alpha1.OAuthClientSpec) {
			s.GrantTypes = []v1alpha1.GrantType{v1alpha1.GrantTypeClientCredentials, v1alpha1.GrantTypeRefreshToken}
		}),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowedGrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeClientCredentials}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "allowedGrantTypes", Value: "refresh_token"}}},
		{"the device code grant is named when the policy does not list it", client(func(s *v1alpha1.OAuthClientSpec) {
			s.GrantTypes = []v1alpha1.GrantType{v1alpha1.GrantTypeDeviceCode, v1alpha1.GrantTypeRefreshToken}
		}),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowedGrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeRefreshToken}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "allowedGrantTypes", Value: "urn:ietf:params:oauth:grant-type:device_code"}}},
		{"the password grant is refused when the policy says so", client(func(s *v1alpha1.OAuthClientSpec) {
			s.GrantTypes = []v1alpha1.GrantType{v1alpha1.GrantTypePassword}
		}),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowPasswordGrant: ptr.To(false)})},
			[]policy.Violation{{Policy: "payments/p", Rule: "allowPasswordGrant", Value: "password"}}},
		{"an audience outside the list is named", client(func(s *v1alpha1.OAuthClientSpec) {
			s.Audiences = []string{"https://api.example.com/billing", "https://evil.example"}
		}),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowedAudiences: []string{"https://api.example.com/*"}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "allowedAudiences", Value: "https://evil.example"}}},
		{"a client without audiences is always allowed", client(nil),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowedAudiences: []string{}})}, nil},
		{"redirect URIs on a subdomain of a wildcard host are allowed, the domain itself is not", client(func(s *v1alpha1.OAuthClientSpec) {
			s.RedirectURIs = []string{"https://app.Example.com/cb", "https://a.b.example.com/cb", "https://example.com/cb", "https://example.com.evil/cb"}
		}),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{RedirectURIHosts: []string{"*.example.com"}})},
			[]policy.Violation{
				{Policy: "payments/p", Rule: "redirectURIHosts", Value: "https://example.com/cb"},
				{Policy: "payments/p", Rule: "redirectURIHosts", Value: "https://example.com.evil/cb"},
			}},
		{"post-logout redirect URIs are held to the redirect URI hosts too", client(func(s *v1alpha1.OAuthClientSpec) {
			s.RedirectURIs = []string{"https://app.example.com/cb"}
			s.PostLogoutRedirectURIs = []string{"https://app.example.com/bye", "https://evil.example/bye"}
		}),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{RedirectURIHosts: []string{"*.example.com"}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "redirectURIHosts", Value: "https://evil.example/bye"}}},
		{"loopback and private-use scheme redirect URIs match their host and scheme", client(func(s *v1alpha1.OAuthClientSpec) {
			s.RedirectURIs = []string{"http://127.0.0.1:8080/cb", "http://[::1]/cb", "com.example.app:/cb", "org.other.app:/cb"}
		}),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{RedirectURIHosts: []string{"127.0.0.1", "::1", "com.example.app"}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "redirectURIHosts", Value: "org.other.app:/cb"}}},
		{"the back-channel logout URI's host is bounded like a redirect URI's", client(func(s *v1alpha1.OAuthClientSpec) {
			s.RedirectURIs = []string{"https://app.example.com/cb"}
			s.BackchannelLogoutURI = "https://internal.evil/logout"
		}),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{RedirectURIHosts: []string{"*.example.com"}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "redirectURIHosts", Value: "https://internal.evil/logout"}}},
		{"a back-channel logout URI on an allowed host passes", client(func(s *v1alpha1.OAuthClientSpec) {
			s.BackchannelLogoutURI = "https://app.example.com/logout"
		}),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{RedirectURIHosts: []string{"*.example.com"}})}, nil},
		{"a client without lifetimes is held to the server's defaults", client(nil),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{MaxLifetimes: &v1alpha1.MaxTokenLifetimes{AccessToken: ptr.To[int32](900), AuthorizationCode: ptr.To[int32](600)}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "maxLifetimes.accessToken", Value: "3600s"}}},
		{"a client's own lifetime within the bound is allowed", client(func(s *v1alpha1.OAuthClientSpec) {
			s.Lifetimes = &v1alpha1.TokenLifetimes{AccessToken: ptr.To(intstr.FromInt(900))}
		}),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{MaxLifetimes: &v1alpha1.MaxTokenLifetimes{AccessToken: ptr.To[int32](900)}})}, nil},
		{"a lifetime written as a duration is counted in seconds", client(func(s *v1alpha1.OAuthClientSpec) {
			s.Lifetimes = &v1alpha1.TokenLifetimes{AccessToken: ptr.To(intstr.FromString("20m"))}
		}),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{MaxLifetimes: &v1alpha1.MaxTokenLifetimes{AccessToken: ptr.To[int32](900)}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "maxLifetimes.accessToken", Value: "1200s"}}},
		{"a public client is refused when the policy says so, whatever the methods", client(func(s *v1alpha1.OAuthClientSpec) {
			s.Type = v1alpha1.ClientTypePublic
		}),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowPublicClients: ptr.To(false),
				AllowedAuthenticationMethods: []v1alpha1.AuthenticationMethodClass{v1alpha1.AuthClassPrivateKeyJWT}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "allowPublicClients", Value: "Public"}}},
		{"a confidential client without a method counts as secret", client(nil),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowedAuthenticationMethods: []v1alpha1.AuthenticationMethodClass{v1alpha1.AuthClassServiceAccountToken}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "allowedAuthenticationMethods", Value: "secret"}}},
		{"client_secret_post is a secret method", client(func(s *v1alpha1.OAuthClientSpec) { s.TokenEndpointAuthMethod = v1alpha1.AuthMethodClientSecretPost }),
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowedAuthenticationMethods: []v1alpha1.AuthenticationMethodClass{v1alpha1.AuthClassSecret}})}, nil},
		{"a registered client is refused where dynamic registration is not allowed", registered,
			[]v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowDynamicRegistration: ptr.To(false)})},
			[]policy.Violation{{Policy: "payments/p", Rule: "allowDynamicRegistration", Value: "oauth.latchkey.dev/registered=true"}}},
		{"every policy must be satisfied and each names its own violations", client(nil),
			[]v1alpha1.OAuthClientPolicy{
				pol("a", v1alpha1.OAuthClientPolicySpec{AllowedScopes: []string{"openid"}}),
				pol("b", v1alpha1.OAuthClientPolicySpec{AllowedGrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode}}),
				pol("c", v1alpha1.OAuthClientPolicySpec{AllowedScopes: []string{"*"}}),
			},
			[]policy.Violation{
				{Policy: "payments/a", Rule: "allowedScopes", Value: "billing:read"},
				{Policy: "payments/b", Rule: "allowedGrantTypes", Value: "client_credentials"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, policy.Evaluate(tt.client, tt.policies))
		})
	}
}

func TestMessageNamesThePolicyTheRuleAndTheValue(t *testing.T) {
	vs := []policy.Violation{
		{Policy: "payments/p", Rule: "allowedScopes", Value: "admin"},
		{Policy: "payments/q", Rule: "allowPasswordGrant", Value: "password"},
	}
	assert.Equal(t, `OAuthClientPolicy payments/p: allowedScopes does not allow "admin"; `+
		`OAuthClientPolicy payments/q: allowPasswordGrant does not allow "password"`, policy.Message(vs))
	many := make([]policy.Violation, 7)
	assert.Contains(t, policy.Message(many), "; and 2 more")
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		spec  v1alpha1.OAuthClientPolicySpec
		valid bool
	}{
		{"an empty policy is valid", v1alpha1.OAuthClientPolicySpec{}, true},
		{"prefix patterns and wildcard hosts are valid", v1alpha1.OAuthClientPolicySpec{
			AllowedScopes: []string{"billing:*", "*"}, AllowedAudiences: []string{"https://api/*"}, RedirectURIHosts: []string{"*.example.com", "localhost"},
		}, true},
		{"a * inside a scope pattern is invalid", v1alpha1.OAuthClientPolicySpec{AllowedScopes: []string{"bill*:read"}}, false},
		{"a * inside an audience pattern is invalid", v1alpha1.OAuthClientPolicySpec{AllowedAudiences: []string{"https://*.example.com"}}, false},
		{"a host pattern with a * not before the first dot is invalid", v1alpha1.OAuthClientPolicySpec{RedirectURIHosts: []string{"app.*.example.com"}}, false},
		{"the device code grant is a known grant type", v1alpha1.OAuthClientPolicySpec{AllowedGrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeDeviceCode}}, true},
		{"an unknown grant type is invalid", v1alpha1.OAuthClientPolicySpec{AllowedGrantTypes: []v1alpha1.GrantType{"implicit"}}, false},
		{"an unknown authentication method is invalid", v1alpha1.OAuthClientPolicySpec{AllowedAuthenticationMethods: []v1alpha1.AuthenticationMethodClass{"none"}}, false},
		{"a zero lifetime bound is invalid", v1alpha1.OAuthClientPolicySpec{MaxLifetimes: &v1alpha1.MaxTokenLifetimes{IDToken: ptr.To[int32](0)}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pol("p", tt.spec)
			err := policy.Check(&p)
			if tt.valid {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, policy.ErrInvalidPolicy)
			}
		})
	}
}

func TestEvaluateResourceHoldsTheAudienceToAllowedAudiences(t *testing.T) {
	pr := &v1alpha1.ProtectedResource{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "api"},
		Spec: v1alpha1.ProtectedResourceSpec{Audience: "https://payments.example.com/api"}}
	tests := []struct {
		name     string
		policies []v1alpha1.OAuthClientPolicy
		want     []policy.Violation
	}{
		{"no policy allows every audience", nil, nil},
		{"a policy without allowedAudiences allows every audience", []v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{})}, nil},
		{"a matching prefix allows it", []v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowedAudiences: []string{"https://payments.example.com/*"}})}, nil},
		{"an audience outside the list is named", []v1alpha1.OAuthClientPolicy{pol("p", v1alpha1.OAuthClientPolicySpec{AllowedAudiences: []string{"https://billing.example.com/*"}})},
			[]policy.Violation{{Policy: "payments/p", Rule: "allowedAudiences", Value: "https://payments.example.com/api"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, policy.EvaluateResource(pr, tt.policies))
		})
	}
}
