package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/server/oauth2"
)

const spaClientID = "browser-app"

// spaPage is a single-page app without any library: Sign in makes a PKCE verifier and its S256
// challenge with WebCrypto and goes to the authorization endpoint; at /callback it checks the
// state, exchanges the code with fetch (a form POST) and calls userinfo with the access token
// (a GET with Authorization, so the browser sends a preflight). #outcome shows what it got.
const spaPage = `<!DOCTYPE html>
<html lang="en"><meta charset="utf-8"><title>Browser app</title>
<button id="signin">Sign in</button>
<pre id="outcome" hidden></pre>
<script>
const cfg = %s;
const b64url = bytes => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const random = n => b64url(crypto.getRandomValues(new Uint8Array(n)));
function show(v) {
  const out = document.getElementById('outcome');
  out.textContent = JSON.stringify(v);
  out.hidden = false;
}
async function signIn() {
  const verifier = random(32), state = random(16);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem('pkce', JSON.stringify({verifier, state}));
  location.assign(cfg.authorize + '?' + new URLSearchParams({
    response_type: 'code', client_id: cfg.clientID, redirect_uri: cfg.redirectURI, scope: 'openid email',
    state, code_challenge: challenge, code_challenge_method: 'S256'}));
}
async function callback() {
  const q = new URLSearchParams(location.search);
  const saved = JSON.parse(sessionStorage.getItem('pkce'));
  if (!saved || q.get('state') !== saved.state) throw new Error('state mismatch');
  const tokenRes = await fetch(cfg.token, {method: 'POST', body: new URLSearchParams({
    grant_type: 'authorization_code', code: q.get('code'), redirect_uri: cfg.redirectURI,
    client_id: cfg.clientID, code_verifier: saved.verifier})});
  const tok = await tokenRes.json();
  const infoRes = await fetch(cfg.userinfo, {headers: {Authorization: 'Bearer ' + tok.access_token}});
  show({tokenStatus: tokenRes.status, tokenType: tok.token_type, scope: tok.scope, idToken: !!tok.id_token,
    accessToken: tok.access_token, userinfoStatus: infoRes.status, userinfo: await infoRes.json()});
}
document.getElementById('signin').onclick = () => signIn().catch(e => show({error: String(e)}));
if (location.pathname === '/callback') callback().catch(e => show({error: String(e)}));
</script>
</html>`

// spaOutcome is what the page's JavaScript got.
type spaOutcome struct {
	Error          string         `json:"error"`
	TokenStatus    int            `json:"tokenStatus"`
	TokenType      string         `json:"tokenType"`
	Scope          string         `json:"scope"`
	IDToken        bool           `json:"idToken"`
	AccessToken    string         `json:"accessToken"`
	UserinfoStatus int            `json:"userinfoStatus"`
	Userinfo       map[string]any `json:"userinfo"`
}

// fetchOutcome is a fetch the test runs in a page: "read <status>" when the page may read the
// answer, "blocked <error name>" when the browser keeps it from the page.
func fetchOutcome(url, init string) string {
	return fmt.Sprintf(`fetch(%q, %s).then(r => 'read ' + r.status, e => 'blocked ' + e.name)`, url, init)
}

