package handler

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/token"
)

// sessionEnd is one SessionEnded call.
type sessionEnd struct {
	sid, subject string
	clientIDs    []string
}

// recordingNotifier records the OP sessions that end; it fails when fail is set.
type recordingNotifier struct {
	mu   sync.Mutex
	ends []sessionEnd
	fail bool
}

func (n *recordingNotifier) SessionEnded(_ context.Context, sid, subject string, clientIDs []string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ends = append(n.ends, sessionEnd{sid: sid, subject: subject, clientIDs: clientIDs})
	if n.fail {
		return assert.AnError
	}
	return nil
}

func (n *recordingNotifier) recorded() []sessionEnd {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]sessionEnd(nil), n.ends...)
}

// codeTokens signs in (or reuses the browser's session) for the client with the scope and
// exchanges the code; it returns the token response.
func (env *flowEnv) codeTokens(t *testing.T, b *harness.Browser, clientID, secret string) map[string]any {
	t.Helper()
	verifier, challenge := pkcePair()
	p := b.Get(env.authorizeURL("response_type", "code", "client_id", clientID, "redirect_uri", appRedirect,
		"scope", "openid read:projects", "state", "s", "code_challenge", challenge, "code_challenge_method", "S256"))
	if p.IsLogin() {
		p = b.Login(p, ownerName, ownerPassword)
	}
	if p.IsConsent() {
		p = b.Decide(p, "allow")
	}
	cb := p.Callback(t)
	require.NotEmpty(t, cb.Code, "%s %s", cb.Error, cb.ErrorDescription)
	status, body := env.clientTokenPost(t, clientID, secret, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Code},
		"redirect_uri": {appRedirect}, "code_verifier": {verifier}})
	require.Equal(t, http.StatusOK, status, "%v", body)
	return body
}

// clientTokenPost posts a token request of the client: with Basic authentication when it has a
// secret, else with client_id.
func (env *flowEnv) clientTokenPost(t *testing.T, clientID, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	if secret == "" {
		form.Set("client_id", clientID)
		return env.tokenPost(t, formType, form.Encode())
	}
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID) + ":" + url.QueryEscape(secret)))
	return env.tokenPost(t, formType, form.Encode(), "Authorization", "Basic "+basic)
}

// silentAuthorize is a prompt=none request of the SPA; it returns the callback.
func (env *flowEnv) silentAuthorize(t *testing.T, b *harness.Browser) harness.Callback {
	t.Helper()
	_, challenge := pkcePair()
	return b.Get(env.authorizeURL("response_type", "code", "client_id", spaClientID, "redirect_uri", appRedirect,
		"scope", "openid read:projects", "code_challenge", challenge, "code_challenge_method", "S256", "prompt", "none")).Callback(t)
}

// logoutURL builds a logout request URL from key/value pairs.
func (env *flowEnv) logoutURL(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return env.srv.URL + oauth2.LogoutPath + "?" + v.Encode()
}

// claimsOf returns the unverified claims of a JWT (the tests verify signatures elsewhere).
func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

// kvHas reports whether key/value pairs hold the key.
func kvHas(kv []string, key string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == key {
			return true
		}
	}
	return false
}

