package browser

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
	"github.com/latchkey-dev/latchkey/server/password"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

// The upstream latchkey's client for the downstream, and its users.
const (
	upstreamClientID     = "downstream-idp"
	upstreamClientSecret = "upstream-client-secret-0123456789"
	upstreamProviderUID  = "3d0c8a8e-upstream-corp"
	staffUser            = "uma"
	outsider             = "rob"
)

// upstreamManifests are the upstream latchkey's resources: the downstream as a confidential
// client whose redirect URI is the downstream's upstream callback, uma (staff, dev) and rob
// (contractors), both with userPassword.
func upstreamManifests(downstream, hash string) string {
	user := func(name, email, display string, groups ...string) string {
		return fmt.Sprintf(`apiVersion: oauth.latchkey.dev/v1alpha1
kind: User
metadata: {name: %[1]s}
spec:
  username: %[1]s
  email: %[2]s
  emailVerified: true
  displayName: %[3]s
  groups: ["%[4]s"]
  passwordSecretRef: {namespace: default, name: user-passwords, key: hash}
---
`, name, email, display, strings.Join(groups, `", "`))
	}
	return user(staffUser, "uma@corp.example", "Uma Upstream", "staff", "dev") +
		user(outsider, "rob@corp.example", "Rob Outsider", "contractors") + `apiVersion: oauth.latchkey.dev/v1alpha1
kind: Scope
metadata: {name: groups}
spec: {name: groups, description: "Your groups", claims: [groups]}
---
apiVersion: v1
kind: Secret
metadata: {name: user-passwords, namespace: default}
stringData:
  hash: "` + hash + `"
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: downstream, namespace: default}
spec:
  clientID: ` + upstreamClientID + `
  type: Confidential
  displayName: Downstream Latchkey
  grantTypes: [authorization_code]
  redirectURIs: ["` + downstream + oauth2.UpstreamCallbackPath + `"]
  scopes: [openid, email, profile, groups]
  tokenEndpointAuthMethod: client_secret_basic
  secretPolicy: External
  secretRef: {name: downstream-secret, key: client-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: downstream-secret, namespace: default}
stringData:
  client-secret: "` + upstreamClientSecret + `"
`
}

// newUpstreamEnv starts chromium, the client's callback, the downstream latchkey in this
// process (no local users, one upstream provider: its login page goes straight upstream) and
// the upstream latchkey binary in embedded mode.
func newUpstreamEnv(t *testing.T) *env {
	t.Helper()
	e := newClientEnv(t)
	redirectURI := e.callback.URL + "/callback"
	e.server = httptest.NewServer(nil)
	t.Cleanup(e.server.Close)
	e.issuer, e.hc = e.server.URL, e.server.Client()

	dir := t.TempDir()
	manifests := filepath.Join(dir, "manifests")
	require.NoError(t, os.Mkdir(manifests, 0o700))
	hash, err := password.HashArgon2id(userPassword)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(manifests, "upstream.yaml"), []byte(upstreamManifests(e.server.URL, hash)), 0o600))
	binary, err := harness.BuildBinary(dir)
	require.NoError(t, err)
	up, err := harness.StartServer(t.Context(), binary, filepath.Join(dir, "upstream.log"), 60*time.Second,
		func(harness.ServeAddrs) []string { return []string{"serve", "--manifests", manifests} })
	require.NoError(t, err)
	t.Cleanup(func() {
		up.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("upstream latchkey log (tail):\n%s", up.Tail(8192))
		}
	})

	e.reg = registry.New()
	e.reg.PutScope("groups", registry.Scope{Name: "groups", Description: "Your groups", Claims: []string{"groups"}})
	e.reg.PutClient(registry.Client{
		Source: "web/" + clientID, Namespace: "web", ID: clientID, Type: registry.Public, AuthMethod: "none",
		DisplayName: "Project Tracker", GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{redirectURI}, Scopes: []string{"openid", "profile", "email", "groups"},
	})
	e.reg.PutUpstreamOIDC(registry.UpstreamOIDC{
		Name: "corp", UID: upstreamProviderUID, Generation: 1, DisplayName: "Corp SSO",
		Issuer: up.URL(), ClientID: upstreamClientID, ClientSecret: upstreamClientSecret,
		Scopes: []string{"openid", "email", "profile", "groups"},
		Claims: registry.ClaimMappings{
			Username: "claims.preferred_username",
			Groups:   "claims.groups.map(g, 'corp:' + g)",
		},
		AllowPolicy: "'corp:staff' in user.groups",
	})
	h, err := handler.New(handler.Config{Issuer: e.server.URL, Registry: e.reg, Keys: newKeyring(t), Store: memory.New()})
	require.NoError(t, err)
	e.server.Config.Handler = h
	e.oauth = &xoauth2.Config{
		ClientID: clientID, RedirectURL: redirectURI, Scopes: []string{"openid", "email", "profile", "groups"},
		Endpoint: xoauth2.Endpoint{
			AuthURL: e.server.URL + oauth2.AuthorizePath, TokenURL: e.server.URL + oauth2.TokenPath,
			AuthStyle: xoauth2.AuthStyleInParams,
		},
	}
	return e
}