func TestABrowserAppOnAnotherOriginSignsInWithPKCEInJavaScript(t *testing.T) {
	e := newEnv(t)
	spa := httptest.NewServer(nil)
	t.Cleanup(spa.Close)
	redirectURI := spa.URL + "/callback"
	cfg, err := json.Marshal(map[string]string{
		"clientID": spaClientID, "redirectURI": redirectURI, "authorize": e.server.URL + oauth2.AuthorizePath,
		"token": e.server.URL + oauth2.TokenPath, "userinfo": e.server.URL + oauth2.UserinfoPath,
	})
	require.NoError(t, err)
	spa.Config.Handler = pageHandler(fmt.Sprintf(spaPage, cfg), "/", "/callback")
	// A page on a third origin that no client allows.
	other := httptest.NewServer(pageHandler(`<!DOCTYPE html><html lang="en"><title>Other</title></html>`, "/"))
	t.Cleanup(other.Close)
	require.NotEqual(t, spa.URL, e.server.URL)
	require.NotEqual(t, other.URL, spa.URL)

	// The SPA's resource, converted as the server converts every OAuthClient: it declares no
	// allowedOrigins, so its redirect URI's origin is allowed.
	c, err := convert.Client(&v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Name: spaClientID, Namespace: "web", CreationTimestamp: metav1.Now()},
		Spec: v1alpha1.OAuthClientSpec{
			ClientID: spaClientID, Type: v1alpha1.ClientTypePublic, DisplayName: "Browser App", RedirectURIs: []string{redirectURI},
			GrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode}, Scopes: []string{"openid", "email"},
		},
	}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{spa.URL}, c.AllowedOrigins)
	e.reg.PutClient(c)

	ctx := e.tab(t)
	console := collectConsole(ctx, t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(spa.URL+"/"),
		chromedp.Click(chromedp.CSS("#signin")),
		signIn(userPassword),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitVisible(chromedp.CSS("#outcome")),
	))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(loc, redirectURI+"?"), "back on the app: %s", loc)
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#outcome")))
	require.NoError(t, err)
	var got spaOutcome
	require.NoError(t, json.Unmarshal([]byte(text), &got), "outcome %q", text)
	require.Empty(t, got.Error, "the page's JavaScript failed")
	assert.Equal(t, http.StatusOK, got.TokenStatus)
	assert.Equal(t, "Bearer", got.TokenType)
	assert.Equal(t, "openid email", got.Scope)
	assert.True(t, got.IDToken)
	assert.Equal(t, http.StatusOK, got.UserinfoStatus)
	assert.Equal(t, subject, got.Userinfo["sub"])
	assert.Equal(t, "alice@example.com", got.Userinfo["email"])
	require.NotEmpty(t, got.AccessToken)
	userinfo := fmt.Sprintf(`{headers: {Authorization: 'Bearer %s'}}`, got.AccessToken)

	t.Run("the app may not send credentials (cookies) with its requests", func(t *testing.T) {
		res, err := chromedp.Run(ctx, chromedp.Evaluate[string](fetchOutcome(e.server.URL+oauth2.UserinfoPath,
			fmt.Sprintf(`{credentials: 'include', headers: {Authorization: 'Bearer %s'}}`, got.AccessToken)), chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		assert.Equal(t, "blocked TypeError", res)
	})

	t.Run("a page on an origin no client allows cannot read the answers, which Go can", func(t *testing.T) {
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(other.URL+"/")))
		console.reset()
		for name, fetch := range map[string]string{
			"userinfo (preflighted)": fetchOutcome(e.server.URL+oauth2.UserinfoPath, userinfo),
			"token (a simple POST)": fetchOutcome(e.server.URL+oauth2.TokenPath,
				`{method: 'POST', body: new URLSearchParams({grant_type: 'refresh_token', refresh_token: 'x', client_id: '`+spaClientID+`'})}`),
		} {
			res, err := chromedp.Run(ctx, chromedp.Evaluate[string](fetch, chromedp.EvalAwaitPromise))
			require.NoError(t, err)
			assert.Equal(t, "blocked TypeError", res, name)
		}
		assert.Eventually(t, func() bool { return console.count("blocked by CORS policy") >= 2 }, stepTimeout, 50*time.Millisecond,
			"Chromium reports both as CORS errors; the console says:\n%s", console)

		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.server.URL+oauth2.UserinfoPath, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+got.AccessToken)
		req.Header.Set("Origin", other.URL)
		res, err := e.server.Client().Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, "the same request from Go is answered")
	})

	t.Run("any page may read the discovery document and the JWKS", func(t *testing.T) {
		issuer, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
			`fetch(%q).then(r => r.json()).then(m => fetch(m.jwks_uri).then(r => r.json()).then(k => k.keys.length > 0 ? m.issuer : 'no keys'))`,
			e.server.URL+oauth2.OpenIDConfigurationPath), chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		assert.Equal(t, e.server.URL, issuer)
	})
}

// pageHandler serves the HTML page at the paths, 404 elsewhere.
func pageHandler(page string, paths ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(paths, r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, page)
	})
}

// consoleLog collects what the tab's pages log (Chromium reports CORS errors there).
type consoleLog struct {
	mu      sync.Mutex
	entries []string
}

func collectConsole(ctx context.Context, t *testing.T) *consoleLog {
	t.Helper()
	c := &consoleLog{}
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		if entry, ok := ev.(*log.EventEntryAdded); ok {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.entries = append(c.entries, entry.Entry.Text)
		}
	}))
	return c
}

func (c *consoleLog) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = nil
}

func (c *consoleLog) count(substr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.entries {
		if strings.Contains(e, substr) {
			n++
		}
	}
	return n
}

func (c *consoleLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.entries, "\n")
}
