package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// serviceAccountReviewCache is the server's --service-account-review-cache in this suite.
const serviceAccountReviewCache = 2 * time.Second

// apiServerTokenCache bounds how long the API server itself keeps answering a TokenReview from
// its own cache of token authentications (10 s), plus a margin for a loaded machine.
const apiServerTokenCache = 15 * time.Second

// jwtBearer is the client_assertion_type of RFC 7523.
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const saNamespace = "workloads"

// saResources are the ServiceAccounts, the Pod a token is bound to, and the clients bound to
// the ServiceAccounts.
const saResources = `apiVersion: v1
kind: Namespace
metadata: {name: workloads}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: billing, namespace: workloads}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: reports, namespace: workloads}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: recreated, namespace: workloads}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: billing, namespace: workloads}
spec:
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: service_account_token
  serviceAccount: {name: billing}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: reports, namespace: workloads}
spec:
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: service_account_token
  serviceAccount: {name: reports}
  maxAssertionLifetime: 5m
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: recreated, namespace: workloads}
spec:
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: service_account_token
  serviceAccount: {name: recreated}
  lifetimes: {accessTokenOutlivesAssertion: true}
`

// pod returns a Pod of the ServiceAccount (never scheduled: envtest has no nodes, and a token
// may be bound to a Pod all the same).
func pod(name, serviceAccount string) string {
	return `apiVersion: v1
kind: Pod
metadata: {name: ` + name + `, namespace: workloads}
spec:
  serviceAccountName: ` + serviceAccount + `
  automountServiceAccountToken: false
  containers: [{name: app, image: registry.example/app:1}]
`
}

// serviceAccountToken asks the API server for a token of the ServiceAccount (TokenRequest),
// as the kubelet does for a projected volume.
func (s *suite) serviceAccountToken(t *testing.T, sa string, args ...string) string {
	t.Helper()
	return strings.TrimSpace(s.cp.MustKubectl(t, nil, append([]string{"create", "token", sa, "-n", saNamespace}, args...)...))
}

// assertionToken posts a client_credentials request with a client assertion from the loopback
// address from (each refusal from its own: failed client authentications are throttled per
// client and address) and returns the status and the JSON body.
func assertionToken(t *testing.T, from, tokenURL, clientID, assertion, assertionType string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {assertionType}, "client_assertion": {assertion}}
	if clientID != "" {
		form.Set("client_id", clientID)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := harness.ClientFrom(from).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", strings.Split(resp.Header.Get("Content-Type"), ";")[0], "body: %s", body)
	out := map[string]any{}
	require.NoError(t, json.Unmarshal(body, &out), "body: %s", body)
	return resp.StatusCode, out
}

// unverifiedExpiry reads a JWT's exp without verifying it.
func unverifiedExpiry(t *testing.T, tok string) time.Time {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	require.NoError(t, err)
	var c jwt.Claims
	require.NoError(t, parsed.UnsafeClaimsWithoutVerification(&c))
	require.NotNil(t, c.Expiry)
	return c.Expiry.Time()
}

// forge signs claims with the API server's own ServiceAccount key: tokens it would never issue
// today (a legacy Secret-based one, an expired one), signed exactly as its tokens are.
func (s *suite) forge(t *testing.T, claims map[string]any) string {
	t.Helper()
	data, err := s.cp.ServiceAccountSigningKey()
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	require.NotNil(t, block)
	var key crypto.Signer
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		key = k
	} else if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		key = k
	} else {
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		require.NoError(t, err)
		key = k.(crypto.Signer)
	}
	alg := jose.RS256
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		alg = jose.ES256
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, nil)
	require.NoError(t, err)
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	require.NoError(t, err)
	return tok
}

// waitRefused polls until the assertion is refused with invalid_client, for at most within.
func waitRefused(t *testing.T, from, tokenURL, clientID, assertion string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		status, body := assertionToken(t, from, tokenURL, clientID, assertion, jwtBearer)
		if status == http.StatusBadRequest && body["error"] == "invalid_client" {
			return
		}
		require.Equal(t, http.StatusOK, status, "only a success may come before the refusal: %v", body)
		require.False(t, time.Now().After(deadline), "still accepted after %s", within)
		time.Sleep(200 * time.Millisecond)
	}
}