// signInUpstream signs the user in on the upstream's login page and allows the downstream there.
func signInUpstream(user string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), userPassword),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
	)
}

// waitLocation waits until the tab's location starts with prefix.
func waitLocation(ctx context.Context, t *testing.T, prefix string) {
	t.Helper()
	var loc string
	var err error
	ok := assert.Eventually(t, func() bool {
		loc, err = chromedp.Run(ctx, chromedp.Location())
		return err == nil && strings.HasPrefix(loc, prefix)
	}, stepTimeout, 50*time.Millisecond)
	if !ok {
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("waiting for %s; at %s (%v), showing: %s", prefix, loc, err, body)
	}
}

func TestSignInThroughAnUpstreamLatchkeyInChromium(t *testing.T) {
	e := newUpstreamEnv(t)

	t.Run("the upstream's user signs in, consents twice and gets a verified ID token with the mapped claims", func(t *testing.T) {
		ctx := e.tab(t)
		verifier := xoauth2.GenerateVerifier()
		authURL := e.oauth.AuthCodeURL("s-up", xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("nonce", "n-up"))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL), signInUpstream(staffUser)))
		// Back at the downstream: its own consent page, then the client.
		waitLocation(ctx, t, e.issuer+oauth2.ConsentPath)
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`))))
		e.screenshots(ctx, t, "upstream-downstream-consent")
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[value="allow"]`))))
		got := e.awaitCallback(t)
		require.Equal(t, "s-up", got.Get("state"))

		cctx := oidc.ClientContext(context.WithValue(t.Context(), xoauth2.HTTPClient, e.hc), e.hc)
		tok, err := e.oauth.Exchange(cctx, got.Get("code"), xoauth2.VerifierOption(verifier))
		require.NoError(t, err)
		raw, _ := tok.Extra("id_token").(string)
		provider, err := oidc.NewProvider(cctx, e.issuer)
		require.NoError(t, err)
		idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(cctx, raw)
		require.NoError(t, err)
		var claims struct {
			Nonce             string   `json:"nonce"`
			PreferredUsername string   `json:"preferred_username"`
			Email             string   `json:"email"`
			EmailVerified     bool     `json:"email_verified"`
			Name              string   `json:"name"`
			Groups            []string `json:"groups"`
		}
		require.NoError(t, idt.Claims(&claims))
		assert.Equal(t, "n-up", claims.Nonce)
		assert.Equal(t, staffUser, claims.PreferredUsername)
		assert.Equal(t, "uma@corp.example", claims.Email)
		assert.True(t, claims.EmailVerified)
		assert.Equal(t, "Uma Upstream", claims.Name)
		assert.Equal(t, []string{"corp:staff", "corp:dev"}, claims.Groups)
		assert.True(t, strings.HasPrefix(idt.Subject, registry.ExternalSubjectPrefix), "sub %q", idt.Subject)
		assert.NotContains(t, idt.Subject, staffUser)

		ui, err := provider.UserInfo(cctx, xoauth2.StaticTokenSource(tok))
		require.NoError(t, err)
		assert.Equal(t, idt.Subject, ui.Subject)
		assert.Equal(t, "uma@corp.example", ui.Email)
	})

	t.Run("a user the allow policy refuses gets an error page, and replaying the callback another", func(t *testing.T) {
		ctx := e.tab(t)
		authURL := e.oauth.AuthCodeURL("s-refused", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL), signInUpstream(outsider)))
		waitLocation(ctx, t, e.issuer+oauth2.UpstreamCallbackPath)
		assert.Equal(t, "Sign-in failed", heading(ctx, t))
		body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		require.NoError(t, err)
		assert.Contains(t, body, "not allowed to sign in here")
		assert.NotContains(t, body, "rob@corp.example", "the page dumps nothing of the upstream's answer")
		e.screenshots(ctx, t, "upstream-refused")

		callback, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(callback, e.issuer+oauth2.UpstreamCallbackPath), "on the callback: %s", callback)
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(callback)))
		assert.Equal(t, "Sign-in request expired", heading(ctx, t))
		body, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		require.NoError(t, err)
		assert.Contains(t, body, "was already used")
		select {
		case q := <-e.callbacks:
			t.Fatalf("the client was called: %v", q)
		default:
		}
	})

	t.Run("a callback with an unknown state is an error page, never a redirect", func(t *testing.T) {
		resp, err := e.hc.Get(e.issuer + oauth2.UpstreamCallbackPath + "?state=" + strings.Repeat("A", 43) + "&code=x")
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	})
}
