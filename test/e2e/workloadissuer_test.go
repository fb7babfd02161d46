package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/internal/harness/oidcissuer"
)

const (
	// ciSubject is the subject the CI job's tokens carry (a GitHub Actions-style sub).
	ciSubject = "repo:example/app:ref:refs/heads/main"
	// minRefreshInterval is the least time between two fetches of an issuer's keys for unknown
	// key IDs (assertion.DefaultMinRefreshInterval).
	minRefreshInterval = 10 * time.Second
)

// apply applies one object, given as a Go value, with kubectl (as JSON: a PEM CA bundle needs
// no YAML quoting).
func (s *suite) apply(t *testing.T, obj map[string]any) {
	t.Helper()
	data, err := json.Marshal(obj)
	require.NoError(t, err)
	s.cp.MustKubectl(t, data, "apply", "-f", "-")
}

// waitReason waits until the Ready condition of a resource has the reason.
func (s *suite) waitReason(t *testing.T, args []string, reason string) {
	t.Helper()
	get := append(append([]string{"get"}, args...), "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].reason}`)
	require.Eventually(t, func() bool {
		out, err := s.cp.Kubectl(nil, get...)
		return err == nil && strings.TrimSpace(out) == reason
	}, 30*time.Second, 100*time.Millisecond, "%v: Ready reason %s", args, reason)
}

// assertionToken gets a client_credentials token with golang.org/x/oauth2, authenticating with a
// JWT-bearer client assertion (RFC 7523 2.2) and the client ID in the body.
func (s *suite) assertionToken(ctx context.Context, id, assertion string) (*oauth2.Token, error) {
	cc := clientcredentials.Config{
		ClientID: id, TokenURL: s.issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{"client_assertion_type": {jwtBearer}, "client_assertion": {assertion}},
	}
	return cc.Token(ctx)
}

// postAssertion posts a client_credentials request with an assertion and returns the answer.
func (s *suite) postAssertion(t *testing.T, id, assertion string) apiResponse {
	t.Helper()
	res, err := s.postForm(t.Context(), "/oauth2/token", clientAuth{id: id}, url.Values{
		"grant_type": {"client_credentials"}, "client_assertion_type": {jwtBearer}, "client_assertion": {assertion},
	})
	require.NoError(t, err)
	return res
}

// waitFetchable waits until the issuer's keys may be fetched again for an unknown key ID: the
// last fetch (Latchkey's or the leader's) is older than the minimum interval.
func waitFetchable(t *testing.T, iss *oidcissuer.Issuer) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, last := iss.JWKSFetches()
		return time.Since(last) > minRefreshInterval+time.Second
	}, 3*minRefreshInterval, 100*time.Millisecond)
}

