package browser

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

func TestCodeFlowWithPKCEThroughAPushedRequestInChromium(t *testing.T) {
	e := newEnv(t)
	ctx := e.tab(t)
	verifier := xoauth2.GenerateVerifier()
	// The client pushes what AuthCodeURL would have put into the URL.
	authURL, err := url.Parse(e.oauth.AuthCodeURL("state-par", xoauth2.S256ChallengeOption(verifier),
		xoauth2.SetAuthURLParam("nonce", "nonce-par")))
	require.NoError(t, err)
	res, err := e.server.Client().PostForm(e.server.URL+oauth2.PushedAuthorizationRequestPath, authURL.Query())
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	var pushed struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&pushed))
	require.True(t, strings.HasPrefix(pushed.RequestURI, "urn:ietf:params:oauth:request_uri:"), pushed.RequestURI)
	assert.Equal(t, 60, pushed.ExpiresIn)

	browse := e.server.URL + oauth2.AuthorizePath + "?" + url.Values{"client_id": {clientID}, "request_uri": {pushed.RequestURI}}.Encode()
	e.signIn(ctx, t, browse, `button[value="allow"]`)
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	require.NoError(t, err)
	assert.Contains(t, text, "List and view projects", "the pushed scopes are asked for")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[value="allow"]`))))
	got := e.awaitCallback(t)
	assert.Equal(t, "state-par", got.Get("state"))
	require.NotEmpty(t, got.Get("code"))
	e.assertLandedOnCallback(ctx, t)

	cctx := context.WithValue(t.Context(), xoauth2.HTTPClient, e.server.Client())
	tok, err := e.oauth.Exchange(cctx, got.Get("code"), xoauth2.VerifierOption(verifier))
	require.NoError(t, err)
	assert.NotEmpty(t, tok.Extra("id_token"))

	// The request_uri is spent: the browser gets an error page, no redirect.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(browse), chromedp.WaitVisible(chromedp.CSS("main"))))
	text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	require.NoError(t, err)
	assert.Contains(t, text, "request_uri")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(loc, e.server.URL), "stays on the server: %s", loc)
}
