package browser

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// signedInTokens signs alice in through the tab (allowing access when asked), exchanges the
// code with x/oauth2 and verifies the ID token with go-oidc; it returns the raw ID token and
// its sid.
func (e *env) signedInTokens(ctx context.Context, t *testing.T, state string) (rawIDToken, sid string) {
	t.Helper()
	idt := e.tokensOf(ctx, t, e.oauth, state, true)
	return idt.raw, idt.sid
}

// idToken is a verified ID token with its sid and sub.
type idToken struct{ raw, sid, sub string }

// tokensOf runs the authorization code flow of client o in the tab, signing alice in on the
// login page when login is set (else the tab's session answers) and allowing access when
// asked; it exchanges the code with x/oauth2 and verifies the ID token with go-oidc.
func (e *env) tokensOf(ctx context.Context, t *testing.T, o *xoauth2.Config, state string, login bool) idToken {
	t.Helper()
	verifier := xoauth2.GenerateVerifier()
	authURL := o.AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("nonce", "n-"+state))
	steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(authURL)}
	if login {
		steps = append(steps, signIn(userPassword))
	}
	require.NoError(t, chromedp.Do(ctx, steps...))
	var got url.Values
	select {
	case got = <-e.callbacks:
	case <-time.After(2 * time.Second):
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
			chromedp.Click(chromedp.CSS(`button[value="allow"]`))))
		got = e.awaitCallback(t)
	}
	require.Equal(t, state, got.Get("state"))
	require.NotEmpty(t, got.Get("code"), "%v", got)
	// The test's callback answered; let the tab finish loading its page, so that the next
	// navigation does not abort this one (net::ERR_ABORTED under load).
	loaded := fmt.Sprintf("document.readyState === 'complete' && location.href.startsWith(%q)", e.callback.URL)
	require.Eventually(t, func() bool {
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](loaded)) // fails while a page is replaced
		return err == nil && done
	}, 10*time.Second, 20*time.Millisecond, "the tab never finished loading the callback page")

	cctx := oidc.ClientContext(context.WithValue(t.Context(), xoauth2.HTTPClient, e.hc), e.hc)
	tok, err := o.Exchange(cctx, got.Get("code"), xoauth2.VerifierOption(verifier))
	require.NoError(t, err)
	raw, _ := tok.Extra("id_token").(string)
	require.NotEmpty(t, raw)
	provider, err := oidc.NewProvider(cctx, e.issuer)
	require.NoError(t, err)
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	require.NoError(t, provider.Claims(&meta))
	assert.Equal(t, e.issuer+oauth2.LogoutPath, meta.EndSession, "discovery names the end_session_endpoint")
	verified, err := provider.Verifier(&oidc.Config{ClientID: o.ClientID}).Verify(cctx, raw)
	require.NoError(t, err)
	var claims struct {
		SID string `json:"sid"`
	}
	require.NoError(t, verified.Claims(&claims))
	require.NotEmpty(t, claims.SID, "the ID token names the OP session")
	return idToken{raw: raw, sid: claims.SID, sub: verified.Subject}
}

// assertLoginRequired checks that a prompt=none request of the client now fails with
// login_required.
func (e *env) assertLoginRequired(ctx context.Context, t *testing.T) {
	t.Helper()
	authURL := e.oauth.AuthCodeURL("state-silent", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()),
		xoauth2.SetAuthURLParam("prompt", "none"))
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL)))
	got := e.awaitCallback(t)
	assert.Equal(t, "login_required", got.Get("error"))
	assert.Equal(t, "state-silent", got.Get("state"))
}

// heading returns the page's h1 once it is visible.
func heading(ctx context.Context, t *testing.T) string {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("h1"))))
	h, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	require.NoError(t, err)
	return strings.TrimSpace(h)
}

