package handler

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/browser"
	"github.com/latchkey-dev/latchkey/server/userauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loginPage opens the SPA's authorization request in the browser and returns the login page.
func (env *flowEnv) loginPage(t *testing.T, b *harness.Browser, kv ...string) harness.Page {
	t.Helper()
	_, challenge := pkcePair()
	p := b.Get(env.spaRequest(challenge, kv...))
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.True(t, p.IsLogin(), p.Body)
	return p
}

func sessionCookie(t *testing.T, b *harness.Browser, u string) *http.Cookie {
	t.Helper()
	parsed, err := url.Parse(u)
	require.NoError(t, err)
	for _, c := range b.Client.Jar.Cookies(parsed) {
		if strings.HasSuffix(c.Name, "latchkey-session") {
			return c
		}
	}
	return nil
}

func TestLogin(t *testing.T) {
	env := newFlowEnv(t)

	t.Run("the right password leads to the consent page and starts a session", func(t *testing.T) {
		b := env.browser(t)
		p := b.Login(env.loginPage(t, b), ownerName, ownerPassword)
		require.Equal(t, http.StatusOK, p.Status, p.Body)
		assert.True(t, p.IsConsent())
		assert.Equal(t, oauth2.ConsentPath, p.URL.Path)
		assert.NotNil(t, sessionCookie(t, b, env.srv.URL))
	})

	failures := []struct {
		name, username, password string
	}{
		{"a wrong password is refused", ownerName, "wrong"},
		{"an unknown user is refused with the same message", "nobody", ownerPassword},
		{"a disabled user is refused even with the right password", disabledName, ownerPassword},
		{"a user without a password hash is refused", noHashName, ""},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			b := env.browser(t)
			pw := tt.password
			if pw == "" {
				pw = "anything"
			}
			p := b.Login(env.loginPage(t, b), tt.username, pw)
			assert.Equal(t, http.StatusBadRequest, p.Status)
			assert.True(t, p.IsLogin(), "the form is shown again")
			assert.Contains(t, p.Body, msgBadCredentials)
			assert.NotContains(t, p.Body, "disabled")
			assert.Nil(t, p.Location, "no redirect")
			assert.Nil(t, sessionCookie(t, b, env.srv.URL), "no session")
			assertPageHeaders(t, p.Header)
		})
	}

	t.Run("an empty password asks for both fields", func(t *testing.T) {
		b := env.browser(t)
		p := b.Login(env.loginPage(t, b), ownerName, "")
		assert.Equal(t, http.StatusBadRequest, p.Status)
		assert.Contains(t, p.Body, msgMissingCredentials)
	})
	t.Run("the form can be retried after a failure", func(t *testing.T) {
		b := env.browser(t)
		p := b.Login(env.loginPage(t, b), ownerName, "wrong")
		p = b.Login(p, ownerName, ownerPassword)
		assert.True(t, p.IsConsent(), p.Body)
	})
}

func TestLoginSessionCookie(t *testing.T) {
	t.Run("over http the cookie has no prefix and is HttpOnly and SameSite=Lax", func(t *testing.T) {
		env := newFlowEnv(t)
		b := env.browser(t)
		lp := env.loginPage(t, b)
		form := lp.Hidden()
		form.Set("username", ownerName)
		form.Set("password", ownerPassword)
		b.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		res, err := b.Client.PostForm(env.srv.URL+oauth2.LoginPath, form)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		var c *http.Cookie
		for _, x := range res.Cookies() {
			if x.Name == "latchkey-session" {
				c = x
			}
		}
		require.NotNil(t, c)
		assert.True(t, c.HttpOnly)
		assert.False(t, c.Secure)
		assert.Equal(t, http.SameSiteLaxMode, c.SameSite)
		assert.Equal(t, "/", c.Path)
		assert.Len(t, c.Value, oauth2.SecretLength)
		assert.Equal(t, int((8 * time.Hour).Seconds()), c.MaxAge)
	})
	t.Run("over https the cookie is __Host- prefixed and Secure", func(t *testing.T) {
		env := newTLSFlowEnv(t)
		b := env.browser(t)
		p := b.Login(env.loginPage(t, b), ownerName, ownerPassword)
		require.True(t, p.IsConsent(), p.Body)
		c := sessionCookie(t, b, env.srv.URL)
		require.NotNil(t, c)
		assert.Equal(t, "__Host-latchkey-session", c.Name)
	})
}