func TestServiceAccountClients(t *testing.T) {
	s := env
	s.cp.MustKubectl(t, []byte(saResources+"---\n"+pod("billing-0", "billing")+"---\n"+pod("jwks-0", "billing")), "apply", "-f", "-")
	for _, name := range []string{"billing", "reports", "recreated"} {
		s.waitReady(t, saNamespace, name)
	}
	tokenURL := s.issuer + "/oauth2/token"
	const billingID = "billing." + saNamespace
	podToken := s.serviceAccountToken(t, "billing", "--audience", s.issuer, "--bound-object-kind", "Pod", "--bound-object-name", "billing-0")

	t.Run("a projected token bound to a Pod gets an access token that expires no later than it (golang.org/x/oauth2)", func(t *testing.T) {
		cfg := clientcredentials.Config{
			ClientID: billingID, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams,
			EndpointParams: url.Values{"client_assertion_type": {jwtBearer}, "client_assertion": {podToken}},
		}
		tok, err := cfg.Token(t.Context())
		require.NoError(t, err)
		claims := s.verify(t, tok.AccessToken)
		assert.Equal(t, billingID, claims["sub"])
		assert.Equal(t, billingID, claims["client_id"])
		exp := time.Unix(int64(claims["exp"].(float64)), 0)
		assert.False(t, exp.After(unverifiedExpiry(t, podToken)), "the access token outlives the assertion")
	})

	t.Run("the guide's Go client reads the token file anew for every token", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token")
		src := assertionSource{ctx: t.Context(), tokenURL: tokenURL, clientID: billingID, path: path}
		require.NoError(t, os.WriteFile(path, []byte(s.serviceAccountToken(t, "billing", "--audience", s.issuer)+"\n"), 0o600))
		first, err := src.Token()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, []byte("not a token"), 0o600))
		_, err = src.Token()
		require.Error(t, err, "the rewritten file is read")
		require.NoError(t, os.WriteFile(path, []byte(s.serviceAccountToken(t, "billing", "--audience", s.issuer)), 0o600))
		second, err := src.Token()
		require.NoError(t, err)
		assert.NotEqual(t, first.AccessToken, second.AccessToken)
		client := oauth2.NewClient(t.Context(), oauth2.ReuseTokenSource(nil, src))
		resp, err := client.Get(s.issuer + "/oauth2/userinfo") //nolint:noctx // the client carries the context
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.NotEmpty(t, resp.Request.Header.Get("Authorization"), "the client sends the access token")
	})

	t.Run("curl gets a token the same way", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		require.NoError(t, err, "curl is installed by .ci/run")
		out, err := exec.CommandContext(t.Context(), curl, "-sS", "-X", "POST", tokenURL, //nolint:gosec // test
			"-d", "grant_type=client_credentials", "-d", "client_id="+billingID,
			"-d", "client_assertion_type="+url.QueryEscape(jwtBearer), "-d", "client_assertion="+podToken).Output()
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.Unmarshal(out, &body), "body: %s", out)
		assert.NotEmpty(t, body["access_token"], "body: %s", out)
		assert.Equal(t, "Bearer", body["token_type"])
	})

	t.Run("a client may let its access tokens outlive the assertion", func(t *testing.T) {
		tok := s.serviceAccountToken(t, "recreated", "--audience", s.issuer, "--duration", "10m")
		status, body := assertionToken(t, "127.0.11.1", tokenURL, "recreated."+saNamespace, tok, jwtBearer)
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.InDelta(t, 3600, body["expires_in"], 5, "the server's default lifetime, not the assertion's 10 minutes")
	})

	apiServerAudience := s.serviceAccountToken(t, "billing")
	otherAudience := s.serviceAccountToken(t, "billing", "--audience", "https://elsewhere.example")
	twoAudiences := s.serviceAccountToken(t, "billing", "--audience", s.issuer, "--audience", "https://elsewhere.example")
	reportsToken := s.serviceAccountToken(t, "reports", "--audience", s.issuer)
	saIssuer := s.cp.ServiceAccountIssuer()
	now := time.Now()
	legacy := s.forge(t, map[string]any{ // the shape of a token of a kubernetes.io/service-account-token Secret
		"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:workloads:billing",
		"kubernetes.io/serviceaccount/namespace": saNamespace, "kubernetes.io/serviceaccount/service-account.name": "billing",
	})
	expired := s.forge(t, map[string]any{
		"iss": saIssuer, "sub": "system:serviceaccount:workloads:billing", "aud": []string{s.issuer},
		"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix(),
	})
	extended := s.forge(t, map[string]any{ // the kubelet's one-year extension for old clients
		"iss": saIssuer, "sub": "system:serviceaccount:workloads:billing", "aud": []string{s.issuer},
		"iat": now.Unix(), "exp": now.Add(365 * 24 * time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": saNamespace, "warnafter": now.Add(time.Hour).Unix(),
			"serviceaccount": map[string]any{"name": "billing", "uid": "x"}},
	})
	refusals := []struct {
		name, clientID, assertion, assertionType string
		status                                   int
		errorCode                                string
	}{
		{"a token with the API server's default audience is refused", billingID, apiServerAudience, jwtBearer, 400, "invalid_client"},
		{"a token for another audience is refused", billingID, otherAudience, jwtBearer, 400, "invalid_client"},
		{"a token valid for the issuer and another audience is refused", billingID, twoAudiences, jwtBearer, 400, "invalid_client"},
		{"a token without client_id names no client", "", podToken, jwtBearer, 400, "invalid_client"},
		{"another client's ServiceAccount token is refused", billingID, reportsToken, jwtBearer, 400, "invalid_client"},
		{"a legacy Secret-based token is refused", billingID, legacy, jwtBearer, 400, "invalid_client"},
		{"an expired token signed by the cluster's key is refused", billingID, expired, jwtBearer, 400, "invalid_client"},
		{"a token with the kubelet's one-year extension is refused", billingID, extended, jwtBearer, 400, "invalid_client"},
		{"a token living longer than the client's maxAssertionLifetime is refused", "reports." + saNamespace,
			s.serviceAccountToken(t, "reports", "--audience", s.issuer, "--duration", "10m"), jwtBearer, 400, "invalid_client"},
		{"an assertion that is not a JWT is refused", billingID, "not-a-jwt", jwtBearer, 400, "invalid_client"},
		{"another assertion type is refused", billingID, podToken, "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", 400, "invalid_client"},
	}
	for i, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			status, body := assertionToken(t, fmt.Sprintf("127.0.10.%d", i+1), tokenURL, tt.clientID, tt.assertion, tt.assertionType)
			assert.Equal(t, tt.status, status, "%v", body)
			assert.Equal(t, tt.errorCode, body["error"], "%v", body)
			assert.NotContains(t, body["error_description"], tt.assertion, "the description never quotes the assertion")
		})
	}

	t.Run("a client secret does not authenticate a ServiceAccount client", func(t *testing.T) {
		status, body := s.postToken(t, billingID, "anything", url.Values{"grant_type": {"client_credentials"}})
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, "invalid_client", body["error"])
	})

	t.Run("the client's status says it authenticates with its ServiceAccount", func(t *testing.T) {
		auth := s.cp.MustKubectl(t, nil, "get", "-n", saNamespace, "oauthclient", "billing", "-o", "jsonpath={.spec.tokenEndpointAuthMethod}")
		assert.Equal(t, "service_account_token", auth)
		assert.Empty(t, s.cp.MustKubectl(t, nil, "get", "-n", saNamespace, "oauthclient", "billing", "-o", "jsonpath={.status.secretName}"),
			"no Secret is generated for it")
	})

	// JWKS mode: another replica of the same issuer that verifies with the cluster's keys.
	jwksServer := s.startJWKSServer(t)
	jwksTokenURL := jwksServer.URL() + "/oauth2/token"
	jwksPodToken := s.serviceAccountToken(t, "billing", "--audience", s.issuer, "--bound-object-kind", "Pod", "--bound-object-name", "jwks-0")

	t.Run("JWKS mode verifies a projected token against the cluster's keys", func(t *testing.T) {
		status, body := assertionToken(t, "127.0.12.1", jwksTokenURL, billingID, jwksPodToken, jwtBearer)
		require.Equal(t, http.StatusOK, status, "%v", body)
		for i, tok := range []string{apiServerAudience, reportsToken, legacy, expired, extended} {
			status, body := assertionToken(t, fmt.Sprintf("127.0.13.%d", i+1), jwksTokenURL, billingID, tok, jwtBearer)
			assert.Equal(t, http.StatusBadRequest, status, "%v", body)
		}
	})

	t.Run("deleting the Pod stops its token within the review cache's lifetime", func(t *testing.T) {
		status, body := assertionToken(t, "127.0.14.1", tokenURL, billingID, podToken, jwtBearer)
		require.Equal(t, http.StatusOK, status, "%v", body)
		s.cp.MustKubectl(t, nil, "delete", "pod", "-n", saNamespace, "billing-0", "--wait=true")
		waitRefused(t, "127.0.14.1", tokenURL, billingID, podToken, serviceAccountReviewCache+apiServerTokenCache)
	})

	t.Run("in JWKS mode a deleted Pod's token stays valid until it expires (the documented trade-off)", func(t *testing.T) {
		s.cp.MustKubectl(t, nil, "delete", "pod", "-n", saNamespace, "jwks-0", "--wait=true")
		status, body := assertionToken(t, "127.0.15.1", jwksTokenURL, billingID, jwksPodToken, jwtBearer)
		assert.Equal(t, http.StatusOK, status, "%v", body)
		waitRefused(t, "127.0.15.2", tokenURL, billingID, jwksPodToken, serviceAccountReviewCache+apiServerTokenCache)
	})

	t.Run("re-creating the ServiceAccount stops the tokens of the old one", func(t *testing.T) {
		tok := s.serviceAccountToken(t, "recreated", "--audience", s.issuer)
		status, body := assertionToken(t, "127.0.16.1", tokenURL, "recreated."+saNamespace, tok, jwtBearer)
		require.Equal(t, http.StatusOK, status, "%v", body)
		s.cp.MustKubectl(t, nil, "delete", "serviceaccount", "-n", saNamespace, "recreated", "--wait=true")
		s.cp.MustKubectl(t, []byte("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: recreated, namespace: workloads}\n"), "apply", "-f", "-")
		waitRefused(t, "127.0.16.1", tokenURL, "recreated."+saNamespace, tok, serviceAccountReviewCache+apiServerTokenCache)
		fresh := s.serviceAccountToken(t, "recreated", "--audience", s.issuer)
		status, body = assertionToken(t, "127.0.16.2", tokenURL, "recreated."+saNamespace, fresh, jwtBearer)
		assert.Equal(t, http.StatusOK, status, "a token of the new ServiceAccount works: %v", body)
	})
}

