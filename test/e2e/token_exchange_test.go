package e2e

import (
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	exchangeNamespace = "e2e-exchange"
	exchangeGrant     = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessTokenType   = "urn:ietf:params:oauth:token-type:access_token"
	jwtTokenType      = "urn:ietf:params:oauth:token-type:jwt"
	ordersAudience    = "https://orders.e2e-exchange.example"
)

// exchangeResources are the parties of a token exchange: frontend gets alice's tokens (the
// subject tokens), actor acts with its own client_credentials token, gateway may exchange
// access tokens and ServiceAccount tokens into the orders resource, intruder may reach it
// but not exchange into it; the ServiceAccount batch is a workload subject.
const exchangeResources = `apiVersion: v1
kind: ServiceAccount
metadata: {name: batch, namespace: e2e-exchange}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: frontend, namespace: e2e-exchange}
spec:
  grantTypes: [password]
  scopes: [openid, "read:projects"]
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: actor, namespace: e2e-exchange}
spec:
  grantTypes: [client_credentials]
  scopes: ["read:projects"]
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: gateway, namespace: e2e-exchange}
spec:
  grantTypes: ["urn:ietf:params:oauth:grant-type:token-exchange"]
  scopes: ["read:projects", "write:projects"]
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: intruder, namespace: e2e-exchange}
spec:
  grantTypes: ["urn:ietf:params:oauth:grant-type:token-exchange"]
  scopes: ["read:projects"]
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: ProtectedResource
metadata: {name: orders, namespace: e2e-exchange}
spec:
  audience: https://orders.e2e-exchange.example
  scopes: ["read:projects", "write:projects"]
  allowedClients: [{name: gateway}, {name: intruder}]
  tokenExchange:
    allowedRequesters:
      - client: {name: gateway}
        subjectTokenSources: [AccessToken, ServiceAccountToken]
`