func TestLoginLockout(t *testing.T) {
	t.Run("a username is locked after the maximum failures, even for the right password", func(t *testing.T) {
		env := newFlowEnv(t, func(c *Config) { c.Login.MaxFailuresPerUser = 3 })
		b := env.browser(t)
		p := env.loginPage(t, b)
		for range 3 {
			p = b.Login(p, ownerName, "wrong")
			require.Contains(t, p.Body, msgBadCredentials)
		}
		p = b.Login(p, ownerName, ownerPassword)
		assert.Equal(t, http.StatusTooManyRequests, p.Status)
		assert.Contains(t, p.Body, msgLocked)
		assert.Nil(t, sessionCookie(t, b, env.srv.URL))

		t.Run("and unlocked when the window ends", func(t *testing.T) {
			env.clock.Advance(userauth.DefaultFailureWindow + time.Second)
			b := env.browser(t)
			p := b.Login(env.loginPage(t, b), ownerName, ownerPassword)
			assert.True(t, p.IsConsent(), p.Body)
		})
	})
	t.Run("an unknown username locks the same way", func(t *testing.T) {
		env := newFlowEnv(t, func(c *Config) { c.Login.MaxFailuresPerUser = 2 })
		b := env.browser(t)
		p := env.loginPage(t, b)
		for range 2 {
			p = b.Login(p, "ghost", "wrong")
		}
		p = b.Login(p, "ghost", "wrong")
		assert.Contains(t, p.Body, msgLocked)
	})
	t.Run("a success resets the username's counter", func(t *testing.T) {
		env := newFlowEnv(t, func(c *Config) { c.Login.MaxFailuresPerUser = 3 })
		for range 2 {
			b := env.browser(t)
			p := env.loginPage(t, b)
			p = b.Login(p, ownerName, "wrong")
			p = b.Login(p, ownerName, "wrong")
			p = b.Login(p, ownerName, ownerPassword)
			require.True(t, p.IsConsent(), p.Body)
		}
	})
	t.Run("an address is locked after the maximum failures across usernames", func(t *testing.T) {
		env := newFlowEnv(t, func(c *Config) { c.Login.MaxFailuresPerAddress = 3 })
		b := env.browser(t)
		p := env.loginPage(t, b)
		for _, u := range []string{"u1", "u2", "u3"} {
			p = b.Login(p, u, "wrong")
			require.Contains(t, p.Body, msgBadCredentials)
		}
		p = b.Login(p, ownerName, ownerPassword)
		assert.Contains(t, p.Body, msgLocked)
	})
	t.Run("the address comes from the configured proxy header", func(t *testing.T) {
		env := newFlowEnv(t, func(c *Config) {
			c.Login.MaxFailuresPerAddress = 1
			c.Login.ClientIPHeader = "X-Forwarded-For"
		})
		b := env.browser(t)
		p := env.loginPage(t, b)
		form := p.Hidden()
		form.Set("username", "u1")
		form.Set("password", "wrong")
		p = b.Post(env.srv.URL+oauth2.LoginPath, form, "X-Forwarded-For", "198.51.100.7, 203.0.113.1")
		require.Contains(t, p.Body, msgBadCredentials)
		form.Set("username", ownerName)
		form.Set("password", ownerPassword)
		p = b.Post(env.srv.URL+oauth2.LoginPath, form, "X-Forwarded-For", "198.51.100.9, 203.0.113.2")
		assert.True(t, p.IsConsent(), "another address is not locked: %s", p.Body)
	})
	t.Run("failed attempts are slowed down", func(t *testing.T) {
		env := newFlowEnv(t, func(c *Config) { c.Login.FailureDelay = 150 * time.Millisecond })
		b := env.browser(t)
		p := env.loginPage(t, b)
		start := time.Now()
		b.Login(p, "nobody", "wrong")
		assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
	})
}

