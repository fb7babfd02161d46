package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
	"github.com/latchkey-dev/latchkey/server/password"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

const (
	clientID = "project-tracker"
	// registeredID is a client that registered itself (RFC 7591): its consent page says it is
	// unverified.
	registeredID = "dyn-registered0"
	// deviceClientID is a CLI that uses the device authorization grant (RFC 8628).
	deviceClientID = "project-cli"
	username       = "alice"
	subject        = "6f1c0d2e-5b7a-4c1e-9d3f-2a8b7c6d5e4f" // alice's sub: not her username
	userPassword   = "correct horse battery staple"
	// stepTimeout bounds each browser step; the first start of chromium takes longest.
	stepTimeout = 30 * time.Second
)

// env is the server under test, the client's callback and a running chromium.
type env struct {
	server *httptest.Server // the server in this process (newEnv); nil for a binary's
	// issuer is the server's URL and hc an HTTP client for it.
	issuer    string
	hc        *http.Client
	callback  *httptest.Server
	callbacks chan url.Values
	// logouts receives the queries of the client's post-logout page.
	logouts chan url.Values
	browser context.Context // a chromedp context whose browser has started
	oauth   *xoauth2.Config
	reg     *registry.Registry
}

func TestLoginAndConsentInChromium(t *testing.T) {
	e := newEnv(t)

	t.Run("a user signs in, allows access, and the client gets working tokens", func(t *testing.T) {
		ctx := e.tab(t)
		verifier := xoauth2.GenerateVerifier()
		authURL := e.oauth.AuthCodeURL("state-allow", xoauth2.S256ChallengeOption(verifier),
			xoauth2.SetAuthURLParam("nonce", "nonce-allow"))

		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL), chromedp.WaitVisible(chromedp.CSS("#username"))))
		title, err := chromedp.Run(ctx, chromedp.Title())
		require.NoError(t, err)
		assert.Equal(t, "Sign in · Latchkey", title)
		focused, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.activeElement.id"))
		require.NoError(t, err)
		assert.Equal(t, "username", focused, "the username field has the focus")
		e.screenshots(ctx, t, "login")

		require.NoError(t, chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS("#username"), username),
			chromedp.SendKeys(chromedp.CSS("#password"), userPassword),
			chromedp.Click(chromedp.CSS("button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		))
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		require.NoError(t, err)
		assert.Contains(t, text, "Project Tracker")
		assert.Contains(t, text, "List and view projects")
		assert.Contains(t, text, "See your email address")
		e.screenshots(ctx, t, "consent")

		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[value="allow"]`))))
		got := e.awaitCallback(t)
		assert.Equal(t, "state-allow", got.Get("state"))
		assert.Equal(t, e.server.URL, got.Get("iss"))
		require.NotEmpty(t, got.Get("code"))
		e.assertLandedOnCallback(ctx, t)

		cctx := context.WithValue(t.Context(), xoauth2.HTTPClient, e.server.Client())
		tok, err := e.oauth.Exchange(cctx, got.Get("code"), xoauth2.VerifierOption(verifier))
		require.NoError(t, err)
		assert.NotEmpty(t, tok.Extra("id_token"))
		res, err := e.oauth.Client(cctx, tok).Get(e.server.URL + oauth2.UserinfoPath)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		var info map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&info))
		assert.Equal(t, subject, info["sub"], "sub is the user's subject, not the username")
		assert.Equal(t, "alice@example.com", info["email"])

		t.Run("the next request of the client needs no page at all", func(t *testing.T) {
			authURL := e.oauth.AuthCodeURL("state-again", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()))
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL)))
			got := e.awaitCallback(t)
			assert.Equal(t, "state-again", got.Get("state"))
			assert.NotEmpty(t, got.Get("code"))
		})
	})

	t.Run("a user who denies access sends access_denied to the client", func(t *testing.T) {
		ctx := e.tab(t)
		// The consent of the first subtest is remembered: prompt=consent asks again.
		authURL := e.oauth.AuthCodeURL("state-deny", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()),
			xoauth2.SetAuthURLParam("prompt", "consent"))
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Navigate(authURL),
			signIn(userPassword),
			chromedp.WaitVisible(chromedp.CSS(`button[value="deny"]`)),
			chromedp.Click(chromedp.CSS(`button[value="deny"]`)),
		))
		got := e.awaitCallback(t)
		assert.Equal(t, "access_denied", got.Get("error"))
		assert.Equal(t, "state-deny", got.Get("state"))
		assert.Equal(t, e.server.URL, got.Get("iss"))
		assert.Empty(t, got.Get("code"))
	})

	t.Run("the consent page of a registered client marks it unverified and names the redirect host", func(t *testing.T) {
		ctx := e.tab(t)
		registered := *e.oauth
		registered.ClientID, registered.Scopes = registeredID, []string{"openid", "email"}
		authURL := registered.AuthCodeURL("state-registered", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()))
		e.signIn(ctx, t, authURL, ".unverified")
		note, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".unverified")))
		require.NoError(t, err)
		host := strings.TrimPrefix(e.callback.URL, "http://")
		assert.Contains(t, note, "UNVERIFIED APP", "the badge is shown (upper case by the stylesheet)")
		assert.Contains(t, note, host)
		dest, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".destination .host")))
		require.NoError(t, err)
		assert.Equal(t, host, dest)
		e.screenshots(ctx, t, "consent-unverified")
	})

	t.Run("a wrong password shows an error and stays on the login page", func(t *testing.T) {
		ctx := e.tab(t)
		authURL := e.oauth.AuthCodeURL("state-wrong", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()))
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Navigate(authURL),
			signIn("wrong password"),
			chromedp.WaitVisible(chromedp.CSS(`[role="alert"]`)),
		))
		alert, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[role="alert"]`)))
		require.NoError(t, err)
		assert.Equal(t, "Incorrect username or password.", strings.TrimSpace(alert))
		loc, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(loc, e.server.URL+oauth2.LoginPath), "still on the login page: %s", loc)
		value, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#username")))
		require.NoError(t, err)
		assert.Equal(t, username, value, "the username is kept")
		focused, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.activeElement.id"))
		require.NoError(t, err)
		assert.Equal(t, "password", focused, "the password field has the focus")
		e.screenshots(ctx, t, "login-error")
		select {
		case q := <-e.callbacks:
			t.Fatalf("the client got a callback: %v", q)
		case <-time.After(200 * time.Millisecond):
		}
	})

	t.Run("an unregistered redirect URI is an error page, never a redirect", func(t *testing.T) {
		ctx := e.tab(t)
		evil := *e.oauth
		evil.RedirectURL = e.callback.URL + "/callback.evil"
		authURL := evil.AuthCodeURL("state-evil", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL), chromedp.WaitVisible(chromedp.CSS("h1"))))
		heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
		require.NoError(t, err)
		assert.Equal(t, "Sign-in request rejected", heading)
		loc, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(loc, e.server.URL+oauth2.AuthorizePath), "still on the server: %s", loc)
		e.screenshots(ctx, t, "error")
		select {
		case q := <-e.callbacks:
			t.Fatalf("the client got a callback: %v", q)
		case <-time.After(200 * time.Millisecond):
		}
	})
}

