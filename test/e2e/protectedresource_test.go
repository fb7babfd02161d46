package e2e

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// protectedResourceFolder is an embedded-mode folder: a client, its Secret, two Scopes and two
// ProtectedResources, one that allows the client (and owns one of its scopes) and one that
// does not.
const protectedResourceFolder = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: gateway}
spec:
  clientID: gateway
  grantTypes: [client_credentials]
  scopes: ["orders:read", "admin:all"]
  secretPolicy: External
  secretRef: {name: gateway-secret, key: client-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: gateway-secret}
stringData: {client-secret: gateway-s3cret}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: Scope
metadata: {name: orders-read}
spec: {name: "orders:read", description: "Read orders"}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: Scope
metadata: {name: admin-all}
spec: {name: "admin:all", description: "Everything"}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: ProtectedResource
metadata: {name: orders}
spec:
  audience: https://orders.example.com
  scopes: ["orders:read"]
  allowedClients: [{name: gateway}]
  metadata: {resourceName: Orders API}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: ProtectedResource
metadata: {name: payroll}
spec:
  audience: https://payroll.example.com
  allowedClients: [{name: hr}]
`

// TestProtectedResourceFromAFolder runs the embedded mode on a folder holding
// ProtectedResources: golang.org/x/oauth2 gets a token for one (its audience, only the scopes
// it owns), curl is refused one that does not allow the client and reads the RFC 9728
// metadata.
func TestProtectedResourceFromAFolder(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "resources.yaml"), []byte(protectedResourceFolder), 0o600))
	srv, err := harness.StartServer(t.Context(), env.binary, filepath.Join(t.TempDir(), "latchkey.log"), 60*time.Second,
		func(a harness.ServeAddrs) []string {
			return []string{"serve", "--manifests", dir, "--issuer", a.URL()}
		})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Stop(10 * time.Second) })
	issuer := srv.URL()

	cc := clientcredentials.Config{ClientID: "gateway", ClientSecret: "gateway-s3cret", TokenURL: issuer + "/oauth2/token",
		Scopes: []string{"orders:read", "admin:all"}, EndpointParams: url.Values{"resource": {"https://orders.example.com"}}}
	tok, err := cc.Token(t.Context())
	require.NoError(t, err)
	claims := verifyWith(t, issuer, tok.AccessToken)
	assert.Equal(t, "https://orders.example.com", claims["aud"])
	assert.Equal(t, "orders:read", claims["scope"], "admin:all is not owned by the resource")
	assert.Equal(t, "orders:read", tok.Extra("scope"))

	cc.EndpointParams = url.Values{"resource": {"https://payroll.example.com"}}
	_, err = cc.Token(t.Context())
	var re *oauth2.RetrieveError
	require.True(t, errors.As(err, &re), "%v", err)
	assert.Equal(t, "invalid_target", re.ErrorCode)

	out, err := exec.CommandContext(t.Context(), "curl", "-sS", "-u", "gateway:gateway-s3cret", "-d", "grant_type=client_credentials",
		"--data-urlencode", "resource=https://payroll.example.com", issuer+"/oauth2/token").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), `"error":"invalid_target"`)

	out, err = exec.CommandContext(t.Context(), "curl", "-sS", "-i", issuer+"/.well-known/oauth-protected-resource/default/orders").CombinedOutput()
	require.NoError(t, err, "%s", out)
	head, body, _ := strings.Cut(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n\n")
	assert.Contains(t, head, "200")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &doc), "%s", out)
	assert.Equal(t, "https://orders.example.com", doc["resource"])
	assert.Equal(t, []any{issuer}, doc["authorization_servers"])
	assert.Equal(t, "Orders API", doc["resource_name"])
}

const clusterResource = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: checkout, namespace: e2e-pr, labels: {tier: frontend}}
spec:
  grantTypes: [client_credentials]
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: ProtectedResource
metadata: {name: inventory, namespace: e2e-pr}
spec:
  audience: https://inventory.example.com
  allowedClientSelector: {matchLabels: {tier: frontend}}
`

// TestProtectedResourceAppliedWithKubectl applies a ProtectedResource selecting a client by
// label: the client gets tokens for it once it is Ready, and its metadata ConfigMap appears.
func TestProtectedResourceAppliedWithKubectl(t *testing.T) {
	s := env
	s.cp.MustKubectl(t, nil, "create", "namespace", "e2e-pr")
	s.cp.MustKubectl(t, []byte(clusterResource), "apply", "-f", "-")
	s.waitReady(t, "e2e-pr", "checkout")
	s.cp.MustKubectl(t, nil, "wait", "-n", "e2e-pr", "--for=condition=Ready", "--timeout=30s", "protectedresource/inventory")
	id, secret := s.credentials(t, "e2e-pr", "checkout")
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: s.issuer + "/oauth2/token",
		EndpointParams: url.Values{"resource": {"https://inventory.example.com"}}}
	var tok *oauth2.Token
	require.Eventually(t, func() bool {
		var err error
		tok, err = cc.Token(t.Context())
		return err == nil
	}, 10*time.Second, 100*time.Millisecond)
	assert.Equal(t, "https://inventory.example.com", s.verify(t, tok.AccessToken)["aud"])
	doc := s.cp.MustKubectl(t, nil, "get", "-n", "e2e-pr", "configmap", "inventory-oauth-protected-resource",
		"-o", `jsonpath={.data.oauth-protected-resource\.json}`)
	assert.Contains(t, doc, `"resource":"https://inventory.example.com"`)
	table := s.cp.MustKubectl(t, nil, "get", "pr", "-n", "e2e-pr")
	assert.Regexp(t, `(?m)^NAME\s+AUDIENCE\s+CLIENTS\s+READY\s+SERVED\s+AGE$`, table)
}

// verifyWith checks a token's signature against the JWKS of another issuer (a server of the
// test's own) and returns its claims.
func verifyWith(t *testing.T, issuer, token string) map[string]any {
	t.Helper()
	s := *env
	s.issuer = issuer
	return s.verify(t, token)
}