func TestLoginCSRF(t *testing.T) {
	env := newFlowEnv(t)
	tests := []struct {
		name    string
		mutate  func(form url.Values)
		headers []string
		fresh   bool // post from a browser without the binding cookie
	}{
		{"a missing CSRF token is refused", func(f url.Values) { f.Del("csrf_token") }, nil, false},
		{"a wrong CSRF token is refused", func(f url.Values) {
			f.Set("csrf_token", strings.Repeat("A", oauth2.SecretLength))
		}, nil, false},
		{"the token of the right request from another browser is refused", nil, nil, true},
		{"a cross-site POST is refused", nil, []string{"Sec-Fetch-Site", "cross-site"}, false},
		{"a POST from another origin is refused", nil, []string{"Origin", "https://evil.example"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := env.browser(t)
			form := env.loginPage(t, b).Hidden()
			form.Set("username", ownerName)
			form.Set("password", ownerPassword)
			if tt.mutate != nil {
				tt.mutate(form)
			}
			poster := b
			if tt.fresh {
				poster = env.browser(t)
			}
			p := poster.Post(env.srv.URL+oauth2.LoginPath, form, tt.headers...)
			assert.Equal(t, http.StatusForbidden, p.Status)
			assert.Contains(t, p.Body, "Request blocked")
			assert.Nil(t, sessionCookie(t, poster, env.srv.URL))
			assertPageHeaders(t, p.Header)
		})
	}
	t.Run("an unknown request ID is an expired request", func(t *testing.T) {
		b := env.browser(t)
		form := env.loginPage(t, b).Hidden()
		form.Set("request_id", strings.Repeat("B", oauth2.SecretLength))
		form.Set("username", ownerName)
		form.Set("password", ownerPassword)
		p := b.Post(env.srv.URL+oauth2.LoginPath, form)
		assert.Equal(t, http.StatusBadRequest, p.Status)
		assert.Contains(t, p.Body, msgExpired)
	})
	t.Run("a pending request expires after ten minutes", func(t *testing.T) {
		b := env.browser(t)
		form := env.loginPage(t, b).Hidden()
		env.clock.Advance(browser.DefaultRequestLifetime + time.Second)
		form.Set("username", ownerName)
		form.Set("password", ownerPassword)
		p := b.Post(env.srv.URL+oauth2.LoginPath, form)
		assert.Equal(t, http.StatusBadRequest, p.Status)
		assert.Contains(t, p.Body, msgExpired)
	})
	t.Run("the login page of another browser's request is not shown", func(t *testing.T) {
		b := env.browser(t)
		p := env.loginPage(t, b)
		other := env.browser(t).Get(p.URL.String())
		assert.Equal(t, http.StatusForbidden, other.Status)
		assert.NotContains(t, other.Body, p.Hidden().Get("csrf_token"))
	})
}

func TestPromptAndMaxAge(t *testing.T) {
	env := newFlowEnv(t)
	b := env.browser(t)
	env.signIn(t, b) // a session, and the SPA's consent remembered

	t.Run("prompt=none with a session and remembered consent returns a code", func(t *testing.T) {
		_, challenge := pkcePair()
		cb := b.Get(env.spaRequest(challenge, "prompt", "none")).Callback(t)
		assert.Empty(t, cb.Error)
		assert.NotEmpty(t, cb.Code)
	})
	t.Run("prompt=none needing consent is consent_required", func(t *testing.T) {
		_, challenge := pkcePair()
		cb := b.Get(env.authorizeURL("response_type", "code", "client_id", alwaysID, "state", "s",
			"code_challenge", challenge, "code_challenge_method", "S256", "prompt", "none")).Callback(t)
		assert.Equal(t, "consent_required", cb.Error)
		assert.Equal(t, "s", cb.State)
	})
	t.Run("prompt=login shows the login page despite the session", func(t *testing.T) {
		_, challenge := pkcePair()
		p := b.Get(env.spaRequest(challenge, "prompt", "login"))
		require.True(t, p.IsLogin(), p.Body)
		p = b.Login(p, ownerName, ownerPassword)
		cb := p.Callback(t)
		assert.NotEmpty(t, cb.Code, "consent is remembered, so the code follows the login")
	})
	t.Run("a fresh session satisfies max_age", func(t *testing.T) {
		_, challenge := pkcePair()
		cb := b.Get(env.spaRequest(challenge, "max_age", "300")).Callback(t)
		assert.NotEmpty(t, cb.Code)
	})
	t.Run("an older session than max_age shows the login page", func(t *testing.T) {
		env.clock.Advance(10 * time.Minute)
		_, challenge := pkcePair()
		p := b.Get(env.spaRequest(challenge, "max_age", "300"))
		assert.True(t, p.IsLogin(), p.Body)
		cb := b.Get(env.spaRequest(challenge, "max_age", "300", "prompt", "none")).Callback(t)
		assert.Equal(t, "login_required", cb.Error)
	})
	t.Run("max_age=0 always shows the login page", func(t *testing.T) {
		_, challenge := pkcePair()
		p := b.Get(env.spaRequest(challenge, "max_age", "0"))
		assert.True(t, p.IsLogin(), p.Body)
	})
	t.Run("a session of a user who was disabled since is no session", func(t *testing.T) {
		other := env.browser(t)
		env.signIn(t, other)
		u, _ := env.reg.Snapshot().User(ownerName)
		disabled := *u
		disabled.Disabled = true
		env.reg.PutUser(disabled)
		t.Cleanup(func() { env.reg.PutUser(*u) })
		_, challenge := pkcePair()
		cb := other.Get(env.spaRequest(challenge, "prompt", "none")).Callback(t)
		assert.Equal(t, "login_required", cb.Error)
	})
}
