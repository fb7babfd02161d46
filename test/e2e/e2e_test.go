package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/internal/harness/controlplane"
)

// suite is the control plane and the latchkey process shared by the tests of this package.
type suite struct {
	root   string
	cp     *controlplane.ControlPlane
	issuer string
	// regToken is the initial access token of dynamic client registration (RFC 7591), and
	// regNamespace the namespace registered OAuthClients are created in.
	regToken     string
	regNamespace string
	// tmp and binary are the suite's temporary directory and the latchkey binary, for tests
	// that start a server of their own.
	tmp, binary string
}

var env *suite //nolint:gochecknoglobals // one control plane per package, set up in TestMain

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	fail := func(what string, err error) int { fmt.Fprintf(os.Stderr, "e2e: %s: %v\n", what, err); return 1 }
	root, err := harness.Root()
	if err != nil {
		return fail("repository", err)
	}
	tmp, err := os.MkdirTemp("", "latchkey-e2e-")
	if err != nil {
		return fail("temporary directory", err)
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // best effort at exit
	cp, err := controlplane.Start(controlplane.Options{Kubeconfig: filepath.Join(tmp, "kubeconfig"), User: "e2e-admin"})
	if err != nil {
		return fail("control plane", err)
	}
	defer cp.Stop() //nolint:errcheck // best effort at exit
	binary, err := harness.BuildBinary(tmp)
	if err != nil {
		return fail("build", err)
	}
	s := &suite{root: root, cp: cp, regToken: "e2e-initial-" + rand.Text(), regNamespace: "e2e-registered", tmp: tmp, binary: binary}
	srv, err := s.startServer(tmp, binary)
	if err != nil {
		return fail("start latchkey", err)
	}
	defer func() {
		srv.Stop(10 * time.Second)
		if os.Getenv("E2E_SHOW_LOG") != "" {
			fmt.Fprint(os.Stderr, srv.Log())
		}
	}()
	env = s
	return m.Run()
}

// startServer runs the built binary as the operator and waits until it is ready.
func (s *suite) startServer(tmp, binary string) (*harness.Server, error) {
	for _, ns := range []string{"latchkey-system", s.regNamespace} {
		if out, err := s.cp.Kubectl(nil, "create", "namespace", ns); err != nil {
			return nil, fmt.Errorf("create namespace: %w: %s", err, out)
		}
	}
	tokenFile := filepath.Join(tmp, "registration-tokens")
	// The token may register machine clients reading projects, nothing else.
	tokens := "# initial access tokens, one a line\n" + s.regToken + " scopes=read:projects grants=client_credentials\n"
	if err := os.WriteFile(tokenFile, []byte(tokens), 0o600); err != nil {
		return nil, err
	}
	srv, err := harness.StartServer(context.Background(), binary, filepath.Join(tmp, "latchkey.log"), 60*time.Second,
		func(a harness.ServeAddrs) []string {
			return []string{"serve",
				"--kubeconfig", s.cp.Kubeconfig(),
				"--namespace", "latchkey-system",
				"--issuer", a.URL(),
				"--registration-initial-token-file", tokenFile,
				"--registration-namespace", s.regNamespace,
				// A review is reused for 2 s (30 s by default), so that the tests see a deleted
				// Pod's token refused quickly.
				"--service-account-review-cache", serviceAccountReviewCache.String(),
			}
		})
	if err != nil {
		return nil, err
	}
	s.issuer = srv.URL()
	return srv, nil
}

// waitReady waits for an OAuthClient's Ready condition to become True.
func (s *suite) waitReady(t *testing.T, ns, name string) {
	t.Helper()
	s.cp.MustKubectl(t, nil, "wait", "-n", ns, "--for=condition=Ready", "--timeout=30s", "oauthclient/"+name)
}

// credentials reads the client ID from an OAuthClient's status and its secret from the Secret
// the status names, as a workload mounting the Secret would.
func (s *suite) credentials(t *testing.T, ns, name string) (id, secret string) {
	t.Helper()
	id = s.cp.MustKubectl(t, nil, "get", "-n", ns, "oauthclient", name, "-o", "jsonpath={.status.clientID}")
	secretName := s.cp.MustKubectl(t, nil, "get", "-n", ns, "oauthclient", name, "-o", "jsonpath={.status.secretName}")
	key := s.cp.MustKubectl(t, nil, "get", "-n", ns, "oauthclient", name, "-o", "jsonpath={.spec.secretRef.key}")
	if key == "" {
		key = "client-secret"
	}
	enc := s.cp.MustKubectl(t, nil, "get", "-n", ns, "secret", secretName, "-o", "jsonpath={.data."+strings.ReplaceAll(key, ".", `\.`)+"}")
	raw, err := base64.StdEncoding.DecodeString(enc)
	require.NoError(t, err)
	require.NotEmpty(t, id)
	require.NotEmpty(t, raw)
	return id, string(raw)
}