func TestLogoutAndAccountInChromium(t *testing.T) {
	e := newEnv(t)
	loggedOut := e.callback.URL + "/logged-out"

	t.Run("RP-initiated logout with id_token_hint lands on the client with state, and prompt=none then needs a login", func(t *testing.T) {
		ctx := e.tab(t)
		idToken, _ := e.signedInTokens(ctx, t, "state-rp")
		logoutURL := e.server.URL + oauth2.LogoutPath + "?" + url.Values{
			"id_token_hint": {idToken}, "post_logout_redirect_uri": {loggedOut}, "state": {"bye-state"},
		}.Encode()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(logoutURL), chromedp.WaitVisible(chromedp.CSS("#bye"))))
		select {
		case q := <-e.logouts:
			assert.Equal(t, "bye-state", q.Get("state"))
		case <-time.After(stepTimeout):
			t.Fatal("the post-logout redirect URI was not called")
		}
		e.assertLoginRequired(ctx, t)
	})

	t.Run("logout without a hint shows the confirmation page, and confirming signs out", func(t *testing.T) {
		ctx := e.tab(t)
		e.signedInTokens(ctx, t, "state-confirm")
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(e.server.URL+oauth2.LogoutPath), chromedp.WaitVisible(chromedp.CSS("#logout"))))
		title, err := chromedp.Run(ctx, chromedp.Title())
		require.NoError(t, err)
		assert.Equal(t, "Sign out · Latchkey", title)
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		require.NoError(t, err)
		assert.Contains(t, text, "You are signed in as alice")
		e.screenshots(ctx, t, "logout-confirm")
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitNotPresent(chromedp.CSS("#logout"))))
		assert.Equal(t, "You are signed out", heading(ctx, t))
		e.screenshots(ctx, t, "logout-done")
		e.assertLoginRequired(ctx, t)
	})

	t.Run("a hostile post_logout_redirect_uri is refused on a page and the user stays signed in", func(t *testing.T) {
		ctx := e.tab(t)
		idToken, _ := e.signedInTokens(ctx, t, "state-hostile")
		for _, hostile := range []string{e.callback.URL + "/evil", loggedOut + "?next=https://evil.example", "https://evil.example/logged-out"} {
			logoutURL := e.server.URL + oauth2.LogoutPath + "?" + url.Values{
				"id_token_hint": {idToken}, "post_logout_redirect_uri": {hostile}, "state": {"s"},
			}.Encode()
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(logoutURL)))
			assert.Equal(t, "Sign-out request rejected", heading(ctx, t), hostile)
			loc, err := chromedp.Run(ctx, chromedp.Location())
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(loc, e.server.URL+oauth2.LogoutPath), "still on the server: %s", loc)
		}
		select {
		case q := <-e.logouts:
			t.Fatalf("the post-logout page was called: %v", q)
		case <-time.After(200 * time.Millisecond):
		}
		authURL := e.oauth.AuthCodeURL("state-still", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), xoauth2.SetAuthURLParam("prompt", "none"))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL)))
		assert.NotEmpty(t, e.awaitCallback(t).Get("code"), "still signed in")
	})

	t.Run("the account page withdraws a consent and ends the session", func(t *testing.T) {
		ctx := e.tab(t)
		e.signedInTokens(ctx, t, "state-account")
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(e.server.URL+oauth2.AccountPath), chromedp.WaitVisible(chromedp.CSS("#consents"))))
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		require.NoError(t, err)
		assert.Contains(t, text, "Project Tracker")
		assert.Contains(t, text, "(this browser)")
		e.screenshots(ctx, t, "account")

		require.NoError(t, chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(`#consents button`)),
			chromedp.WaitVisible(chromedp.CSS("#no-consents")),
		))
		authURL := e.oauth.AuthCodeURL("state-reconsent", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), xoauth2.SetAuthURLParam("prompt", "none"))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL)))
		assert.Equal(t, "consent_required", e.awaitCallback(t).Get("error"), "the withdrawn consent is asked again")

		require.NoError(t, chromedp.Do(ctx,
			chromedp.Navigate(e.server.URL+oauth2.AccountPath),
			chromedp.WaitVisible(chromedp.CSS("#end-current")),
			chromedp.Click(chromedp.CSS("#end-current")),
			chromedp.WaitNotPresent(chromedp.CSS("#sessions")),
		))
		assert.Equal(t, "You are signed out", heading(ctx, t))
		e.assertLoginRequired(ctx, t)
	})
}
