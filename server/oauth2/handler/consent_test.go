package handler

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/browser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// afterLogin opens an authorization URL, signs in when the login page shows, and returns the
// next page.
func (env *flowEnv) afterLogin(t *testing.T, b *harness.Browser, rawURL string) harness.Page {
	t.Helper()
	p := b.Get(rawURL)
	if p.IsLogin() {
		p = b.Login(p, ownerName, ownerPassword)
	}
	return p
}

func (env *flowEnv) requestFor(clientID, scope, state string) string {
	_, challenge := pkcePair()
	return env.authorizeURL("response_type", "code", "client_id", clientID, "redirect_uri", appRedirect,
		"scope", scope, "state", state, "code_challenge", challenge, "code_challenge_method", "S256")
}

func TestConsentPage(t *testing.T) {
	env := newFlowEnv(t)
	b := env.browser(t)
	p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid email read:projects offline_access", "s"))
	require.True(t, p.IsConsent(), p.Body)
	body := html.UnescapeString(p.Body)

	t.Run("it names the client by its display name", func(t *testing.T) {
		assert.Contains(t, body, "Project SPA")
	})
	t.Run("it lists each scope with its Scope resource's description", func(t *testing.T) {
		assert.Contains(t, body, readProjectDesc)
		assert.Contains(t, body, "read:projects")
	})
	t.Run("built-in scopes have built-in descriptions", func(t *testing.T) {
		for _, sc := range []string{oauth2.ScopeEmail, oauth2.ScopeOpenID, oauth2.ScopeOfflineAccess} {
			desc := oauth2.ScopeDescription(env.reg.Snapshot(), sc)
			require.NotEmpty(t, desc, sc)
			assert.Contains(t, body, desc)
		}
	})
	t.Run("it shows who is signed in and where the answer goes", func(t *testing.T) {
		assert.Contains(t, body, "Signed in as <strong>alice</strong>")
		assert.Contains(t, body, `<strong class="host">app.example</strong>`)
	})
	t.Run("a client that did not register itself is not marked unverified", func(t *testing.T) {
		assert.NotContains(t, body, "Unverified app")
	})
	t.Run("it has Allow and Deny buttons and no script", func(t *testing.T) {
		assert.Contains(t, body, `value="allow"`)
		assert.Contains(t, body, `value="deny"`)
		assert.NotContains(t, strings.ToLower(body), "<script")
		assert.Contains(t, body, `<html lang="en">`)
	})
	t.Run("its CSP lets the form's redirect reach the client", func(t *testing.T) {
		assertPageHeaders(t, p.Header)
		assert.Contains(t, p.Header.Get("Content-Security-Policy"), "form-action 'self' https://app.example;")
	})
	t.Run("another browser cannot see it", func(t *testing.T) {
		other := env.browser(t).Get(p.URL.String())
		assert.Equal(t, http.StatusForbidden, other.Status)
		assert.NotContains(t, other.Body, "alice")
	})
}

func TestConsentPageMarksRegisteredClientsUnverified(t *testing.T) {
	env := newFlowEnv(t)
	c, ok := env.reg.Snapshot().Client(spaClientID)
	require.True(t, ok)
	registered := *c
	registered.Registered = true // as the registrars and controllers/convert set it
	env.reg.PutClient(registered)

	p := env.afterLogin(t, env.browser(t), env.requestFor(spaClientID, "openid read:projects", "s"))
	require.True(t, p.IsConsent(), p.Body)
	note := regexp.MustCompile(`<p class="unverified" role="note">(.*?)</p>`).FindStringSubmatch(p.Body)
	require.Len(t, note, 2, "an unverified note: %s", p.Body)
	assert.Contains(t, note[1], "Unverified app")
	assert.Contains(t, note[1], "<strong>app.example</strong>", "the note names where the answer goes")
	assert.Contains(t, p.Body, `<strong class="host">app.example</strong>`)
	assert.Contains(t, p.Body, "Project SPA")
}