// jwks fetches the published key set.
func (s *suite) jwks(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(s.issuer + "/.well-known/jwks.json") //nolint:noctx // test
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var set jose.JSONWebKeySet
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	require.NotEmpty(t, set.Keys)
	return set
}

// verify checks an access token's signature against the JWKS and returns its claims.
func (s *suite) verify(t *testing.T, token string) map[string]any {
	t.Helper()
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	require.NoError(t, err)
	require.Len(t, parsed.Headers, 1)
	require.Equal(t, "at+jwt", parsed.Headers[0].ExtraHeaders[jose.HeaderType])
	set := s.jwks(t)
	keys := set.Key(parsed.Headers[0].KeyID)
	require.Len(t, keys, 1, "kid %s must be published", parsed.Headers[0].KeyID)
	claims := map[string]any{}
	var std jwt.Claims
	require.NoError(t, parsed.Claims(keys[0].Key, &claims, &std))
	require.NoError(t, std.ValidateWithLeeway(jwt.Expected{Issuer: s.issuer, Time: time.Now()}, time.Minute))
	return claims
}

func (s *suite) postToken(t *testing.T, id, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", strings.Split(resp.Header.Get("Content-Type"), ";")[0], "body: %s", body)
	out := map[string]any{}
	require.NoError(t, json.Unmarshal(body, &out), "body: %s", body)
	return resp.StatusCode, out
}

// TestSamplesApplyAndIssueTokens applies config/samples with kubectl, waits for every sample
// OAuthClient to be Ready, and gets a verified token for each client_credentials client.
func TestSamplesApplyAndIssueTokens(t *testing.T) {
	s := env
	s.cp.MustKubectl(t, nil, "apply", "-f", filepath.Join(s.root, "config", "samples"))
	out := s.cp.MustKubectl(t, nil, "get", "oauthclients", "-A", "-o", "json")
	var list struct {
		Items []struct {
			Metadata struct{ Name, Namespace string }
			Spec     struct {
				GrantTypes []string `json:"grantTypes"`
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.NotEmpty(t, list.Items, "the samples must hold OAuthClients")
	issued := 0
	for _, it := range list.Items {
		s.waitReady(t, it.Metadata.Namespace, it.Metadata.Name)
		if !slices.Contains(it.Spec.GrantTypes, "client_credentials") {
			continue
		}
		id, secret := s.credentials(t, it.Metadata.Namespace, it.Metadata.Name)
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: s.issuer + "/oauth2/token"}
		tok, err := cc.Token(t.Context())
		require.NoError(t, err, "client %s", id)
		require.Equal(t, "Bearer", tok.TokenType)
		require.Empty(t, tok.RefreshToken, "client_credentials never returns a refresh token")
		claims := s.verify(t, tok.AccessToken)
		require.Equal(t, id, claims["client_id"])
		require.Equal(t, id, claims["sub"])
		issued++
	}
	require.Positive(t, issued, "the samples must hold a client_credentials client")
	// Every kind says Ready in its READY column (REASON with -o wide); the samples' clients list
	// only scopes that exist.
	samples := func(kinds ...string) []string {
		var args []string
		for _, k := range kinds {
			args = append(args, "-f", filepath.Join(s.root, "config", "samples", "oauth_v1alpha1_"+k+".yaml"))
		}
		return args
	}
	s.cp.MustKubectl(t, nil, append([]string{"wait", "--for=condition=Ready", "--timeout=60s"}, samples("scope", "user")...)...)
	table := s.cp.MustKubectl(t, nil, append([]string{"get", "-o", "wide"}, samples("scope", "user")...)...)
	assert.Regexp(t, `(?m)^NAME\s+SCOPE\s+DEFAULT\s+READY\s+REASON\s+SERVED\s+AGE$`, table)
	assert.Regexp(t, `(?m)^NAME\s+USERNAME\s+EMAIL\s+READY\s+REASON\s+SERVED\s+AGE$`, table)
	assert.Regexp(t, `(?m)^user\.oauth\.latchkey\.dev/alice\s+alice\s+\S+\s+True\s+Ready\s`, table)
	s.cp.MustKubectl(t, nil, append([]string{"wait", "--for=condition=ScopesResolved", "--timeout=60s"}, samples("oauthclient")...)...)
	// docs/gitops.md: waiting for a generation to be observed.
	s.cp.MustKubectl(t, nil, append([]string{"wait", "--for=jsonpath={.status.observedGeneration}=1", "--timeout=60s"}, samples("oauthclient", "scope", "user")...)...)
	// The samples' scopes are in discovery.
	resp, err := http.Get(s.issuer + "/.well-known/openid-configuration") //nolint:noctx // test
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	var meta map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&meta))
	require.Equal(t, s.issuer, meta["issuer"])
	require.Contains(t, meta["scopes_supported"], "read:projects")
}