// newEnv starts the server, the callback and chromium. A missing chromium is installed (the
// harness's tool policy) or fails the test.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := newClientEnv(t)
	redirectURI := e.callback.URL + "/callback"

	e.server = httptest.NewUnstartedServer(nil)
	e.server.Start()
	t.Cleanup(e.server.Close)
	e.issuer, e.hc = e.server.URL, e.server.Client()
	e.reg = newRegistry(t, redirectURI)
	h, err := handler.New(handler.Config{
		Issuer: e.server.URL, Registry: e.reg, Keys: newKeyring(t), Store: memory.New(),
		Device: handler.DeviceConfig{Interval: time.Second},
	})
	require.NoError(t, err)
	e.server.Config.Handler = h

	e.oauth = &xoauth2.Config{
		ClientID: clientID, RedirectURL: redirectURI, Scopes: []string{"openid", "email", "read:projects"},
		Endpoint: xoauth2.Endpoint{
			AuthURL: e.server.URL + oauth2.AuthorizePath, TokenURL: e.server.URL + oauth2.TokenPath,
			AuthStyle: xoauth2.AuthStyleInParams,
		},
	}
	return e
}

// newClientEnv starts chromium and the client's callback (which also serves its post-logout
// page at /logged-out), without a server.
func newClientEnv(t *testing.T) *env {
	t.Helper()
	chromium := os.Getenv("LATCHKEY_CHROMIUM")
	if chromium == "" {
		var err error
		chromium, err = harness.Tool("chromium", "chromium")
		require.NoError(t, err, "chromium is required for the browser test")
	} else if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("LATCHKEY_CHROMIUM: %v", err)
	}

	e := &env{callbacks: make(chan url.Values, 4), logouts: make(chan url.Values, 4)}
	e.callback = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/logged-out" {
			e.logouts <- r.URL.Query()
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = fmt.Fprint(w, `<!DOCTYPE html><html lang="en"><title>Bye</title><h1 id="bye">Signed out</h1></html>`)
			return
		}
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		e.callbacks <- r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, `<!DOCTYPE html><html lang="en"><title>Callback</title><h1 id="done">Signed in</h1></html>`)
	}))
	t.Cleanup(e.callback.Close)
	e.browser = startChromium(t, chromium)
	return e
}

