package browser

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/harness/fakegithub"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestSignInWithGitHubInChromium(t *testing.T) {
	e := newEnv(t)
	gh := fakegithub.Start(t, "Iv1.chromium", "github-secret-chromium-0123456789", e.issuer+oauth2.UpstreamCallbackPath)
	e.reg.PutUpstreamGitHub(registry.UpstreamGitHub{
		Name: "github", UID: "uid-github", Generation: 1, DisplayName: "GitHub Enterprise", WebURL: gh.URL, APIURL: gh.URL + "/api/v3",
		ClientID: "Iv1.chromium", ClientSecret: "github-secret-chromium-0123456789", AllowedOrganizations: []string{"acme"},
		TeamsAsGroups: registry.GitHubTeamSlug,
	})
	gh.SignInAs(fakegithub.User{ID: 9001, Login: "hubot", Name: "Hubot", Email: "hubot@acme.example", Orgs: []string{"acme"}})

	t.Run("the login page offers GitHub beside the password form, and its button signs the user in", func(t *testing.T) {
		ctx := e.tab(t)
		verifier := xoauth2.GenerateVerifier()
		authURL := e.oauth.AuthCodeURL("s-gh", xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("nonce", "n-gh"))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL), chromedp.WaitVisible(chromedp.CSS("#idp-github-github"))))
		label, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#idp-github-github")))
		require.NoError(t, err)
		assert.Equal(t, "Sign in with GitHub Enterprise", strings.TrimSpace(label))
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#password"))))
		e.screenshots(ctx, t, "login-github")

		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#idp-github-github"))))
		waitLocation(ctx, t, e.issuer+oauth2.ConsentPath)
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[value="allow"]`))))
		got := e.awaitCallback(t)
		require.Equal(t, "s-gh", got.Get("state"))

		cctx := oidc.ClientContext(context.WithValue(t.Context(), xoauth2.HTTPClient, e.hc), e.hc)
		tok, err := e.oauth.Exchange(cctx, got.Get("code"), xoauth2.VerifierOption(verifier))
		require.NoError(t, err)
		provider, err := oidc.NewProvider(cctx, e.issuer)
		require.NoError(t, err)
		raw, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(cctx, raw)
		require.NoError(t, err)
		var claims struct {
			Email string `json:"email"`
		}
		require.NoError(t, idt.Claims(&claims))
		assert.True(t, strings.HasPrefix(idt.Subject, registry.GitHubSubjectPrefix), idt.Subject)
		assert.Equal(t, "hubot@acme.example", claims.Email)
	})

	t.Run("a GitHub user of no allowed organization gets a clear page", func(t *testing.T) {
		gh.SignInAs(fakegithub.User{ID: 666, Login: "mallory", Orgs: []string{"evil"}})
		ctx := e.tab(t)
		authURL := e.oauth.AuthCodeURL("s-gh-refused", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL), chromedp.Click(chromedp.CSS("#idp-github-github"))))
		waitLocation(ctx, t, e.issuer+oauth2.UpstreamCallbackPath)
		assert.Equal(t, "Sign-in failed", heading(ctx, t))
		body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		require.NoError(t, err)
		assert.Contains(t, body, "not allowed to sign in here")
		e.screenshots(ctx, t, "github-refused")
	})
}