const generatedClient = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: reports, namespace: e2e-apply}
spec:
  grantTypes: [client_credentials]
  scopes: [e2e:read]
  audiences: ["https://reports.example.com"]
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: Scope
metadata: {name: e2e-read}
spec: {name: "e2e:read", description: "Read reports"}
`

// TestApplyThenDelete is the kubectl round trip: apply a client, get a token within seconds,
// delete it, and the same request gets invalid_client.
func TestApplyThenDelete(t *testing.T) {
	s := env
	s.cp.MustKubectl(t, nil, "create", "namespace", "e2e-apply")
	applied := time.Now()
	s.cp.MustKubectl(t, []byte(generatedClient), "apply", "-f", "-")
	s.waitReady(t, "e2e-apply", "reports")
	id, secret := s.credentials(t, "e2e-apply", "reports")
	require.Equal(t, "reports.e2e-apply", id)

	var status int
	var body map[string]any
	require.Eventually(t, func() bool {
		status, body = s.postToken(t, id, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"e2e:read"}})
		return status == http.StatusOK
	}, 10*time.Second, 100*time.Millisecond)
	t.Logf("token issued %s after kubectl apply", time.Since(applied).Round(time.Millisecond))
	claims := s.verify(t, body["access_token"].(string))
	require.Equal(t, "e2e:read", claims["scope"])
	require.Equal(t, "https://reports.example.com", claims["aud"])

	s.cp.MustKubectl(t, nil, "delete", "-n", "e2e-apply", "oauthclient", "reports", "--wait=true")
	require.Eventually(t, func() bool {
		status, body = s.postToken(t, id, secret, url.Values{"grant_type": {"client_credentials"}})
		return status == http.StatusUnauthorized
	}, 10*time.Second, 100*time.Millisecond)
	require.Equal(t, "invalid_client", body["error"])
}

// TestAPIServerRefusesInvalidClients checks the CRD's schema and CEL rules as kubectl users meet
// them: the API server refuses each manifest with a message naming the rule.
func TestAPIServerRefusesInvalidClients(t *testing.T) {
	s := env
	s.cp.MustKubectl(t, nil, "create", "namespace", "e2e-invalid")
	client := func(spec string) []byte {
		return []byte("apiVersion: oauth.latchkey.dev/v1alpha1\nkind: OAuthClient\nmetadata: {name: bad, namespace: e2e-invalid}\nspec:\n" + spec)
	}
	tests := []struct {
		name, spec, message string
	}{
		{"a public client may not use client_credentials", "  type: Public\n  grantTypes: [client_credentials]\n", "must not use client_credentials"},
		{"a public client may not use token exchange", "  type: Public\n  grantTypes: [\"urn:ietf:params:oauth:grant-type:token-exchange\"]\n",
			"must not use token exchange"},
		{"authorization_code needs a redirect URI", "  grantTypes: [authorization_code]\n", "needs at least one redirectURI"},
		{"a look-alike loopback host is refused", "  grantTypes: [authorization_code]\n  redirectURIs: [\"http://localhost.evil.example/cb\"]\n", "redirect URIs must be https"},
		{"a javascript: redirect is refused", "  grantTypes: [authorization_code]\n  redirectURIs: [\"javascript:alert(1)\"]\n", "redirect URIs must be https"},
		{"a redirect with a fragment is refused", "  grantTypes: [authorization_code]\n  redirectURIs: [\"https://app.example/cb#x\"]\n", "must not contain a fragment"},
		{"an unknown grant type is refused", "  grantTypes: [implicit]\n", "Unsupported value"},
		{"External needs a secretRef", "  grantTypes: [client_credentials]\n  secretPolicy: External\n", "External needs secretRef"},
		{"service_account_token needs a ServiceAccount or a workload identity",
			"  grantTypes: [client_credentials]\n  tokenEndpointAuthMethod: service_account_token\n", "needs exactly one of serviceAccount and workloadIdentity"},
		{"a ServiceAccount binding needs the service_account_token method",
			"  grantTypes: [client_credentials]\n  serviceAccount: {name: billing}\n", "need tokenEndpointAuthMethod service_account_token"},
		{"a ServiceAccount client has no secret",
			"  grantTypes: [client_credentials]\n  tokenEndpointAuthMethod: service_account_token\n  serviceAccount: {name: billing}\n  secretRef: {name: s}\n",
			"has no client secret"},
		{"a ServiceAccount and a workload identity at once are refused",
			"  grantTypes: [client_credentials]\n  tokenEndpointAuthMethod: service_account_token\n  serviceAccount: {name: billing}\n  workloadIdentity: {issuerRef: {name: ci}, subject: x}\n",
			"exactly one of serviceAccount and workloadIdentity"},
		{"private_key_jwt needs one source of keys", "  grantTypes: [client_credentials]\n  tokenEndpointAuthMethod: private_key_jwt\n", "exactly one source of public keys"},
		{"private_key_jwt with two sources of keys is refused",
			"  grantTypes: [client_credentials]\n  tokenEndpointAuthMethod: private_key_jwt\n  jwksURI: https://keys.example/jwks\n  keyPolicy: Generate\n",
			"exactly one source of public keys"},
		{"a jwksURI needs private_key_jwt", "  grantTypes: [client_credentials]\n  jwksURI: https://keys.example/jwks\n", "need tokenEndpointAuthMethod private_key_jwt"},
		{"a jwksURI must be https",
			"  grantTypes: [client_credentials]\n  tokenEndpointAuthMethod: private_key_jwt\n  jwksURI: http://keys.example/jwks\n", "jwksURI"},
		{"an inline EC key needs its coordinates",
			"  grantTypes: [client_credentials]\n  tokenEndpointAuthMethod: private_key_jwt\n  jwks: {keys: [{kty: EC, crv: P-256, x: abc}]}\n", "an EC key needs crv, x and y"},
		{"a grace period over 30 days is refused",
			"  grantTypes: [client_credentials]\n  secretRotation: {gracePeriod: 800h}\n", "gracePeriod must be between 0s and 720h"},
		{"maxAssertionLifetime is for the assertion methods",
			"  grantTypes: [client_credentials]\n  maxAssertionLifetime: 10m\n", "maxAssertionLifetime is for the assertion methods"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := s.cp.Kubectl(client(tt.spec), "apply", "-f", "-")
			require.Error(t, err, "the API server must refuse it: %s", out)
			assert.Contains(t, out, tt.message)
		})
	}
	t.Run("the client ID is immutable", func(t *testing.T) {
		s.cp.MustKubectl(t, client("  clientID: first\n  grantTypes: [client_credentials]\n"), "apply", "-f", "-")
		out, err := s.cp.Kubectl(client("  clientID: second\n  grantTypes: [client_credentials]\n"), "apply", "-f", "-")
		require.Error(t, err, out)
		assert.Contains(t, out, "clientID is immutable")
	})
}

// TestAPIServerTakesLifetimesAsSecondsOrDurations checks the CEL rules of spec.lifetimes on the
// API server: integers are seconds, strings are durations, both within the same bounds.
func TestAPIServerTakesLifetimesAsSecondsOrDurations(t *testing.T) {
	s := env
	s.cp.MustKubectl(t, nil, "create", "namespace", "e2e-lifetimes")
	client := func(lifetimes string) []byte {
		return []byte("apiVersion: oauth.latchkey.dev/v1alpha1\nkind: OAuthClient\nmetadata: {name: lifetimes, namespace: e2e-lifetimes}\n" +
			"spec:\n  grantTypes: [client_credentials]\n  lifetimes: " + lifetimes + "\n")
	}
	tests := []struct {
		name, lifetimes, refusal string
	}{
		{"integer seconds are accepted", "{accessToken: 3600, refreshToken: 31536000, idToken: 86400, authorizationCode: 1}", ""},
		{"duration strings are accepted", "{accessToken: 30m, refreshToken: 8760h, idToken: 1h30m, authorizationCode: 1h}", ""},
		{"a sub-second precision duration of at least a second is accepted", "{accessToken: 1.5s}", ""},
		{"too many seconds are refused", "{accessToken: 86401}", "accessToken must be integer seconds from 1 to 86400 or a duration from 1s to 24h"},
		{"zero seconds are refused", "{idToken: 0}", "idToken must be integer seconds from 1 to 86400"},
		{"too long a duration is refused", "{refreshToken: 8761h}", "refreshToken must be integer seconds from 1 to 31536000 or a duration from 1s to 8760h"},
		{"too short a duration is refused", "{authorizationCode: 500ms}", "authorizationCode must be integer seconds from 1 to 3600"},
		{"a negative duration is refused", "{accessToken: -1h}", "accessToken must be"},
		{"a quoted number is refused", `{accessToken: "3600"}`, "accessToken must be"},
		{"a day unit is refused", "{refreshToken: 30d}", "refreshToken must be"},
		{"a word is refused", "{accessToken: forever}", "accessToken must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := s.cp.Kubectl(client(tt.lifetimes), "apply", "--dry-run=server", "-f", "-")
			if tt.refusal == "" {
				require.NoError(t, err, out)
				return
			}
			require.Error(t, err, "the API server must refuse it: %s", out)
			assert.Contains(t, out, tt.refusal)
		})
	}
}