func newRegistry(t *testing.T, redirectURI string) *registry.Registry {
	t.Helper()
	hash, err := password.HashArgon2id(userPassword)
	require.NoError(t, err)
	r := registry.New()
	r.PutScope("read-projects", registry.Scope{Name: "read:projects", Description: "List and view projects"})
	r.PutClient(registry.Client{
		Source: "web/" + clientID, Namespace: "web", ID: clientID, Type: registry.Public, AuthMethod: "none",
		DisplayName: "Project Tracker", GrantTypes: []string{"authorization_code", "refresh_token"},
		RedirectURIs: []string{redirectURI}, Scopes: []string{"openid", "profile", "email", "read:projects"},
		PostLogoutRedirectURIs: []string{strings.TrimSuffix(redirectURI, "/callback") + "/logged-out"},
	})
	r.PutClient(registry.Client{
		Source: "registered/" + registeredID, Namespace: "registered", ID: registeredID, Type: registry.Public, AuthMethod: "none",
		DisplayName: "Project Tracker Helper", GrantTypes: []string{"authorization_code"}, Registered: true,
		RedirectURIs: []string{redirectURI}, Scopes: []string{"openid", "email"},
	})
	r.PutClient(registry.Client{
		Source: "cli/" + deviceClientID, Namespace: "cli", ID: deviceClientID, Type: registry.Public, AuthMethod: "none",
		DisplayName: "Project CLI", GrantTypes: []string{oauth2.GrantDeviceCode, "refresh_token"},
		Scopes: []string{"openid", "email", "read:projects"},
	})
	r.PutUser(registry.User{Source: username, Subject: subject, Username: username, Email: "alice@example.com",
		EmailVerified: true, DisplayName: "Alice Liddell", PasswordHash: []byte(hash)})
	return r
}

func newKeyring(t *testing.T) *keys.Keyring {
	t.Helper()
	set, err := keys.Generate([]string{keys.RS256}, time.Now().Add(-time.Minute))
	require.NoError(t, err)
	kr := keys.NewKeyring()
	require.NoError(t, kr.Load(set))
	return kr
}

// startChromium starts headless chromium as root would need it and returns a context of it.
func startChromium(t *testing.T, path string) context.Context {
	t.Helper()
	var output lockedBuffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // chromium refuses to run as root with its sandbox
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
		chromedp.CombinedOutput(&output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	// The first Do starts the browser; its context must not have a timeout (chromedp.Run).
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		require.NoError(t, err, "start chromium; its output:\n%s", output.String())
	case <-time.After(2 * stepTimeout):
		t.Fatalf("chromium did not start; its output:\n%s", output.String())
	}
	return ctx
}

// tab opens a tab in a new browser context (its own cookies) with a step timeout, and logs
// what the page logs (CSP violations among it).
func (e *env) tab(t *testing.T) context.Context {
	t.Helper()
	tabCtx, cancel := chromedp.NewContext(e.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(tabCtx))
	require.NoError(t, chromedp.Listen(tabCtx, func(ev any) {
		if entry, ok := ev.(*log.EventEntryAdded); ok {
			t.Logf("browser %s: %s", entry.Entry.Level, entry.Entry.Text)
		}
	}))
	ctx, cancelTimeout := context.WithTimeout(tabCtx, 2*stepTimeout)
	t.Cleanup(cancelTimeout)
	return ctx
}

// signIn waits for the login page and signs in as alice with the password.
func signIn(password string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), username),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
	)
}

// signIn opens the authorization URL, signs alice in on the login page and waits until the
// next page shows the element of the CSS selector.
func (e *env) signIn(ctx context.Context, t *testing.T, authURL, selector string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(authURL),
		signIn(userPassword),
		chromedp.WaitVisible(chromedp.CSS(selector)),
	))
}

// awaitCallback waits for the client's callback.
func (e *env) awaitCallback(t *testing.T) url.Values {
	t.Helper()
	select {
	case q := <-e.callbacks:
		return q
	case <-time.After(stepTimeout):
		t.Fatal("the client's callback was not called")
		return nil
	}
}

// assertLandedOnCallback checks that the browser shows the client's page.
func (e *env) assertLandedOnCallback(ctx context.Context, t *testing.T) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#done"))))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(loc, e.callback.URL+"/callback?"), "on the callback: %s", loc)
}

// screenshots saves the page at a wide and at a narrow (phone) width into the test's artifact
// directory, then restores the wide viewport.
func (e *env) screenshots(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	dir := t.ArtifactDir()
	for _, size := range []struct {
		suffix        string
		width, height int64
	}{{"", 1024, 768}, {"-narrow", 375, 740}} {
		require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(size.width, size.height)))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		file := filepath.Join(dir, name+size.suffix+".png")
		require.NoError(t, os.WriteFile(file, png, 0o600))
		t.Logf("screenshot: %s", file)
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1024, 768)))
}

// lockedBuffer collects chromium's output for a failure message.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
