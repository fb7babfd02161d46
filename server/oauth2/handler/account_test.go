package handler

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// accountPage opens the account page in a signed-in browser.
func (env *flowEnv) accountPage(t *testing.T, b *harness.Browser) harness.Page {
	t.Helper()
	p := b.Get(env.srv.URL + oauth2.AccountPath)
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.Contains(t, p.Body, "Your account")
	assertPageHeaders(t, p.Header)
	return p
}

// accountPost posts one of the account page's forms with the page's CSRF token.
func (env *flowEnv) accountPost(t *testing.T, b *harness.Browser, p harness.Page, kv ...string) harness.Page {
	t.Helper()
	form := url.Values{"csrf_token": {p.Hidden().Get("csrf_token")}}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	return b.Post(env.srv.URL+oauth2.AccountPath, form)
}

// sessionIDs returns the OP session IDs the account page lists.
func sessionIDs(p harness.Page) []string {
	var out []string
	for _, m := range regexp.MustCompile(`name="sid" value="([^"]+)"`).FindAllStringSubmatch(p.Body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestAccountPage(t *testing.T) {
	rec := &recordingNotifier{}
	env := newFlowEnv(t, func(c *Config) { c.SessionEnd = rec })

	t.Run("without a session the account page asks to sign in, then shows the account", func(t *testing.T) {
		b := env.browser(t)
		p := b.Get(env.srv.URL + oauth2.AccountPath)
		require.True(t, p.IsLogin(), "%d %s", p.Status, p.Body)
		assert.Contains(t, p.Body, "your account")
		p = b.Login(p, ownerName, ownerPassword)
		require.Equal(t, http.StatusOK, p.Status, p.Body)
		assert.Contains(t, p.Body, "Signed in as <strong>alice</strong>")
		assert.Len(t, sessionIDs(p), 1)
	})
	t.Run("the page lists the consents, sessions and applications of the user", func(t *testing.T) {
		b := env.browser(t)
		tok := env.codeTokens(t, b, spaClientID, "")
		p := env.accountPage(t, b)
		assert.Contains(t, p.Body, "Project SPA")
		assert.Contains(t, p.Body, "openid read:projects")
		assert.Contains(t, p.Body, "(this browser)")
		assert.Contains(t, sessionIDs(p), str(claimsOf(t, str(tok["id_token"]))["sid"]))
		assert.Contains(t, p.Body, `id="grants"`)
	})
	t.Run("withdrawing a consent revokes the client's tokens and asks for consent again", func(t *testing.T) {
		b := env.browser(t)
		tok := env.codeTokens(t, b, spaClientID, "")
		p := env.accountPage(t, b)
		out := env.accountPost(t, b, p, "action", "withdraw", "client_id", spaClientID)
		require.Equal(t, http.StatusOK, out.Status, out.Body)
		assert.Contains(t, out.Body, `id="no-consents"`)
		status, body := env.refreshFormStatus(t, spaClientID, "", str(tok["refresh_token"]))
		assert.Equal(t, http.StatusBadRequest, status, "%v", body)
		assert.Equal(t, "invalid_grant", body["error"])
		active := env.introspectStatus(t, str(tok["access_token"]))
		assert.Equal(t, false, active, "the access token is revoked with its grant")
		assert.Equal(t, "consent_required", env.silentAuthorize(t, b).Error)
	})
	t.Run("ending this browser's session signs the user out and notifies", func(t *testing.T) {
		before := len(rec.recorded())
		b := env.browser(t)
		tok := env.codeTokens(t, b, spaClientID, "")
		p := env.accountPage(t, b)
		sid := str(claimsOf(t, str(tok["id_token"]))["sid"])
		out := env.accountPost(t, b, p, "action", "end_session", "sid", sid)
		require.Equal(t, http.StatusOK, out.Status, out.Body)
		assert.Contains(t, out.Body, "You are signed out")
		assert.Equal(t, "login_required", env.silentAuthorize(t, b).Error)
		ends := rec.recorded()
		require.Len(t, ends, before+1)
		assert.Equal(t, sessionEnd{sid: sid, subject: subjectOf(ownerName), clientIDs: []string{spaClientID}}, ends[before])
	})
	t.Run("ending another session of the user signs that browser out only", func(t *testing.T) {
		laptop, phone := env.browser(t), env.browser(t)
		env.codeTokens(t, laptop, spaClientID, "")
		phoneTok := env.codeTokens(t, phone, spaClientID, "")
		phoneSID := str(claimsOf(t, str(phoneTok["id_token"]))["sid"])
		p := env.accountPage(t, laptop)
		require.Contains(t, sessionIDs(p), phoneSID)
		out := env.accountPost(t, laptop, p, "action", "end_session", "sid", phoneSID)
		require.Equal(t, http.StatusOK, out.Status, out.Body)
		assert.NotContains(t, sessionIDs(out), phoneSID)
		assert.Equal(t, "login_required", env.silentAuthorize(t, phone).Error)
		assert.NotEmpty(t, env.silentAuthorize(t, laptop).Code)
	})
	t.Run("a session of someone else cannot be ended", func(t *testing.T) {
		b := env.browser(t)
		env.codeTokens(t, b, spaClientID, "")
		p := env.accountPage(t, b)
		out := env.accountPost(t, b, p, "action", "end_session", "sid", "AAAAAAAAAAAAAAAAAAAAAA")
		assert.Equal(t, http.StatusBadRequest, out.Status)
		assert.NotEmpty(t, env.silentAuthorize(t, b).Code)
	})
	csrf := []struct {
		name    string
		token   string
		headers []string
	}{
		{"a wrong CSRF token", strings.Repeat("A", oauth2.SecretLength), nil},
		{"no CSRF token", "", nil},
		{"a cross-site POST", "", []string{"Sec-Fetch-Site", "cross-site"}},
		{"a POST from another origin", "", []string{"Origin", "https://evil.example"}},
	}
	for _, tt := range csrf {
		t.Run("a form with "+tt.name+" is refused and changes nothing", func(t *testing.T) {
			b := env.browser(t)
			env.codeTokens(t, b, spaClientID, "")
			p := env.accountPage(t, b)
			form := url.Values{"action": {"withdraw"}, "client_id": {spaClientID}, "csrf_token": {tt.token}}
			if tt.token == "" && tt.headers != nil {
				form.Set("csrf_token", p.Hidden().Get("csrf_token"))
			}
			out := b.Post(env.srv.URL+oauth2.AccountPath, form, tt.headers...)
			assert.Equal(t, http.StatusForbidden, out.Status)
			assert.NotEmpty(t, env.silentAuthorize(t, b).Code, "the consent stays")
		})
	}
}

// introspectStatus introspects a token as the first-party resource server and returns active.
func (env *flowEnv) introspectStatus(t *testing.T, tok string) any {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.srv.URL+oauth2.IntrospectionPath, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", formType)
	req.SetBasicAuth(skipID, webSecret)
	res, err := env.srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	require.Equal(t, http.StatusOK, res.StatusCode, "%v", out)
	return out["active"]
}
