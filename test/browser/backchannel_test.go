package browser

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/password"
)

// The clients of the back-channel logout test: portal, wiki and strict (which requires a sid)
// take part in alice's sessions, idle never does. Each has its own path at the receiver.
const (
	portalID = "bc-portal"
	wikiID   = "bc-wiki"
	strictID = "bc-strict"
	idleID   = "bc-idle"
	// deliveryTimeout bounds the wait for a logout token: the sender is woken by the logout, or
	// polls every second.
	deliveryTimeout = 10 * time.Second
)

// backchannelManifests are the embedded server's resources: the four clients (public, PKCE,
// consent skipped, a backchannelLogoutURI each at the receiver) and alice, whose password has
// the hash passwordHash.
func backchannelManifests(callback, passwordHash string, rc *harness.LogoutReceiver) string {
	client := func(id string, sessionRequired bool) string {
		return fmt.Sprintf(`apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: %[1]s, namespace: default}
spec:
  clientID: %[1]s
  type: Public
  displayName: %[1]s
  grantTypes: [authorization_code]
  redirectURIs: ["%[2]s/callback"]
  postLogoutRedirectURIs: ["%[2]s/logged-out"]
  scopes: [openid, email]
  tokenEndpointAuthMethod: none
  pkce: RequiredS256
  consent: Skip
  backchannelLogoutURI: "%[3]s"
  backchannelLogoutSessionRequired: %[4]t
---
`, id, callback, rc.URI(id), sessionRequired)
	}
	return client(portalID, false) + client(wikiID, false) + client(strictID, true) + client(idleID, false) + `apiVersion: oauth.latchkey.dev/v1alpha1
kind: User
metadata: {name: alice}
spec:
  username: alice
  email: alice@example.com
  emailVerified: true
  passwordSecretRef: {namespace: default, name: alice-password, key: hash}
---
apiVersion: v1
kind: Secret
metadata: {name: alice-password, namespace: default}
type: Opaque
stringData:
  hash: "` + passwordHash + `"
`
}

// newBinaryEnv starts chromium, the client's callback, the logout receiver and the latchkey
// binary in embedded mode (memory store) serving backchannelManifests.
func newBinaryEnv(t *testing.T) (*env, *harness.LogoutReceiver, *harness.Server) {
	t.Helper()
	e := newClientEnv(t)
	rc := harness.NewLogoutReceiver(t)
	dir := t.TempDir()
	manifests := filepath.Join(dir, "manifests")
	require.NoError(t, os.Mkdir(manifests, 0o700))
	hash, err := password.HashArgon2id(userPassword)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(manifests, "backchannel.yaml"), []byte(backchannelManifests(e.callback.URL, hash, rc)), 0o600))
	binary, err := harness.BuildBinary(dir)
	require.NoError(t, err)
	srv, err := harness.StartServer(t.Context(), binary, filepath.Join(dir, "latchkey.log"), 60*time.Second,
		func(harness.ServeAddrs) []string {
			return []string{"serve", "--manifests", manifests, "--backchannel-logout-timeout", "2s"}
		})
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("latchkey log (tail):\n%s", srv.Tail(8192))
		}
	})
	e.issuer, e.hc = srv.URL(), http.DefaultClient
	// e.oauth (assertLoginRequired's client) is the portal.
	e.oauth = e.clientConfig(portalID)
	return e, rc, srv
}

// clientConfig is the x/oauth2 configuration of a public client of backchannelManifests.
func (e *env) clientConfig(id string) *xoauth2.Config {
	return &xoauth2.Config{
		ClientID: id, RedirectURL: e.callback.URL + "/callback", Scopes: []string{"openid", "email"},
		Endpoint: xoauth2.Endpoint{
			AuthURL: e.issuer + oauth2.AuthorizePath, TokenURL: e.issuer + oauth2.TokenPath,
			AuthStyle: xoauth2.AuthStyleInParams,
		},
	}
}

// assertLogoutToken verifies the single logout token the client got and checks that it names
// the session and the user of the ID token.
func (e *env) assertLogoutToken(t *testing.T, rc *harness.LogoutReceiver, clientID string, idt idToken) {
	t.Helper()
	posts := rc.Posts(clientID)
	require.Len(t, posts, 1, "%s gets exactly one POST", clientID)
	assert.Equal(t, "application/x-www-form-urlencoded", posts[0].ContentType)
	claims := harness.VerifyLogoutToken(t, e.hc, e.issuer, clientID, posts[0].Token)
	assert.Equal(t, idt.sid, claims["sid"], "%s: sid of the ended session", clientID)
	assert.Equal(t, idt.sub, claims["sub"], "%s: sub", clientID)
}