// refreshFormStatus refreshes a token of the client (secret "" for a public one).
func (env *flowEnv) refreshFormStatus(t *testing.T, clientID, secret, rt string) (int, map[string]any) {
	t.Helper()
	return env.clientTokenPost(t, clientID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// refreshForm refreshes a token and requires success.
func (env *flowEnv) refreshForm(t *testing.T, clientID, secret, rt string) map[string]any {
	t.Helper()
	status, body := env.refreshFormStatus(t, clientID, secret, rt)
	require.Equal(t, http.StatusOK, status, "%v", body)
	return body
}

// foreignIDToken is an ID token signed with the test keys for another issuer.
func foreignIDToken(t *testing.T) string {
	t.Helper()
	kr, err := testKeyring()
	require.NoError(t, err)
	iss, err := token.NewIssuer(token.Config{Issuer: "https://other.example", Keys: kr})
	require.NoError(t, err)
	idt, err := iss.IssueIDToken(token.IDTokenRequest{Client: &registry.Client{ID: spaClientID}, User: &registry.User{Subject: subjectOf(ownerName)}})
	require.NoError(t, err)
	return idt
}

func TestRPInitiatedLogout(t *testing.T) {
	rec := &recordingNotifier{}
	env := newFlowEnv(t, func(c *Config) { c.SessionEnd = rec })

	t.Run("the OP session is in sid of the ID and access tokens, the family in latchkey_family", func(t *testing.T) {
		b := env.browser(t)
		tok := env.codeTokens(t, b, spaClientID, "")
		idc, atc := claimsOf(t, str(tok["id_token"])), claimsOf(t, str(tok["access_token"]))
		require.NotEmpty(t, idc["sid"])
		assert.Equal(t, idc["sid"], atc["sid"])
		assert.NotEmpty(t, atc["latchkey_family"])
		assert.NotEqual(t, atc["sid"], atc["latchkey_family"])
		second := env.codeTokens(t, b, skipID, webSecret)
		assert.Equal(t, idc["sid"], claimsOf(t, str(second["id_token"]))["sid"], "every client signed in through the session shares its sid")
		refreshed := env.refreshForm(t, skipID, webSecret, str(second["refresh_token"]))
		assert.Equal(t, idc["sid"], claimsOf(t, str(refreshed["access_token"]))["sid"], "a refresh keeps the session's sid")
	})
	t.Run("a valid hint and a registered redirect URI end the session and land on the client with state (oidcc-rp-initiated-logout)", func(t *testing.T) {
		before := len(rec.recorded())
		b := env.browser(t)
		tok := env.codeTokens(t, b, spaClientID, "")
		first := env.codeTokens(t, b, skipID, webSecret)
		sid := claimsOf(t, str(tok["id_token"]))["sid"]
		p := b.Get(env.logoutURL("id_token_hint", str(tok["id_token"]), "post_logout_redirect_uri", appLoggedOut, "state", "bye-1"))
		require.NotNil(t, p.Location, "%d %s", p.Status, p.Body)
		assert.Equal(t, appLoggedOut+"?state=bye-1", p.Location.String())
		assert.Nil(t, sessionCookie(t, b, env.srv.URL), "the session cookie is cleared")
		cb := env.silentAuthorize(t, b)
		assert.Equal(t, "login_required", cb.Error)

		ends := rec.recorded()
		require.Len(t, ends, before+1)
		assert.Equal(t, sessionEnd{sid: str(sid), subject: subjectOf(ownerName), clientIDs: []string{skipID, spaClientID}}, ends[before])

		status, body := env.refreshFormStatus(t, skipID, webSecret, str(first["refresh_token"]))
		assert.Equal(t, http.StatusBadRequest, status, "the first-party client revokes refresh tokens at logout: %v", body)
		status, body = env.refreshFormStatus(t, spaClientID, "", str(tok["refresh_token"]))
		assert.Equal(t, http.StatusOK, status, "the SPA keeps its refresh token: %v", body)
	})
	t.Run("an expired hint still identifies the user and the client", func(t *testing.T) {
		b := env.browser(t)
		tok := env.codeTokens(t, b, spaClientID, "")
		env.clock.Advance(2 * time.Hour)
		p := b.Get(env.logoutURL("id_token_hint", str(tok["id_token"]), "post_logout_redirect_uri", appLoggedOut))
		require.NotNil(t, p.Location, "%d %s", p.Status, p.Body)
		assert.Equal(t, appLoggedOut, p.Location.String())
		assert.Equal(t, "login_required", env.silentAuthorize(t, b).Error)
	})
	t.Run("a valid hint and a registered redirect URI without state land on the client without state (oidcc-rp-initiated-logout-no-state)", func(t *testing.T) {
		b := env.browser(t)
		tok := env.codeTokens(t, b, spaClientID, "")
		p := b.Get(env.logoutURL("id_token_hint", str(tok["id_token"]), "post_logout_redirect_uri", appLoggedOut))
		require.NotNil(t, p.Location, "%d %s", p.Status, p.Body)
		assert.Equal(t, appLoggedOut, p.Location.String())
		assert.Equal(t, "login_required", env.silentAuthorize(t, b).Error)
	})
	t.Run("a valid hint without a redirect URI ends the session and says so (oidcc-rp-initiated-logout-no-post-logout-redirect-uri)", func(t *testing.T) {
		b := env.browser(t)
		tok := env.codeTokens(t, b, spaClientID, "")
		p := b.Get(env.logoutURL("id_token_hint", str(tok["id_token"]), "state", "s-3"))
		assert.Equal(t, http.StatusOK, p.Status)
		assert.Nil(t, p.Location, "no redirect without a post_logout_redirect_uri")
		assert.Contains(t, p.Body, "signed out")
		assert.Equal(t, "login_required", env.silentAuthorize(t, b).Error)
	})
	t.Run("a loopback post-logout redirect URI matches on any port", func(t *testing.T) {
		b := env.browser(t)
		tok := env.codeTokens(t, b, spaClientID, "")
		p := b.Get(env.logoutURL("id_token_hint", str(tok["id_token"]), "post_logout_redirect_uri", "http://127.0.0.1:4711/cb"))
		require.NotNil(t, p.Location, "%d %s", p.Status, p.Body)
		assert.Equal(t, "http://127.0.0.1:4711/cb", p.Location.String())
	})

	refused := []struct {
		name string
		kv   func(idToken string) []string
	}{
		{"an unregistered post_logout_redirect_uri is refused (oidcc-rp-initiated-logout-bad-post-logout-redirect-uri)", func(idt string) []string {
			return []string{"id_token_hint", idt, "post_logout_redirect_uri", "https://evil.example/bye"}
		}},
		{"a registered post_logout_redirect_uri with an added query is refused (oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri)", func(idt string) []string {
			return []string{"id_token_hint", idt, "post_logout_redirect_uri", appLoggedOut + "?x=1"}
		}},
		{"another client's post_logout_redirect_uri is refused", func(idt string) []string {
			return []string{"id_token_hint", idt, "post_logout_redirect_uri", "https://app.example/other"}
		}},
		{"a post_logout_redirect_uri without hint or client_id is refused", func(string) []string {
			return []string{"post_logout_redirect_uri", appLoggedOut}
		}},
		{"a client_id that is not the hint's audience is refused", func(idt string) []string {
			return []string{"id_token_hint", idt, "client_id", webID}
		}},
		{"a hint with alg none is refused", func(idt string) []string {
			parts := strings.Split(idt, ".")
			return []string{"id_token_hint", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."}
		}},
		{"a hint signed by someone else is refused (oidcc-rp-initiated-logout-bad-id-token-hint)", func(string) []string {
			return []string{"id_token_hint", foreignIDToken(t)}
		}},
		{"a hint whose signature was modified is refused (oidcc-rp-initiated-logout-modified-id-token-hint)", func(idt string) []string {
			parts := strings.Split(idt, ".")
			sig := []byte(parts[2])
			if i := len(sig) / 2; sig[i] == 'A' { // one character in the middle of the signature
				sig[i] = 'B'
			} else {
				sig[i] = 'A'
			}
			return []string{"id_token_hint", parts[0] + "." + parts[1] + "." + string(sig)}
		}},
		{"a repeated parameter is refused", func(idt string) []string {
			return []string{"state", "a", "state", "b"}
		}},
	}
	for _, tt := range refused {
		t.Run(tt.name+", shown and never redirected, and the user stays signed in", func(t *testing.T) {
			b := env.browser(t)
			tok := env.codeTokens(t, b, spaClientID, "")
			p := b.Get(env.logoutURL(tt.kv(str(tok["id_token"]))...))
			assert.Equal(t, http.StatusBadRequest, p.Status)
			assert.Nil(t, p.Location)
			assert.Contains(t, p.Body, "Sign-out request rejected")
			assertPageHeaders(t, p.Header)
			assert.NotEmpty(t, env.silentAuthorize(t, b).Code, "still signed in")
		})
	}

	confirm := []struct {
		name string
		kv   []string
	}{
		{"no parameters (oidcc-rp-initiated-logout-no-params)", nil},
		{"only state (oidcc-rp-initiated-logout-only-state)", []string{"state", "s-1"}},
		{"client_id and a registered redirect URI (oidcc-rp-initiated-logout-no-id-token-hint)", []string{"client_id", spaClientID, "post_logout_redirect_uri", appLoggedOut, "state", "s-2"}},
	}
	for _, tt := range confirm {
		t.Run("a request without hint ("+tt.name+") asks the user to confirm", func(t *testing.T) {
			b := env.browser(t)
			env.codeTokens(t, b, spaClientID, "")
			p := b.Get(env.logoutURL(tt.kv...))
			require.Equal(t, http.StatusOK, p.Status, p.Body)
			assert.Nil(t, p.Location)
			assert.Contains(t, p.Body, "Sign out?")
			assertPageHeaders(t, p.Header)
			form := p.Hidden()
			require.NotEmpty(t, form.Get("csrf_token"))
			form.Set("decision", "logout")
			out := b.Post(env.srv.URL+oauth2.LogoutPath, form)
			if kvHas(tt.kv, "post_logout_redirect_uri") {
				require.NotNil(t, out.Location, "%d %s", out.Status, out.Body)
				assert.Equal(t, appLoggedOut+"?state=s-2", out.Location.String())
			} else {
				assert.Equal(t, http.StatusOK, out.Status)
				assert.Contains(t, out.Body, "You are signed out")
			}
			assert.Equal(t, "login_required", env.silentAuthorize(t, b).Error)
		})
	}
	t.Run("without a session, a request without hint says the user is signed out", func(t *testing.T) {
		p := env.browser(t).Get(env.logoutURL())
		assert.Equal(t, http.StatusOK, p.Status)
		assert.Contains(t, p.Body, "You are signed out")
	})
	csrf := []struct {
		name    string
		mutate  func(url.Values)
		headers []string
	}{
		{"a wrong CSRF token", func(f url.Values) { f.Set("csrf_token", strings.Repeat("A", oauth2.SecretLength)) }, nil},
		{"a missing CSRF token", func(f url.Values) { f.Del("csrf_token") }, nil},
		{"a cross-site POST", nil, []string{"Sec-Fetch-Site", "cross-site"}},
	}
	for _, tt := range csrf {
		t.Run("a confirmation with "+tt.name+" is refused and the user stays signed in", func(t *testing.T) {
			b := env.browser(t)
			env.codeTokens(t, b, spaClientID, "")
			form := b.Get(env.logoutURL()).Hidden()
			form.Set("decision", "logout")
			if tt.mutate != nil {
				tt.mutate(form)
			}
			p := b.Post(env.srv.URL+oauth2.LogoutPath, form, tt.headers...)
			assert.Equal(t, http.StatusForbidden, p.Status)
			assert.NotEmpty(t, env.silentAuthorize(t, b).Code, "still signed in")
		})
	}
	t.Run("staying signed in keeps the session", func(t *testing.T) {
		b := env.browser(t)
		env.codeTokens(t, b, spaClientID, "")
		form := b.Get(env.logoutURL()).Hidden()
		form.Set("decision", "stay")
		p := b.Post(env.srv.URL+oauth2.LogoutPath, form)
		assert.Contains(t, p.Body, "You are still signed in")
		assert.NotEmpty(t, env.silentAuthorize(t, b).Code)
	})
	t.Run("a hint posted cross-site without the session cookie still ends its session", func(t *testing.T) {
		b := env.browser(t)
		tok := env.codeTokens(t, b, spaClientID, "")
		p := env.browser(t).Post(env.srv.URL+oauth2.LogoutPath, url.Values{
			"id_token_hint": {str(tok["id_token"])}, "post_logout_redirect_uri": {appLoggedOut}, "state": {"x"},
		}, "Sec-Fetch-Site", "cross-site")
		require.NotNil(t, p.Location, "%d %s", p.Status, p.Body)
		assert.Equal(t, appLoggedOut+"?state=x", p.Location.String())
		assert.Equal(t, "login_required", env.silentAuthorize(t, b).Error)
	})
	t.Run("a failing notifier does not stop the logout", func(t *testing.T) {
		rec.mu.Lock()
		rec.fail = true
		rec.mu.Unlock()
		defer func() { rec.mu.Lock(); rec.fail = false; rec.mu.Unlock() }()
		b := env.browser(t)
		tok := env.codeTokens(t, b, spaClientID, "")
		p := b.Get(env.logoutURL("id_token_hint", str(tok["id_token"]), "post_logout_redirect_uri", appLoggedOut))
		require.NotNil(t, p.Location, "%d %s", p.Status, p.Body)
		assert.Equal(t, "login_required", env.silentAuthorize(t, b).Error)
	})
}

// hintFor is an ID token that the server's own keys sign for the client and OP session: what a
// client that took no part in the session could only get by forging, to check the server's
// guard rather than the signature.
func (env *flowEnv) hintFor(t *testing.T, clientID, sid string) string {
	t.Helper()
	kr, err := testKeyring()
	require.NoError(t, err)
	iss, err := token.NewIssuer(token.Config{Issuer: env.srv.URL, Keys: kr, Now: env.clock.Now})
	require.NoError(t, err)
	idt, err := iss.IssueIDToken(token.IDTokenRequest{Client: &registry.Client{ID: clientID},
		User: &registry.User{Subject: subjectOf(ownerName)}, SessionID: sid})
	require.NoError(t, err)
	return idt
}

func TestOPSessionLifecycle(t *testing.T) {
	rec := &recordingNotifier{}
	env := newFlowEnv(t, func(c *Config) { c.SessionEnd = rec })

	t.Run("signing in again as the same user keeps the OP session", func(t *testing.T) {
		b := env.browser(t)
		sid := claimsOf(t, str(env.codeTokens(t, b, spaClientID, "")["id_token"]))["sid"]
		_, challenge := pkcePair()
		p := b.Get(env.authorizeURL("response_type", "code", "client_id", spaClientID, "redirect_uri", appRedirect,
			"scope", "openid read:projects", "code_challenge", challenge, "code_challenge_method", "S256", "prompt", "login"))
		require.True(t, p.IsLogin(), p.Body)
		require.NotEmpty(t, b.Login(p, ownerName, ownerPassword).Callback(t).Code)
		again := claimsOf(t, str(env.codeTokens(t, b, spaClientID, "")["id_token"]))["sid"]
		assert.Equal(t, sid, again)
	})
	t.Run("signing in as another user in the same browser ends the first user's session", func(t *testing.T) {
		before := len(rec.recorded())
		b := env.browser(t)
		sid := str(claimsOf(t, str(env.codeTokens(t, b, spaClientID, "")["id_token"]))["sid"])
		_, challenge := pkcePair()
		p := b.Get(env.authorizeURL("response_type", "code", "client_id", skipID, "redirect_uri", appRedirect,
			"scope", "openid", "code_challenge", challenge, "code_challenge_method", "S256", "prompt", "login"))
		require.NotEmpty(t, b.Login(p, otherName, ownerPassword).Callback(t).Code)
		ends := rec.recorded()
		require.Len(t, ends, before+1)
		assert.Equal(t, sessionEnd{sid: sid, subject: subjectOf(ownerName), clientIDs: []string{spaClientID}}, ends[before])
	})
	t.Run("a hint of a client that took no part in the session does not end it", func(t *testing.T) {
		b := env.browser(t)
		sid := str(claimsOf(t, str(env.codeTokens(t, b, spaClientID, "")["id_token"]))["sid"])
		hint := env.hintFor(t, skipID, sid)
		p := env.browser(t).Post(env.srv.URL+oauth2.LogoutPath, url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {appLoggedOut}})
		require.NotNil(t, p.Location, "%d %s", p.Status, p.Body)
		assert.NotEmpty(t, env.silentAuthorize(t, b).Code, "still signed in")
		p = b.Get(env.logoutURL("id_token_hint", hint))
		assert.Contains(t, p.Body, "Sign out?", "the browser's own session is the user's to end")
		assert.NotEmpty(t, env.silentAuthorize(t, b).Code, "still signed in")
	})
	t.Run("a hint of another session ends that one and asks about the browser's", func(t *testing.T) {
		laptop, phone := env.browser(t), env.browser(t)
		env.codeTokens(t, laptop, spaClientID, "")
		phoneTok := env.codeTokens(t, phone, spaClientID, "")
		p := laptop.Get(env.logoutURL("id_token_hint", str(phoneTok["id_token"])))
		assert.Contains(t, p.Body, "Sign out?")
		assert.Equal(t, "login_required", env.silentAuthorize(t, phone).Error)
		assert.NotEmpty(t, env.silentAuthorize(t, laptop).Code)
	})
}

func TestLogoutIsRateLimitedPerAddress(t *testing.T) {
	env := newFlowEnv(t)
	b := env.browser(t)
	for i := range 60 {
		p := b.Get(env.logoutURL())
		require.Equal(t, http.StatusOK, p.Status, "request %d", i)
	}
	p := b.Get(env.logoutURL())
	assert.Equal(t, http.StatusTooManyRequests, p.Status)
	assert.NotEmpty(t, p.Header.Get("Retry-After"))
	assert.Contains(t, p.Body, "Try again in a moment")
	env.clock.Advance(2 * time.Second)
	assert.Equal(t, http.StatusOK, b.Get(env.logoutURL()).Status, "the bucket refills at one a second")
	assert.NotEqual(t, http.StatusTooManyRequests, b.Post(env.srv.URL+oauth2.AccountPath, url.Values{}).Status,
		"the account page's forms have a bucket of their own")
}

func TestLogoutDoesNotTellWhichClientsExist(t *testing.T) {
	env := newFlowEnv(t)
	b := env.browser(t)
	env.codeTokens(t, b, spaClientID, "")
	known := b.Get(env.logoutURL("client_id", spaClientID))
	unknown := b.Get(env.logoutURL("client_id", "no-such-client"))
	assert.Equal(t, known.Status, unknown.Status)
	assert.Contains(t, unknown.Body, "Sign out?")
	knownBad := b.Get(env.logoutURL("client_id", spaClientID, "post_logout_redirect_uri", "https://evil.example/"))
	unknownBad := b.Get(env.logoutURL("client_id", "no-such-client", "post_logout_redirect_uri", "https://evil.example/"))
	assert.Equal(t, http.StatusBadRequest, knownBad.Status)
	assert.Equal(t, knownBad.Body, unknownBad.Body)
}

func TestLogoutAndWithdrawalAreAudited(t *testing.T) {
	events := &recordingAuditor{}
	env := newFlowEnv(t, func(c *Config) { c.Audit = events })
	b := env.browser(t)
	env.codeTokens(t, b, spaClientID, "") // a grant, with consent, to withdraw
	p := env.accountPage(t, b)
	env.accountPost(t, b, p, "action", "withdraw", "client_id", spaClientID)
	tok := env.codeTokens(t, b, spaClientID, "")
	require.NotNil(t, b.Get(env.logoutURL("id_token_hint", str(tok["id_token"]), "post_logout_redirect_uri", appLoggedOut)).Location)

	named := func(name string) []oauth2.AuditEvent {
		events.mu.Lock()
		defer events.mu.Unlock()
		var out []oauth2.AuditEvent
		for _, e := range events.events {
			if e.Event == name {
				out = append(out, e)
			}
		}
		return out
	}
	withdrawn := named(oauth2.AuditConsentWithdrawn)
	require.Len(t, withdrawn, 1)
	assert.Equal(t, spaClientID, withdrawn[0].ClientID)
	assert.Equal(t, subjectOf(ownerName), withdrawn[0].Subject)
	ended := named(oauth2.AuditSessionEnded)
	require.Len(t, ended, 1)
	assert.Equal(t, "rp_initiated_logout", ended[0].Reason)
	assert.Equal(t, spaClientID, ended[0].ClientID)
	assert.Equal(t, subjectOf(ownerName), ended[0].Subject)
	assert.Equal(t, "success", ended[0].Outcome)
	for _, e := range append(withdrawn, ended...) {
		assert.NotContains(t, e.TokenRef+e.Reason, str(tok["id_token"]), "no token in the audit log")
	}
}
