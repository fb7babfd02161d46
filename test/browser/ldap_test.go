package browser

import (
	"context"
	"net/http"
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
	"github.com/latchkey-dev/latchkey/server/password"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// The directory's user of the LDAP test (a local User alice exists too, so the login form
// offers a choice).
const (
	directoryUser     = "dora"
	directoryPassword = "dora's directory password"
)

// ldapManifests are the embedded server's resources: the public client, a local User alice, and
// the LDAPIdentityProvider "corp" of the slapd with StartTLS and its test CA.
func ldapManifests(s *harness.Slapd, redirectURI, hash string) string {
	ca := "      " + strings.ReplaceAll(strings.TrimSpace(string(s.CABundle())), "\n", "\n      ")
	return groupsScope + `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: tracker, namespace: web}
spec:
  clientID: ` + clientID + `
  type: Public
  displayName: Project Tracker
  grantTypes: [authorization_code]
  redirectURIs: ["` + redirectURI + `"]
  scopes: [openid, email, profile, groups]
  tokenEndpointAuthMethod: none
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: User
metadata: {name: alice}
spec:
  username: alice
  passwordSecretRef: {namespace: default, name: user-passwords, key: hash}
---
apiVersion: v1
kind: Secret
metadata: {name: user-passwords, namespace: default}
stringData:
  hash: "` + hash + `"
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: LDAPIdentityProvider
metadata: {name: corp}
spec:
  host: ` + s.Addr() + `
  tls:
    mode: StartTLS
    caBundle: |
` + ca + `
  bind:
    secretRef: {namespace: latchkey, name: corp-ldap}
  userSearch: {base: "ou=people,` + harness.SlapdSuffix + `"}
  groupSearch: {base: "ou=groups,` + harness.SlapdSuffix + `"}
  displayName: Corp Directory
---
apiVersion: v1
kind: Secret
metadata: {name: corp-ldap, namespace: latchkey}
stringData:
  username: "uid=svc,ou=people,` + harness.SlapdSuffix + `"
  password: svc-password
`
}

func TestSignInWithAnLDAPDirectoryInChromium(t *testing.T) {
	s := harness.NewSlapd(t)
	_, err := s.AddUser("svc", "svc-password", "svc@corp.example", "Service")
	require.NoError(t, err)
	dora, err := s.AddUser(directoryUser, directoryPassword, "dora@corp.example", "Dora Directory")
	require.NoError(t, err)
	require.NoError(t, s.AddGroup("staff", dora))

	e := newClientEnv(t)
	dir := t.TempDir()
	binary, err := harness.BuildBinary(dir)
	require.NoError(t, err)
	hash, err := password.HashArgon2id(userPassword)
	require.NoError(t, err)
	redirectURI := e.callback.URL + "/callback"
	manifests := filepath.Join(dir, "manifests")
	require.NoError(t, os.Mkdir(manifests, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(manifests, "all.yaml"), []byte(ldapManifests(s, redirectURI, hash)), 0o600))
	srv, err := harness.StartServer(t.Context(), binary, filepath.Join(dir, "latchkey.log"), 60*time.Second,
		func(harness.ServeAddrs) []string { return []string{"serve", "--manifests", manifests} })
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("latchkey log (tail):\n%s", srv.Tail(8192))
		}
	})
	e.issuer, e.hc = srv.URL(), http.DefaultClient
	e.oauth = &xoauth2.Config{
		ClientID: clientID, RedirectURL: redirectURI, Scopes: []string{"openid", "email", "profile", "groups"},
		Endpoint: xoauth2.Endpoint{
			AuthURL: e.issuer + oauth2.AuthorizePath, TokenURL: e.issuer + oauth2.TokenPath, AuthStyle: xoauth2.AuthStyleInParams,
		},
	}
	signInDirectory := func(user, pw string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.WaitVisible(chromedp.CSS("#provider")),
			chromedp.SetValue(chromedp.CSS("#provider"), "corp"),
			chromedp.SendKeys(chromedp.CSS("#username"), user),
			chromedp.SendKeys(chromedp.CSS("#password"), pw),
			chromedp.Click(chromedp.CSS("button[type=submit]")),
		)
	}

	t.Run("a wrong directory password shows the login form again with the directory chosen", func(t *testing.T) {
		ctx := e.tab(t)
		authURL := e.oauth.AuthCodeURL("s-wrong", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL), signInDirectory(directoryUser, "not it"),
			chromedp.WaitVisible(chromedp.CSS("#form-error"))))
		msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#form-error")))
		require.NoError(t, err)
		assert.Equal(t, "Incorrect username or password.", strings.TrimSpace(msg))
		chosen, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#provider")))
		require.NoError(t, err)
		assert.Equal(t, "corp", chosen)
		e.screenshots(ctx, t, "ldap-wrong-password")
	})

	t.Run("the directory's user signs in, consents and the client gets a verified ID token", func(t *testing.T) {
		ctx := e.tab(t)
		verifier := xoauth2.GenerateVerifier()
		authURL := e.oauth.AuthCodeURL("s-ldap", xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("nonce", "n-ldap"))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL), signInDirectory(directoryUser, directoryPassword),
			chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
			chromedp.Click(chromedp.CSS(`button[value="allow"]`))))
		got := e.awaitCallback(t)
		require.Equal(t, "s-ldap", got.Get("state"))

		cctx := oidc.ClientContext(context.WithValue(t.Context(), xoauth2.HTTPClient, e.hc), e.hc)
		tok, err := e.oauth.Exchange(cctx, got.Get("code"), xoauth2.VerifierOption(verifier))
		require.NoError(t, err)
		raw, _ := tok.Extra("id_token").(string)
		provider, err := oidc.NewProvider(cctx, e.issuer)
		require.NoError(t, err)
		idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(cctx, raw)
		require.NoError(t, err)
		var claims struct {
			PreferredUsername string   `json:"preferred_username"`
			Email             string   `json:"email"`
			Name              string   `json:"name"`
			Groups            []string `json:"groups"`
		}
		require.NoError(t, idt.Claims(&claims))
		assert.Equal(t, directoryUser, claims.PreferredUsername)
		assert.Equal(t, "dora@corp.example", claims.Email)
		assert.Equal(t, "Dora Directory", claims.Name)
		assert.Equal(t, []string{"staff"}, claims.Groups)
		assert.True(t, strings.HasPrefix(idt.Subject, registry.ExternalSubjectPrefix), "sub %q", idt.Subject)
	})
}