func TestBackchannelLogoutThroughTheBinary(t *testing.T) {
	e, rc, srv := newBinaryEnv(t)

	t.Run("RP-initiated logout sends one verified logout token to each client of the session and none to another (oidcc-backchannel-rp-initiated-logout)", func(t *testing.T) {
		ctx := e.tab(t)
		portal := e.tokensOf(ctx, t, e.clientConfig(portalID), "s-portal", true)
		wiki := e.tokensOf(ctx, t, e.clientConfig(wikiID), "s-wiki", false)
		strict := e.tokensOf(ctx, t, e.clientConfig(strictID), "s-strict", false)
		require.Equal(t, portal.sid, wiki.sid, "one OP session for the clients of one browser")
		require.Equal(t, portal.sid, strict.sid)

		logoutURL := e.issuer + oauth2.LogoutPath + "?" + url.Values{
			"id_token_hint": {portal.raw}, "post_logout_redirect_uri": {e.callback.URL + "/logged-out"}, "state": {"bye"},
		}.Encode()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(logoutURL), chromedp.WaitVisible(chromedp.CSS("#bye"))))
		select {
		case q := <-e.logouts:
			assert.Equal(t, "bye", q.Get("state"))
		case <-time.After(stepTimeout):
			t.Fatal("the post-logout redirect URI was not called")
		}

		rc.AwaitDelivered(t, portalID, 1, deliveryTimeout)
		rc.AwaitDelivered(t, wikiID, 1, deliveryTimeout)
		rc.AwaitDelivered(t, strictID, 1, deliveryTimeout)
		e.assertLogoutToken(t, rc, portalID, portal)
		e.assertLogoutToken(t, rc, wikiID, wiki)
		// backchannelLogoutSessionRequired: the token has the sid (assertLogoutToken checks it).
		e.assertLogoutToken(t, rc, strictID, strict)
		assert.Empty(t, rc.Posts(idleID), "a client that took no part in the session gets nothing")
		counts := harness.DeliveryCounts(t, srv.MetricsURL())
		assert.Equal(t, map[string]float64{"delivered": 3, "retried": 0, "failed": 0, "dropped": 0}, counts,
			"the metric counts the three deliveries and nothing else")
		e.assertLoginRequired(ctx, t)
	})

	t.Run("ending the session on the account page sends a logout token for that session", func(t *testing.T) {
		ctx := e.tab(t)
		portal := e.tokensOf(ctx, t, e.clientConfig(portalID), "s-account", true)
		before := len(rc.Posts(portalID))
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Navigate(e.issuer+oauth2.AccountPath),
			chromedp.WaitVisible(chromedp.CSS("#end-current")),
			chromedp.Click(chromedp.CSS("#end-current")),
			chromedp.WaitNotPresent(chromedp.CSS("#sessions")),
		))
		assert.Equal(t, "You are signed out", heading(ctx, t))
		got := rc.AwaitDelivered(t, portalID, before+1, deliveryTimeout)
		claims := harness.VerifyLogoutToken(t, e.hc, e.issuer, portalID, got[before])
		assert.Equal(t, portal.sid, claims["sid"])
		assert.Equal(t, portal.sub, claims["sub"])
		assert.Len(t, rc.Posts(wikiID), 1, "the wiki took no part in this session")
		assert.Empty(t, rc.Posts(idleID))
	})
	t.Run("ending another browser's session on the account page sends its clients a logout token", func(t *testing.T) {
		other := e.tab(t)
		ended := e.tokensOf(other, t, e.clientConfig(portalID), "s-other", true)
		ctx := e.tab(t)
		wiki := e.tokensOf(ctx, t, e.clientConfig(wikiID), "s-here", true)
		require.NotEqual(t, ended.sid, wiki.sid, "two browsers, two sessions")
		portalBefore, wikiBefore := len(rc.Posts(portalID)), len(rc.Posts(wikiID))
		button := fmt.Sprintf(`form:has(input[name="sid"][value=%q]) button`, ended.sid)
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Navigate(e.issuer+oauth2.AccountPath),
			chromedp.WaitVisible(chromedp.CSS(button)),
			chromedp.Click(chromedp.CSS(button)),
			chromedp.WaitNotPresent(chromedp.CSS(button)),
		))
		got := rc.AwaitDelivered(t, portalID, portalBefore+1, deliveryTimeout)
		claims := harness.VerifyLogoutToken(t, e.hc, e.issuer, portalID, got[portalBefore])
		assert.Equal(t, ended.sid, claims["sid"])
		assert.Len(t, rc.Posts(wikiID), wikiBefore, "the session of this browser goes on")
		e.assertLoginRequired(other, t)
	})

	t.Run("a logout POSTed by the client's back end, without the browser's cookies, sends the logout tokens", func(t *testing.T) {
		ctx := e.tab(t)
		portal := e.tokensOf(ctx, t, e.clientConfig(portalID), "s-post", true)
		before := len(rc.Posts(portalID))
		form := url.Values{"id_token_hint": {portal.raw}, "post_logout_redirect_uri": {e.callback.URL + "/logged-out"}, "state": {"from-back-end"}}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.issuer+oauth2.LogoutPath, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noRedirect.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		assert.Equal(t, e.callback.URL+"/logged-out?state=from-back-end", resp.Header.Get("Location"))
		got := rc.AwaitDelivered(t, portalID, before+1, deliveryTimeout)
		claims := harness.VerifyLogoutToken(t, e.hc, e.issuer, portalID, got[before])
		assert.Equal(t, portal.sid, claims["sid"])
		e.assertLoginRequired(ctx, t)
	})
}
