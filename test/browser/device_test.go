package browser

import (
	"context"
	"errors"
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

// deviceConfig is the x/oauth2 configuration of the CLI.
func (e *env) deviceConfig() *xoauth2.Config {
	return &xoauth2.Config{
		ClientID: deviceClientID, Scopes: []string{"openid", "email", "read:projects"},
		Endpoint: xoauth2.Endpoint{
			DeviceAuthURL: e.server.URL + oauth2.DeviceAuthorizationPath, TokenURL: e.server.URL + oauth2.TokenPath,
			AuthStyle: xoauth2.AuthStyleInParams,
		},
	}
}

// pollInBackground runs DeviceAccessToken (which polls at the server's interval) until it
// answers.
func pollInBackground(ctx context.Context, cfg *xoauth2.Config, da *xoauth2.DeviceAuthResponse) <-chan tokenOrError {
	out := make(chan tokenOrError, 1)
	go func() {
		tok, err := cfg.DeviceAccessToken(ctx, da)
		out <- tokenOrError{tok, err}
	}()
	return out
}

type tokenOrError struct {
	tok *xoauth2.Token
	err error
}

func TestDeviceFlowInChromium(t *testing.T) {
	e := newEnv(t)
	cctx := context.WithValue(t.Context(), xoauth2.HTTPClient, e.server.Client())

	t.Run("a CLI gets tokens while the user enters the code, signs in and approves", func(t *testing.T) {
		cfg := e.deviceConfig()
		da, err := cfg.DeviceAuth(cctx)
		require.NoError(t, err)
		assert.Equal(t, e.server.URL+oauth2.DevicePath, da.VerificationURI)
		assert.Regexp(t, `^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`, da.UserCode)
		polled := pollInBackground(cctx, cfg, da)

		ctx := e.tab(t)
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(da.VerificationURI), chromedp.WaitVisible(chromedp.CSS("#user_code"))))
		title, err := chromedp.Run(ctx, chromedp.Title())
		require.NoError(t, err)
		assert.Equal(t, "Connect a device · Latchkey", title)
		e.screenshots(ctx, t, "device-code")
		// Typed as a person might: lower case, without the dash.
		typed := strings.ToLower(strings.ReplaceAll(da.UserCode, "-", ""))
		require.NoError(t, chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS("#user_code"), typed),
			chromedp.Click(chromedp.CSS("button[type=submit]")),
			signIn(userPassword),
			chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		))
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		require.NoError(t, err)
		assert.Contains(t, text, "Project CLI")
		assert.Contains(t, text, "List and view projects")
		code, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#user-code")))
		require.NoError(t, err)
		assert.Equal(t, da.UserCode, code, "the confirmation shows the code to compare")
		e.screenshots(ctx, t, "device-confirm")
		select {
		case r := <-polled:
			t.Fatalf("the CLI got an answer before the user approved: %v %v", r.tok, r.err)
		default:
		}

		require.NoError(t, chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[role="status"]`)),
		))
		heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
		require.NoError(t, err)
		assert.Equal(t, "Device connected", heading)
		e.screenshots(ctx, t, "device-done")

		r := <-polled
		require.NoError(t, r.err)
		assert.NotEmpty(t, r.tok.AccessToken)
		assert.NotEmpty(t, r.tok.RefreshToken)
		assert.NotEmpty(t, r.tok.Extra("id_token"))
		res, err := cfg.Client(cctx, r.tok).Get(e.server.URL + oauth2.UserinfoPath)
		require.NoError(t, err)
		defer res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode)

		// The device code was redeemed: a second redemption fails.
		_, err = cfg.DeviceAccessToken(cctx, da)
		var re *xoauth2.RetrieveError
		require.True(t, errors.As(err, &re), "%v", err)
		assert.Equal(t, "invalid_grant", re.ErrorCode)
	})

	t.Run("a user who follows verification_uri_complete and denies sends access_denied to the CLI", func(t *testing.T) {
		cfg := e.deviceConfig()
		da, err := cfg.DeviceAuth(cctx)
		require.NoError(t, err)
		u, err := url.Parse(da.VerificationURIComplete)
		require.NoError(t, err)
		assert.Equal(t, da.UserCode, u.Query().Get("user_code"))
		polled := pollInBackground(cctx, cfg, da)

		ctx := e.tab(t)
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(da.VerificationURIComplete), chromedp.WaitVisible(chromedp.CSS("#user_code"))))
		value, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#user_code")))
		require.NoError(t, err)
		assert.Equal(t, da.UserCode, value, "the code is filled in, and the user still submits it")
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS("button[type=submit]")),
			signIn(userPassword),
			chromedp.WaitVisible(chromedp.CSS(`button[value="deny"]`)),
			chromedp.Click(chromedp.CSS(`button[value="deny"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[role="status"]`)),
		))
		r := <-polled
		var re *xoauth2.RetrieveError
		require.True(t, errors.As(r.err, &re), "%v", r.err)
		assert.Equal(t, "access_denied", re.ErrorCode)
	})

	t.Run("a wrong code shows an error and stays on the code page", func(t *testing.T) {
		ctx := e.tab(t)
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Navigate(e.server.URL+oauth2.DevicePath),
			chromedp.WaitVisible(chromedp.CSS("#user_code")),
			chromedp.SendKeys(chromedp.CSS("#user_code"), "BBBB-BBBB"),
			chromedp.Click(chromedp.CSS("button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`[role="alert"]`)),
		))
		alert, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[role="alert"]`)))
		require.NoError(t, err)
		assert.Contains(t, alert, "not valid or has expired")
		e.screenshots(ctx, t, "device-wrong-code")
	})
}
