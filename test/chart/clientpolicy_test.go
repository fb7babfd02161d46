package chart

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// policyNamespace holds the OAuthClientPolicy of these tests (and nothing of the other tests,
// which the policy would otherwise restrict).
const policyNamespace = "payments"

const billingPolicy = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClientPolicy
metadata: {name: billing-only, namespace: payments}
spec:
  allowedGrantTypes: [client_credentials, authorization_code, refresh_token]
  allowedScopes: ["billing:*", openid]
  allowedAudiences: ["https://api.example.com/*"]
  redirectURIHosts: ["*.example.com", "127.0.0.1", com.example.app]
  maxLifetimes: {accessToken: 3600}
  allowPublicClients: false
  allowedAuthenticationMethods: [secret, private_key_jwt]
`

// oauthClient is an OAuthClient of the policy's namespace with the spec lines given.
func oauthClient(name string, spec ...string) string {
	return "apiVersion: oauth.latchkey.dev/v1alpha1\nkind: OAuthClient\nmetadata: {name: " + name +
		", namespace: payments}\nspec:\n  " + strings.Join(spec, "\n  ") + "\n"
}

// admissionCase is an object kubectl applies in the policy's namespace and the refusal expected.
type admissionCase struct {
	name    string
	client  string // the manifest
	refused string // the message's rule and value; empty: created
}

// waitAdmissionPolicy waits until the API server enforces the chart's ValidatingAdmissionPolicy
// (its informer has it): a server-side dry run of a violating client is refused.
func waitAdmissionPolicy(t *testing.T, s *suite) {
	t.Helper()
	probe := oauthClient("probe", "grantTypes: [password]")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		out, err := s.cp.Kubectl([]byte(probe), "create", "--dry-run=server", "-f", "-")
		assert.Error(c, err)
		assert.Contains(c, out, "allowedGrantTypes", "the ValidatingAdmissionPolicy is not enforced")
	}, 30*time.Second, 100*time.Millisecond)
}

// TestChartAdmissionPolicyRefusesViolatingClients applies the chart (with its
// ValidatingAdmissionPolicy) to the API server and an OAuthClientPolicy, then kubectl applies
// OAuthClients: those breaking the policy are refused with a message naming the policy, the
// rule and the value; the others are created.
func TestChartAdmissionPolicyRefusesViolatingClients(t *testing.T) {
	s := env
	const ns = "latchkey-policy"
	s.install(t, ns, s.render(t, "policy", ns))
	if out, err := s.cp.Kubectl(nil, "create", "namespace", policyNamespace); err != nil && !strings.Contains(out, "AlreadyExists") {
		t.Fatalf("create namespace: %v: %s", err, out)
	}
	s.cp.MustKubectl(t, []byte(billingPolicy), "apply", "-f", "-")
	waitAdmissionPolicy(t, s)

	const refusedBy = "OAuthClientPolicy payments/billing-only: "
	tests := []admissionCase{
		{"a client within every rule is created", oauthClient("ok", "grantTypes: [client_credentials]",
			`scopes: ["billing:read", openid]`, `audiences: ["https://api.example.com/billing"]`, "lifetimes: {accessToken: 600}"), ""},
		{"a client with a redirect URI on an allowed subdomain is created", oauthClient("web", "grantTypes: [authorization_code]",
			`redirectURIs: ["https://app.example.com/cb", "http://127.0.0.1:8080/cb", "com.example.app:/cb"]`), ""},
		{"a scope outside the patterns is refused", oauthClient("admin", "grantTypes: [client_credentials]", `scopes: ["billing:read", "admin:all"]`),
			`allowedScopes does not allow "admin:all"`},
		{"a grant type not allowed is refused", oauthClient("pw", "grantTypes: [password]"),
			`allowedGrantTypes does not allow "password"`},
		{"the device code grant not allowed is refused", oauthClient("cli", `grantTypes: ["urn:ietf:params:oauth:grant-type:device_code"]`),
			`allowedGrantTypes does not allow "urn:ietf:params:oauth:grant-type:device_code"`},
		{"an audience outside the patterns is refused", oauthClient("aud", "grantTypes: [client_credentials]", `audiences: ["https://evil.example"]`),
			`allowedAudiences does not allow "https://evil.example"`},
		{"a redirect URI on the bare domain is refused", oauthClient("bare", "grantTypes: [authorization_code]", `redirectURIs: ["https://example.com/cb"]`),
			`redirectURIHosts does not allow "https://example.com/cb"`},
		{"a client with a post-logout redirect URI on an allowed subdomain is created", oauthClient("bye", "grantTypes: [authorization_code]",
			`redirectURIs: ["https://app.example.com/cb"]`, `postLogoutRedirectURIs: ["https://app.example.com/bye"]`), ""},
		{"a post-logout redirect URI off the allowed hosts is refused", oauthClient("byebye", "grantTypes: [authorization_code]",
			`redirectURIs: ["https://app.example.com/cb"]`, `postLogoutRedirectURIs: ["https://evil.example/bye"]`),
			`redirectURIHosts does not allow "https://evil.example/bye"`},
		{"a private-use scheme not listed is refused", oauthClient("app", "grantTypes: [authorization_code]", `redirectURIs: ["org.other.app:/cb"]`),
			`redirectURIHosts does not allow "org.other.app:/cb"`},
		{"a back-channel logout URI on an allowed host is created", oauthClient("bcl", "grantTypes: [authorization_code]",
			`redirectURIs: ["https://app.example.com/cb"]`, "backchannelLogoutURI: https://app.example.com/logout"), ""},
		{"a back-channel logout URI on a host not listed is refused", oauthClient("bcl-evil", "grantTypes: [authorization_code]",
			`redirectURIs: ["https://app.example.com/cb"]`, "backchannelLogoutURI: https://internal.evil/logout"),
			`redirectURIHosts does not allow "https://internal.evil/logout"`},
		{"a lifetime above the bound is refused", oauthClient("long", "grantTypes: [client_credentials]", "lifetimes: {accessToken: 7200}"),
			`maxLifetimes.accessToken does not allow "7200s"`},
		{"a lifetime above the bound written as a duration is refused", oauthClient("longer", "grantTypes: [client_credentials]", "lifetimes: {accessToken: 90m}"),
			`maxLifetimes.accessToken does not allow "5400s"`},
		{"a public client is refused", oauthClient("spa", "type: Public", "grantTypes: [authorization_code]", `redirectURIs: ["https://spa.example.com/cb"]`),
			`allowPublicClients does not allow "Public"`},
		{"an authentication method not allowed is refused", oauthClient("sa", "grantTypes: [client_credentials]",
			"tokenEndpointAuthMethod: service_account_token", "serviceAccount: {name: worker}"),
			`allowedAuthenticationMethods does not allow "service_account_token"`},
	}
	resource := func(name, audience string) string {
		return "apiVersion: oauth.latchkey.dev/v1alpha1\nkind: ProtectedResource\nmetadata: {name: " + name +
			", namespace: payments}\nspec: {audience: \"" + audience + "\"}\n"
	}
	tests = append(tests,
		admissionCase{"a ProtectedResource whose audience matches allowedAudiences is created", resource("billing-api", "https://api.example.com/billing"), ""},
		admissionCase{"a ProtectedResource whose audience is outside allowedAudiences is refused", resource("squat", "https://bank.example.com"),
			`allowedAudiences does not allow "https://bank.example.com"`},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := s.cp.Kubectl([]byte(tt.client), "apply", "-f", "-")
			if tt.refused == "" {
				require.NoError(t, err, "%s", out)
				return
			}
			require.Error(t, err, "created: %s", out)
			assert.Contains(t, out, refusedBy+tt.refused)
		})
	}
}

// TestChartPolicyTightenedAfterTheFact runs the server with the chart's RBAC: a client created
// before its namespace's policy is not refused by admission (it never saw the policy) but the
// server stops serving it, Ready=False PolicyViolation; a conforming client is untouched.
func TestChartPolicyTightenedAfterTheFact(t *testing.T) {
	s := env
	const ns = "latchkey-policy-late"
	objs := s.render(t, "late", ns)
	s.install(t, ns, objs)
	srv, err := s.start(t, containerArgs(t, objs), s.impersonatingKubeconfig(t, serviceAccountUser(t, ns, objs)), 30*time.Second)
	require.NoError(t, err)
	const clientsNS = "late-clients"
	s.cp.MustKubectl(t, nil, "create", "namespace", clientsNS)
	for _, c := range []string{"conforming", "violating"} {
		s.cp.MustKubectl(t, []byte(strings.ReplaceAll(oauthClient(c, "grantTypes: [client_credentials]"), "payments", clientsNS)), "apply", "-f", "-")
	}
	s.cp.MustKubectl(t, []byte(strings.ReplaceAll(oauthClient("violating", "grantTypes: [client_credentials]", "lifetimes: {accessToken: 7200}"), "payments", clientsNS)),
		"apply", "-f", "-")
	for _, c := range []string{"conforming", "violating"} {
		s.cp.MustKubectl(t, nil, "wait", "-n", clientsNS, "--for=condition=Ready", "--timeout=30s", "oauthclient/"+c)
		require.Eventually(t, func() bool { return clientToken(t, s, srv, clientsNS, c) == http.StatusOK }, 20*time.Second, 100*time.Millisecond, c)
	}

	s.cp.MustKubectl(t, []byte(`apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClientPolicy
metadata: {name: short-tokens, namespace: `+clientsNS+`}
spec: {maxLifetimes: {accessToken: 3600}}
`), "apply", "-f", "-")
	s.cp.MustKubectl(t, nil, "wait", "-n", clientsNS, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=PolicyViolation", "--timeout=30s", "oauthclient/violating")
	msg := s.cp.MustKubectl(t, nil, "get", "-n", clientsNS, "oauthclient/violating", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}")
	assert.Equal(t, `OAuthClientPolicy `+clientsNS+`/short-tokens: maxLifetimes.accessToken does not allow "7200s"`, msg)
	require.Eventually(t, func() bool { return clientToken(t, s, srv, clientsNS, "violating") == http.StatusUnauthorized }, 20*time.Second, 100*time.Millisecond)
	assert.Equal(t, http.StatusOK, clientToken(t, s, srv, clientsNS, "conforming"))
	s.cp.MustKubectl(t, nil, "wait", "-n", clientsNS, "--for=condition=Ready", "--timeout=5s", "oauthclient/conforming")
	s.cp.MustKubectl(t, nil, "wait", "-n", clientsNS, "--for=condition=Ready", "--timeout=30s", "oauthclientpolicy/short-tokens")
}

// clientToken asks for a client_credentials token with the generated Secret of the client.
func clientToken(t *testing.T, s *suite, srv *harness.Server, ns, name string) int {
	t.Helper()
	raw, err := exec.Command(s.cp.KubectlPath(), "--kubeconfig", s.cp.Kubeconfig(), "get", "secret", "-n", ns, name+"-oauth-client",
		"-o", "jsonpath={.data.client-secret}").Output()
	require.NoError(t, err)
	secret, err := base64.StdEncoding.DecodeString(string(raw))
	require.NoError(t, err)
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/oauth2/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(name+"."+ns, string(secret))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

// TestChartDefaultPolicyAppliesToEveryNamespace installs the chart with clientPolicy.default:
// the server is told of the default policy, and once the hook applies it, a client of any
// namespace that breaks it stops being served (PolicyViolation naming it) and a new one is
// refused by the API server.
func TestChartDefaultPolicyAppliesToEveryNamespace(t *testing.T) {
	s := env
	const ns = "latchkey-default-policy"
	set := "clientPolicy.default.allowPasswordGrant=false,clientPolicy.default.allowedAudiences={https://ok.example/*}"
	objs := s.render(t, "dp", ns, set)
	require.Contains(t, containerArgs(t, objs), "--default-client-policy=dp-latchkey-default")
	s.install(t, ns, objs)
	srv, err := s.start(t, containerArgs(t, objs), s.impersonatingKubeconfig(t, serviceAccountUser(t, ns, objs)), 30*time.Second)
	require.NoError(t, err)

	const clientsNS = "anywhere"
	s.cp.MustKubectl(t, nil, "create", "namespace", clientsNS)
	legacy := strings.ReplaceAll(oauthClient("legacy", "grantTypes: [client_credentials, password]"), "payments", clientsNS)
	s.cp.MustKubectl(t, []byte(legacy), "apply", "-f", "-")
	s.cp.MustKubectl(t, nil, "wait", "-n", clientsNS, "--for=condition=Ready", "--timeout=30s", "oauthclient/legacy")
	require.Eventually(t, func() bool { return clientToken(t, s, srv, clientsNS, "legacy") == http.StatusOK }, 20*time.Second, 100*time.Millisecond)

	// The hook, as helm applies it after the release's resources.
	hook, err := exec.Command(s.helm, "template", "dp", s.root+"/charts/latchkey", "--namespace", ns, "--set", set,
		"--show-only", "templates/oauthclientpolicy-default.yaml").Output()
	require.NoError(t, err)
	s.cp.MustKubectl(t, hook, "apply", "-f", "-")
	// The binding matches every namespace: the tests after this one must not meet the policy.
	t.Cleanup(func() { _, _ = s.cp.Kubectl(nil, "delete", "-n", ns, "oauthclientpolicy/dp-latchkey-default") })

	s.cp.MustKubectl(t, nil, "wait", "-n", clientsNS, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=PolicyViolation", "--timeout=30s", "oauthclient/legacy")
	msg := s.cp.MustKubectl(t, nil, "get", "-n", clientsNS, "oauthclient/legacy", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}")
	assert.Equal(t, `OAuthClientPolicy `+ns+`/dp-latchkey-default: allowPasswordGrant does not allow "password"`, msg)
	require.Eventually(t, func() bool { return clientToken(t, s, srv, clientsNS, "legacy") == http.StatusUnauthorized }, 20*time.Second, 100*time.Millisecond)
	s.cp.MustKubectl(t, nil, "wait", "-n", ns, "--for=condition=Ready", "--timeout=30s", "oauthclientpolicy/dp-latchkey-default")

	fresh := strings.ReplaceAll(oauthClient("fresh", "grantTypes: [password]"), "payments", clientsNS)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		out, err := s.cp.Kubectl([]byte(fresh), "create", "--dry-run=server", "-f", "-")
		assert.Error(c, err)
		assert.Contains(c, out, `OAuthClientPolicy `+ns+`/dp-latchkey-default: allowPasswordGrant does not allow "password"`)
	}, 30*time.Second, 100*time.Millisecond)

	// A ProtectedResource of any namespace is held to the default policy's allowedAudiences.
	squat := "apiVersion: oauth.latchkey.dev/v1alpha1\nkind: ProtectedResource\nmetadata: {name: squat, namespace: " + clientsNS +
		"}\nspec: {audience: \"https://bank.example\"}\n"
	out, err := s.cp.Kubectl([]byte(squat), "create", "--dry-run=server", "-f", "-")
	require.Error(t, err, "created: %s", out)
	assert.Contains(t, out, `OAuthClientPolicy `+ns+`/dp-latchkey-default: allowedAudiences does not allow "https://bank.example"`)
	ok := strings.ReplaceAll(squat, "https://bank.example", "https://ok.example/api")
	out, err = s.cp.Kubectl([]byte(ok), "create", "--dry-run=server", "-f", "-")
	require.NoError(t, err, "%s", out)
}
