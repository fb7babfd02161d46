package browser

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// The cluster whose ServiceAccount token the downstream presents upstream.
const (
	clusterIssuer  = "https://kubernetes.default.svc.cluster.local"
	latchkeySASub  = "system:serviceaccount:latchkey:latchkey"
	upstreamTokens = "upstream-token"
)

// workloadIssuerManifests are the upstream's WorkloadIssuer for the cluster, with its public key
// in a Secret.
func workloadIssuerManifests(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	require.NoError(t, err)
	return `---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: WorkloadIssuer
metadata: {name: cluster}
spec:
  issuer: ` + clusterIssuer + `
  jwksSecretRef: {namespace: default, name: cluster-jwks}
  audiences: [latchkey-upstream]
  allowedNamespaces: [default]
---
apiVersion: v1
kind: Secret
metadata: {name: cluster-jwks, namespace: default}
stringData:
  jwks.json: '` + string(jwks) + `'
`
}

// workloadClientManifest is the upstream's client for the downstream, authenticated by the
// cluster's token of Latchkey's ServiceAccount: no secret.
func workloadClientManifest(downstream string) string {
	return `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: downstream, namespace: default}
spec:
  clientID: ` + upstreamClientID + `
  type: Confidential
  displayName: Downstream Latchkey
  grantTypes: [authorization_code, refresh_token]
  redirectURIs: ["` + downstream + oauth2.UpstreamCallbackPath + `"]
  scopes: [openid, email, profile, groups]
  tokenEndpointAuthMethod: service_account_token
  workloadIdentity:
    issuerRef: {name: cluster}
    subject: ` + latchkeySASub + `
`
}

// clusterToken is a token of Latchkey's ServiceAccount for the upstream, valid for an hour.
func clusterToken(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	require.NoError(t, err)
	now := time.Now()
	payload, err := json.Marshal(map[string]any{
		"iss": clusterIssuer, "sub": latchkeySASub, "aud": []string{"latchkey-upstream"}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	require.NoError(t, err)
	jws, err := s.Sign(payload)
	require.NoError(t, err)
	out, err := jws.CompactSerialize()
	require.NoError(t, err)
	return out
}

// writeAtomically replaces the file as the kubelet does: a new file renamed over it.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path+".new", []byte(content), 0o600))
	require.NoError(t, os.Rename(path+".new", path))
}

func TestSignInThroughAnUpstreamWithWorkloadIdentityInChromium(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tokenFile := filepath.Join(t.TempDir(), upstreamTokens)
	writeAtomically(t, tokenFile, clusterToken(t, key)+"\n")
	e, _ := newUpstreamEnvWith(t, upstreamAuth{
		upstreamExtra: workloadIssuerManifests(t, key),
		client:        workloadClientManifest,
		downstream: func(m string) string {
			// No Secret: the provider's client authenticates with the token file.
			m = strings.Replace(m, "    secretRef: {namespace: latchkey, name: corp-sso}\n",
				"    workloadIdentity:\n      tokenPath: "+tokenFile+"\n      audience: latchkey-upstream\n", 1)
			return m[:strings.LastIndex(m, "---\napiVersion: v1\nkind: Secret")]
		},
		form: func() url.Values {
			raw, err := os.ReadFile(tokenFile)
			require.NoError(t, err)
			return url.Values{"grant_type": {"client_credentials"}, "client_id": {upstreamClientID},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {strings.TrimSpace(string(raw))}}
		},
	})

	t.Run("the upstream's user signs in with no client secret anywhere, and gets a verified ID token", func(t *testing.T) {
		ctx := e.tab(t)
		verifier := xoauth2.GenerateVerifier()
		authURL := e.oauth.AuthCodeURL("s-wl", xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("nonce", "n-wl"))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL), signInUpstream(staffUser)))
		waitLocation(ctx, t, e.issuer+oauth2.ConsentPath)
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
			chromedp.Click(chromedp.CSS(`button[value="allow"]`))))
		got := e.awaitCallback(t)
		require.Equal(t, "s-wl", got.Get("state"))

		cctx := oidc.ClientContext(context.WithValue(t.Context(), xoauth2.HTTPClient, e.hc), e.hc)
		tok, err := e.oauth.Exchange(cctx, got.Get("code"), xoauth2.VerifierOption(verifier))
		require.NoError(t, err)
		provider, err := oidc.NewProvider(cctx, e.issuer)
		require.NoError(t, err)
		raw, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(cctx, raw)
		require.NoError(t, err)
		var claims struct {
			Nonce             string `json:"nonce"`
			PreferredUsername string `json:"preferred_username"`
		}
		require.NoError(t, idt.Claims(&claims))
		assert.Equal(t, "n-wl", claims.Nonce)
		assert.Equal(t, staffUser, claims.PreferredUsername)
	})

	t.Run("a token file the upstream refuses is read at once and shown as a clear page", func(t *testing.T) {
		writeAtomically(t, tokenFile, "garbage.garbage.garbage\n")
		ctx := e.tab(t)
		authURL := e.oauth.AuthCodeURL("s-wl-bad", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL), signInUpstream(outsider)))
		waitLocation(ctx, t, e.issuer+oauth2.UpstreamCallbackPath)
		assert.Equal(t, "Sign-in failed", heading(ctx, t))
		body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		require.NoError(t, err)
		assert.Contains(t, body, "could not authenticate itself to the identity provider")
		assert.NotContains(t, body, "invalid_client")
		assert.NotContains(t, body, "garbage")
	})
}