func TestConsentPolicies(t *testing.T) {
	t.Run("Remember asks once, then not again for the same scopes", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid read:projects", "1"))
		require.True(t, p.IsConsent())
		cb := b.Decide(p, "allow").Callback(t)
		require.NotEmpty(t, cb.Code)
		assert.Equal(t, "1", cb.State)

		cb = b.Get(env.requestFor(spaClientID, "openid read:projects", "2")).Callback(t)
		assert.NotEmpty(t, cb.Code, "no page: session and consent are remembered")
		assert.Equal(t, "2", cb.State)
		cb = b.Get(env.requestFor(spaClientID, "read:projects", "3")).Callback(t)
		assert.NotEmpty(t, cb.Code, "fewer scopes need no new consent")

		t.Run("a new scope asks again", func(t *testing.T) {
			p := b.Get(env.requestFor(spaClientID, "openid read:projects write:projects", "4"))
			assert.True(t, p.IsConsent(), p.Body)
		})
		t.Run("prompt=consent asks again", func(t *testing.T) {
			p := b.Get(env.requestFor(spaClientID, "openid", "5") + "&prompt=consent")
			assert.True(t, p.IsConsent(), p.Body)
		})
		t.Run("another user must consent on their own", func(t *testing.T) {
			u, _ := env.reg.Snapshot().User(ownerName)
			bob := *u
			bob.Source, bob.Username, bob.Subject = "bob", "bob", subjectOf("bob")
			env.reg.PutUser(bob)
			other := env.browser(t)
			p := other.Login(other.Get(env.requestFor(spaClientID, "openid read:projects", "6")), "bob", ownerPassword)
			assert.True(t, p.IsConsent(), p.Body)
		})
		t.Run("a remembered consent expires", func(t *testing.T) {
			env.clock.Advance(browser.DefaultConsentLifetime + browser.DefaultSessionLifetime)
			p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid read:projects", "7"))
			assert.True(t, p.IsConsent(), p.Body)
		})
	})
	t.Run("Skip never shows the page", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		p := env.afterLogin(t, b, env.requestFor(skipID, "openid read:projects", "s"))
		cb := p.Callback(t)
		assert.NotEmpty(t, cb.Code)
		assert.Equal(t, "s", cb.State)
		assert.Equal(t, env.srv.URL, cb.Iss)
	})
	t.Run("Skip still shows the page for prompt=consent", func(t *testing.T) {
		env := newFlowEnv(t)
		p := env.afterLogin(t, env.browser(t), env.requestFor(skipID, "openid", "s")+"&prompt=consent")
		assert.True(t, p.IsConsent(), p.Body)
	})
	t.Run("Always shows the page every time", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		for i := range 2 {
			p := env.afterLogin(t, b, env.requestFor(alwaysID, "openid", "s"))
			require.True(t, p.IsConsent(), "time %d: %s", i, p.Body)
			require.NotEmpty(t, b.Decide(p, "allow").Callback(t).Code)
		}
	})
	t.Run("Deny sends access_denied with state and iss", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid", "deny-state"))
		require.True(t, p.IsConsent())
		p = b.Decide(p, "deny")
		assert.Equal(t, http.StatusSeeOther, p.Status)
		cb := p.Callback(t)
		assert.Equal(t, "access_denied", cb.Error)
		assert.Equal(t, "deny-state", cb.State)
		assert.Equal(t, env.srv.URL, cb.Iss)
		assert.Empty(t, cb.Code)

		t.Run("and nothing is remembered", func(t *testing.T) {
			p := b.Get(env.requestFor(spaClientID, "openid", "again"))
			assert.True(t, p.IsConsent())
		})
	})
	t.Run("a consent form cannot be submitted twice", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid", "s"))
		require.NotEmpty(t, b.Decide(p, "allow").Callback(t).Code)
		again := b.Decide(p, "allow")
		assert.Equal(t, http.StatusBadRequest, again.Status)
		assert.Contains(t, again.Body, msgExpired)
	})
	t.Run("a consent POST without a CSRF token is refused", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid", "s"))
		form := p.Hidden()
		form.Del("csrf_token")
		form.Set("decision", "allow")
		res := b.Post(env.srv.URL+oauth2.ConsentPath, form)
		assert.Equal(t, http.StatusForbidden, res.Status)
	})
	t.Run("a consent POST after the session ended goes back to the login page", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid", "s"))
		env.clock.Advance(browser.DefaultSessionLifetime + 1)
		res := b.Decide(p, "allow")
		// The pending request expired too, so the login page says so.
		assert.Nil(t, res.Location)
		assert.NotContains(t, res.Body, "code=")
	})
}

func TestNotYouSignsInAsSomeoneElse(t *testing.T) {
	env := newFlowEnv(t)
	u, _ := env.reg.Snapshot().User(ownerName)
	bob := *u
	bob.Source, bob.Username, bob.Subject = "bob", "bob", subjectOf("bob")
	env.reg.PutUser(bob)
	b := env.browser(t)
	p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid", "s"))
	require.True(t, p.IsConsent(), p.Body)
	link := regexp.MustCompile(`href="(\.\./oauth2/login\?request_id=[^"]+)"`).FindStringSubmatch(p.Body)
	require.Len(t, link, 2)
	target, err := p.URL.Parse(html.UnescapeString(link[1]))
	require.NoError(t, err)
	p = b.Login(b.Get(target.String()), "bob", ownerPassword)
	require.True(t, p.IsConsent(), p.Body)
	assert.Contains(t, p.Body, "Signed in as <strong>bob</strong>")
	cb := b.Decide(p, "allow").Callback(t)
	require.NotEmpty(t, cb.Code)
}