// assertionSource is the client of docs/workloads-without-secrets.md: client_credentials tokens
// with the projected ServiceAccount token as the client assertion, reading the file anew for each
// token (the kubelet refreshes it).
type assertionSource struct {
	ctx                      context.Context
	tokenURL, clientID, path string
	scopes                   []string
}

func (s assertionSource) Token() (*oauth2.Token, error) {
	assertion, err := os.ReadFile(s.path)
	if err != nil {
		return nil, err
	}
	cfg := clientcredentials.Config{
		ClientID: s.clientID, TokenURL: s.tokenURL, Scopes: s.scopes,
		AuthStyle: oauth2.AuthStyleInParams, // client_id in the body, no secret
		EndpointParams: url.Values{
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {strings.TrimSpace(string(assertion))},
		},
	}
	return cfg.Token(s.ctx)
}

// startJWKSServer starts another replica of the suite's issuer that verifies ServiceAccount
// tokens against the cluster's JWKS; it stops when the test ends.
func (s *suite) startJWKSServer(t *testing.T) *harness.Server {
	t.Helper()
	srv, err := harness.StartServer(context.Background(), s.binary, filepath.Join(s.tmp, "latchkey-jwks.log"), 60*time.Second,
		func(harness.ServeAddrs) []string {
			return []string{"serve",
				"--kubeconfig", s.cp.Kubeconfig(),
				"--namespace", "latchkey-system",
				"--issuer", s.issuer, // a replica of the same issuer: the tokens' audience
				"--service-account-token-verification", "JWKS",
			}
		})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Stop(10 * time.Second) })
	return srv
}