// TestWorkloadIssuerAuthenticatesItsSubjects: a CI system's tokens (a remote issuer whose keys
// the test serves over TLS, trusted through spec.caBundle) authenticate the OAuthClient bound to
// their subject, with golang.org/x/oauth2 and with curl; the issuer's key rotation is followed;
// a token of another subject or audience, one its claim rules refuse and a client of a namespace
// the issuer does not allow are invalid_client.
func TestWorkloadIssuerAuthenticatesItsSubjects(t *testing.T) {
	s := env
	ctx := t.Context()
	const ns, outside = "e2e-wli", "e2e-wli-outside"
	for _, n := range []string{ns, outside} {
		s.cp.MustKubectl(t, nil, "create", "namespace", n)
	}
	k1, k2, k3 := oidcissuer.NewKey(t, "k1"), oidcissuer.NewKey(t, "k2"), oidcissuer.NewKey(t, "k3")
	iss := oidcissuer.Start(t, k1)
	s.apply(t, map[string]any{
		"apiVersion": "oauth.latchkey.dev/v1alpha1", "kind": "WorkloadIssuer",
		"metadata": map[string]any{"name": "e2e-ci"},
		"spec": map[string]any{
			"issuer": iss.URL(), "caBundle": iss.CABundle(),
			"audiences": []string{s.issuer}, "allowedNamespaces": []string{ns},
			"claimValidationRules": []map[string]string{{"expression": "claims.env == 'prod'", "message": "only production jobs"}},
		},
	})
	t.Cleanup(func() { _, _ = s.cp.Kubectl(nil, "delete", "workloadissuer", "e2e-ci") })
	client := func(namespace, name, subject string) map[string]any {
		return map[string]any{
			"apiVersion": "oauth.latchkey.dev/v1alpha1", "kind": "OAuthClient",
			"metadata": map[string]any{"name": name, "namespace": namespace},
			"spec": map[string]any{
				"grantTypes":              []string{"client_credentials"},
				"tokenEndpointAuthMethod": "service_account_token",
				"workloadIdentity":        map[string]any{"issuerRef": map[string]string{"name": "e2e-ci"}, "subject": subject},
			},
		}
	}
	s.apply(t, client(ns, "deploy", ciSubject))
	s.apply(t, client(ns, "release", "repo:example/app:ref:refs/heads/release"))
	s.apply(t, client(outside, "intruder", ciSubject+":intruder"))

	s.cp.MustKubectl(t, nil, "wait", "--for=condition=Ready", "--timeout=30s", "workloadissuer/e2e-ci")
	assert.Equal(t, "1", s.cp.MustKubectl(t, nil, "get", "workloadissuer", "e2e-ci", "-o", "jsonpath={.status.keyCount}"))
	assert.Equal(t, iss.URL()+oidcissuer.JWKSPath, s.cp.MustKubectl(t, nil, "get", "workloadissuer", "e2e-ci", "-o", "jsonpath={.status.jwksURI}"))
	s.waitReady(t, ns, "deploy")
	s.waitReady(t, ns, "release")
	s.waitReason(t, []string{"-n", outside, "oauthclient", "intruder"}, "NamespaceNotAllowed")

	deployID, releaseID, intruderID := "deploy."+ns, "release."+ns, "intruder."+outside
	prod := map[string]any{"env": "prod"}
	aud := []string{s.issuer}

	t.Run("A token of the issuer for the client's subject gets an access token", func(t *testing.T) {
		assertion := iss.Token(t, k1, ciSubject, aud, prod)
		var tok *oauth2.Token
		require.Eventually(t, func() bool { // the registry takes in what the status already shows
			var err error
			tok, err = s.assertionToken(ctx, deployID, assertion)
			return err == nil
		}, 10*time.Second, 200*time.Millisecond)
		claims := s.verify(t, tok.AccessToken)
		assert.Equal(t, deployID, claims["client_id"])
		assert.Equal(t, deployID, claims["sub"])
		assert.LessOrEqual(t, tok.Expiry.Unix(), time.Now().Add(10*time.Minute+time.Minute).Unix(),
			"the access token expires no later than the assertion")
	})

	t.Run("The same works with curl", func(t *testing.T) {
		curl, err := harness.Tool("curl", "curl")
		require.NoError(t, err)
		out, err := exec.CommandContext(ctx, curl, "-s", s.issuer+"/oauth2/token", //nolint:gosec // the test's own arguments
			"-d", "grant_type=client_credentials", "-d", "client_id="+deployID,
			"--data-urlencode", "client_assertion_type="+jwtBearer,
			"-d", "client_assertion="+iss.Token(t, k1, ciSubject, aud, prod)).Output()
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.Unmarshal(out, &body), "%s", out)
		require.IsType(t, "", body["access_token"], "%s", out)
		assert.Equal(t, deployID, s.verify(t, body["access_token"].(string))["client_id"])
	})

	t.Run("The issuer's key rotation is followed", func(t *testing.T) {
		// A new key is published: a token it signed is accepted at once (an unknown key ID
		// fetches the keys, at most every 10 s).
		iss.Publish(k1, k2)
		waitFetchable(t, iss)
		_, err := s.assertionToken(ctx, deployID, iss.Token(t, k2, ciSubject, aud, prod))
		require.NoError(t, err, "a new key ID is fetched at once")

		// The old key is withdrawn: until the next fetch it is still trusted (nothing told
		// Latchkey), after it, refused.
		iss.Publish(k2, k3)
		_, err = s.assertionToken(ctx, deployID, iss.Token(t, k1, ciSubject, aud, prod))
		require.NoError(t, err, "the withdrawn key until the next refresh")
		waitFetchable(t, iss)
		_, err = s.assertionToken(ctx, deployID, iss.Token(t, k3, ciSubject, aud, prod))
		require.NoError(t, err, "the next key is fetched at once")
		res := s.postAssertion(t, deployID, iss.Token(t, k1, ciSubject, aud, prod))
		assert.Equal(t, http.StatusBadRequest, res.status, "%s", res)
		assert.Equal(t, "invalid_client", res.body["error"])
	})

	// Every refusal is invalid_client with a description that says why, in JSON, 400 (RFC 6749
	// 5.2: 401 is for clients that tried HTTP Basic; an assertion comes in the body). Each client
	// fails at most twice here: the brute-force protection counts failures per client and
	// address.
	for _, tc := range []struct {
		name, id, assertion, why string
	}{
		{"A token for another subject is refused", deployID, iss.Token(t, k3, "repo:example/other:ref:refs/heads/main", aud, prod), "subject"},
		{"A token for another audience is refused", releaseID,
			iss.Token(t, k3, "repo:example/app:ref:refs/heads/release", []string{"https://elsewhere.example"}, prod), "audience"},
		{"A token the claim rules refuse is refused", releaseID,
			iss.Token(t, k3, "repo:example/app:ref:refs/heads/release", aud, map[string]any{"env": "dev"}), "only production jobs"},
		{"A client of a namespace the issuer does not allow is refused", intruderID, iss.Token(t, k3, ciSubject+":intruder", aud, prod), "namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.postAssertion(t, tc.id, tc.assertion)
			assert.Equal(t, http.StatusBadRequest, res.status, "%s", res)
			assert.Equal(t, "invalid_client", res.body["error"])
			assert.Contains(t, res.body["error_description"], tc.why)
			assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
		})
	}
}
