package handler

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/browser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// afterLogin opens an authorization URL, signs in when the login page shows, and returns the
// next page.
func (env *flowEnv) afterLogin(t *testing.T, b *webBrowser, rawURL string) page {
	t.Helper()
	p := b.get(rawURL)
	if p.isLogin() {
		p = b.login(p, ownerName, ownerPassword)
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
	require.True(t, p.isConsent(), p.body)
	body := html.UnescapeString(p.body)

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
		assert.Contains(t, body, "app.example")
	})
	t.Run("it has Allow and Deny buttons and no script", func(t *testing.T) {
		assert.Contains(t, body, `value="allow"`)
		assert.Contains(t, body, `value="deny"`)
		assert.NotContains(t, strings.ToLower(body), "<script")
		assert.Contains(t, body, `<html lang="en">`)
	})
	t.Run("its CSP lets the form's redirect reach the client", func(t *testing.T) {
		assertPageHeaders(t, p.header)
		assert.Contains(t, p.header.Get("Content-Security-Policy"), "form-action 'self' https://app.example;")
	})
	t.Run("another browser cannot see it", func(t *testing.T) {
		other := env.browser(t).get(p.url.String())
		assert.Equal(t, http.StatusForbidden, other.status)
		assert.NotContains(t, other.body, "alice")
	})
}

func TestConsentPolicies(t *testing.T) {
	t.Run("Remember asks once, then not again for the same scopes", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid read:projects", "1"))
		require.True(t, p.isConsent())
		cb := b.decide(p, "allow").callback(t)
		require.NotEmpty(t, cb.code)
		assert.Equal(t, "1", cb.state)

		cb = b.get(env.requestFor(spaClientID, "openid read:projects", "2")).callback(t)
		assert.NotEmpty(t, cb.code, "no page: session and consent are remembered")
		assert.Equal(t, "2", cb.state)
		cb = b.get(env.requestFor(spaClientID, "read:projects", "3")).callback(t)
		assert.NotEmpty(t, cb.code, "fewer scopes need no new consent")

		t.Run("a new scope asks again", func(t *testing.T) {
			p := b.get(env.requestFor(spaClientID, "openid read:projects write:projects", "4"))
			assert.True(t, p.isConsent(), p.body)
		})
		t.Run("prompt=consent asks again", func(t *testing.T) {
			p := b.get(env.requestFor(spaClientID, "openid", "5") + "&prompt=consent")
			assert.True(t, p.isConsent(), p.body)
		})
		t.Run("another user must consent on their own", func(t *testing.T) {
			u, _ := env.reg.Snapshot().User(ownerName)
			bob := *u
			bob.Source, bob.Username, bob.Subject = "bob", "bob", subjectOf("bob")
			env.reg.PutUser(bob)
			other := env.browser(t)
			p := other.login(other.get(env.requestFor(spaClientID, "openid read:projects", "6")), "bob", ownerPassword)
			assert.True(t, p.isConsent(), p.body)
		})
		t.Run("a remembered consent expires", func(t *testing.T) {
			env.clock.Advance(browser.DefaultConsentLifetime + browser.DefaultSessionLifetime)
			p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid read:projects", "7"))
			assert.True(t, p.isConsent(), p.body)
		})
	})
	t.Run("Skip never shows the page", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		p := env.afterLogin(t, b, env.requestFor(skipID, "openid read:projects", "s"))
		cb := p.callback(t)
		assert.NotEmpty(t, cb.code)
		assert.Equal(t, "s", cb.state)
		assert.Equal(t, env.srv.URL, cb.iss)
	})
	t.Run("Skip still shows the page for prompt=consent", func(t *testing.T) {
		env := newFlowEnv(t)
		p := env.afterLogin(t, env.browser(t), env.requestFor(skipID, "openid", "s")+"&prompt=consent")
		assert.True(t, p.isConsent(), p.body)
	})
	t.Run("Always shows the page every time", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		for i := range 2 {
			p := env.afterLogin(t, b, env.requestFor(alwaysID, "openid", "s"))
			require.True(t, p.isConsent(), "time %d: %s", i, p.body)
			require.NotEmpty(t, b.decide(p, "allow").callback(t).code)
		}
	})
	t.Run("Deny sends access_denied with state and iss", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid", "deny-state"))
		require.True(t, p.isConsent())
		p = b.decide(p, "deny")
		assert.Equal(t, http.StatusSeeOther, p.status)
		cb := p.callback(t)
		assert.Equal(t, "access_denied", cb.err)
		assert.Equal(t, "deny-state", cb.state)
		assert.Equal(t, env.srv.URL, cb.iss)
		assert.Empty(t, cb.code)

		t.Run("and nothing is remembered", func(t *testing.T) {
			p := b.get(env.requestFor(spaClientID, "openid", "again"))
			assert.True(t, p.isConsent())
		})
	})
	t.Run("a consent form cannot be submitted twice", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid", "s"))
		require.NotEmpty(t, b.decide(p, "allow").callback(t).code)
		again := b.decide(p, "allow")
		assert.Equal(t, http.StatusBadRequest, again.status)
		assert.Contains(t, again.body, msgExpired)
	})
	t.Run("a consent POST without a CSRF token is refused", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid", "s"))
		form := p.hidden()
		form.Del("csrf_token")
		form.Set("decision", "allow")
		res := b.post(env.srv.URL+oauth2.ConsentPath, form)
		assert.Equal(t, http.StatusForbidden, res.status)
	})
	t.Run("a consent POST after the session ended goes back to the login page", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		p := env.afterLogin(t, b, env.requestFor(spaClientID, "openid", "s"))
		env.clock.Advance(browser.DefaultSessionLifetime + 1)
		res := b.decide(p, "allow")
		// The pending request expired too, so the login page says so.
		assert.Nil(t, res.location)
		assert.NotContains(t, res.body, "code=")
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
	require.True(t, p.isConsent(), p.body)
	link := regexp.MustCompile(`href="(\.\./oauth2/login\?request_id=[^"]+)"`).FindStringSubmatch(p.body)
	require.Len(t, link, 2)
	target, err := p.url.Parse(html.UnescapeString(link[1]))
	require.NoError(t, err)
	p = b.login(b.get(target.String()), "bob", ownerPassword)
	require.True(t, p.isConsent(), p.body)
	assert.Contains(t, p.body, "Signed in as <strong>bob</strong>")
	cb := b.decide(p, "allow").callback(t)
	require.NotEmpty(t, cb.code)
}