// TestTokenExchangeBetweenClientsOfAProtectedResource applies two requesting OAuthClients and a
// ProtectedResource with kubectl and exchanges a user's access token and a ServiceAccount
// token (TokenRequest API) for tokens of the resource, with curl and Go's HTTP client.
func TestTokenExchangeBetweenClientsOfAProtectedResource(t *testing.T) {
	s := env
	s.applySamples(t) // alice and the Scopes
	s.cp.MustKubectl(t, nil, "create", "namespace", exchangeNamespace)
	s.cp.MustKubectl(t, []byte(exchangeResources), "apply", "-f", "-")
	for _, name := range []string{"frontend", "actor", "gateway", "intruder"} {
		s.waitReady(t, exchangeNamespace, name)
	}
	s.cp.MustKubectl(t, nil, "wait", "-n", exchangeNamespace, "--for=condition=Ready", "--timeout=30s", "protectedresource/orders")
	frontendID, frontendSecret := s.credentials(t, exchangeNamespace, "frontend")
	actorID, actorSecret := s.credentials(t, exchangeNamespace, "actor")
	gatewayID, gatewaySecret := s.credentials(t, exchangeNamespace, "gateway")
	intruderID, intruderSecret := s.credentials(t, exchangeNamespace, "intruder")

	var status int
	var body map[string]any
	require.Eventually(t, func() bool {
		status, body = s.postToken(t, frontendID, frontendSecret, url.Values{"grant_type": {"password"},
			"username": {alice}, "password": {alicePassword}, "scope": {"openid read:projects"}})
		return status == http.StatusOK
	}, 15*time.Second, 200*time.Millisecond, "frontend gets alice's tokens: %v", body)
	subject := body["access_token"].(string)
	exchange := func(v url.Values) url.Values {
		v.Set("grant_type", exchangeGrant)
		if v.Get("subject_token") == "" {
			v.Set("subject_token", subject)
			v.Set("subject_token_type", accessTokenType)
		}
		if v.Get("resource") == "" {
			v.Set("resource", ordersAudience)
		}
		return v
	}

	// The ProtectedResource reaches the server's registry through its informers.
	require.Eventually(t, func() bool {
		status, body = s.postToken(t, gatewayID, gatewaySecret, exchange(url.Values{}))
		return status == http.StatusOK
	}, 15*time.Second, 200*time.Millisecond, "gateway exchanges alice's token: %v", body)

	t.Run("an allowed requester gets a token of the resource for alice, no wider than hers", func(t *testing.T) {
		assert.Equal(t, "urn:ietf:params:oauth:token-type:access_token", body["issued_token_type"])
		assert.Equal(t, "Bearer", body["token_type"])
		assert.NotContains(t, body, "refresh_token")
		claims := s.verify(t, body["access_token"].(string))
		assert.Equal(t, s.subjectOf(t, alice), claims["sub"])
		assert.Equal(t, gatewayID, claims["client_id"])
		assert.Equal(t, ordersAudience, claims["aud"])
		assert.Equal(t, "read:projects", claims["scope"], "alice's openid is not a scope gateway may have")
	})

	t.Run("the same exchange with curl", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), "curl", "-sS", "-u", url.QueryEscape(gatewayID)+":"+url.QueryEscape(gatewaySecret),
			"-d", "grant_type="+exchangeGrant, "--data-urlencode", "subject_token="+subject,
			"-d", "subject_token_type="+accessTokenType, "--data-urlencode", "audience="+ordersAudience,
			"-d", "scope=read:projects", s.issuer+"/oauth2/token").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), `"issued_token_type":"urn:ietf:params:oauth:token-type:access_token"`)
		assert.Contains(t, string(out), `"scope":"read:projects"`)
	})

	t.Run("a requester the resource does not list is refused", func(t *testing.T) {
		status, body := s.postToken(t, intruderID, intruderSecret, exchange(url.Values{}))
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_target", body["error"], "%v", body)
	})

	t.Run("widening the scope or the audience is refused", func(t *testing.T) {
		status, body := s.postToken(t, gatewayID, gatewaySecret, exchange(url.Values{"scope": {"write:projects"}}))
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_scope", body["error"], "alice's token has no write:projects: %v", body)
		status, body = s.postToken(t, gatewayID, gatewaySecret, exchange(url.Values{"resource": {"https://projects.example.com"}}))
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_target", body["error"], "the samples' projects-api does not allow gateway: %v", body)
	})

	var hop1 string
	t.Run("an actor token makes an act claim, and a second hop nests it", func(t *testing.T) {
		status, body := s.postToken(t, actorID, actorSecret, url.Values{"grant_type": {"client_credentials"}})
		require.Equal(t, http.StatusOK, status, "%v", body)
		actorToken := body["access_token"].(string)
		status, body = s.postToken(t, gatewayID, gatewaySecret, exchange(url.Values{
			"actor_token": {actorToken}, "actor_token_type": {accessTokenType}}))
		require.Equal(t, http.StatusOK, status, "%v", body)
		hop1 = body["access_token"].(string)
		assert.Equal(t, map[string]any{"sub": actorID}, s.verify(t, hop1)["act"])

		batch := s.batchToken(t)
		status, body = s.postToken(t, gatewayID, gatewaySecret, exchange(url.Values{
			"subject_token": {hop1}, "subject_token_type": {accessTokenType},
			"actor_token": {batch}, "actor_token_type": {jwtTokenType}}))
		require.Equal(t, http.StatusOK, status, "%v", body)
		claims := s.verify(t, body["access_token"].(string))
		assert.Equal(t, s.subjectOf(t, alice), claims["sub"])
		act, ok := claims["act"].(map[string]any)
		require.True(t, ok, "act: %v", claims["act"])
		assert.Equal(t, "system:serviceaccount:"+exchangeNamespace+":batch", act["sub"])
		assert.Equal(t, map[string]any{"sub": actorID}, act["act"])
	})

	t.Run("a ServiceAccount token from the TokenRequest API is a subject", func(t *testing.T) {
		batch := s.batchToken(t)
		status, body := s.postToken(t, gatewayID, gatewaySecret, exchange(url.Values{
			"subject_token": {batch}, "subject_token_type": {jwtTokenType}}))
		require.Equal(t, http.StatusOK, status, "%v", body)
		claims := s.verify(t, body["access_token"].(string))
		assert.Equal(t, "system:serviceaccount:"+exchangeNamespace+":batch", claims["sub"])
		assert.LessOrEqual(t, int64(claims["exp"].(float64)), unverifiedExpiry(t, batch).Unix())

		wrongAudience := strings.TrimSpace(s.cp.MustKubectl(t, nil, "create", "token", "batch", "-n", exchangeNamespace, "--duration", "10m"))
		status, body = s.postToken(t, gatewayID, gatewaySecret, exchange(url.Values{
			"subject_token": {wrongAudience}, "subject_token_type": {jwtTokenType}}))
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", body["error"], "a token for the API server is not for Latchkey: %v", body)
	})

	t.Run("revoking alice's token revokes the exchange of it", func(t *testing.T) {
		s.revoke(t, clientAuth{frontendID, frontendSecret}, subject, "access_token")
		status, body := s.postToken(t, gatewayID, gatewaySecret, exchange(url.Values{}))
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", body["error"], "%v", body)
	})
}

// batchToken asks the API server for a 10-minute token of the ServiceAccount batch for
// Latchkey (TokenRequest API).
func (s *suite) batchToken(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(s.cp.MustKubectl(t, nil, "create", "token", "batch", "-n", exchangeNamespace,
		"--audience", s.issuer, "--duration", "10m"))
}
