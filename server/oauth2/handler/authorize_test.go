package handler

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuthorizeRequestsThatCannotBeRedirectedShowAPage(t *testing.T) {
	env := newFlowEnv(t)
	_, challenge := pkcePair()
	valid := func(kv ...string) []string {
		base := map[string]string{"response_type": "code", "client_id": spaClientID, "redirect_uri": appRedirect,
			"state": "xyz", "code_challenge": challenge, "code_challenge_method": "S256"}
		for i := 0; i+1 < len(kv); i += 2 {
			base[kv[i]] = kv[i+1]
		}
		out := make([]string, 0, 2*len(base))
		for k, v := range base {
			if v != "-" {
				out = append(out, k, v)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		rawURL string
	}{
		{"an unknown client is refused", env.authorizeURL(valid("client_id", "nobody")...)},
		{"a missing client_id is refused", env.authorizeURL(valid("client_id", "-")...)},
		{"a repeated client_id is refused", env.authorizeURL(append(valid(), "client_id", webID)...)},
		{"a repeated redirect_uri is refused", env.authorizeURL(append(valid(), "redirect_uri", appRedirect)...)},
		{"an unregistered redirect_uri is refused", env.authorizeURL(valid("redirect_uri", "https://evil.example/cb")...)},
		{"a redirect_uri extended by a host suffix is refused", env.authorizeURL(valid("redirect_uri", "https://app.example/cb.evil.com")...)},
		{"a redirect_uri with a dot segment is refused", env.authorizeURL(valid("redirect_uri", "https://app.example/cb/../x")...)},
		{"a redirect_uri with userinfo before the host is refused", env.authorizeURL(valid("redirect_uri", "https://app.example@evil.example/cb")...)},
		{"a redirect_uri with the registered URI as userinfo is refused", env.authorizeURL(valid("redirect_uri", "https://app.example%2Fcb@evil.example/")...)},
		{"a redirect_uri with an @ in the path is refused", env.authorizeURL(valid("redirect_uri", "https://app.example/cb@evil.example")...)},
		{"a redirect_uri in another case is refused", env.authorizeURL(valid("redirect_uri", "https://APP.example/cb")...)},
		{"a redirect_uri with an explicit port is refused", env.authorizeURL(valid("redirect_uri", "https://app.example:443/cb")...)},
		{"a redirect_uri with a trailing slash is refused", env.authorizeURL(valid("redirect_uri", "https://app.example/cb/")...)},
		{"a redirect_uri with an added query is refused", env.authorizeURL(valid("redirect_uri", "https://app.example/cb?x=1")...)},
		{"a redirect_uri with a fragment is refused", env.authorizeURL(valid("redirect_uri", "https://app.example/cb#x")...)},
		{"a percent-encoded redirect_uri is refused", env.authorizeURL(valid("redirect_uri", "https://app.example/%63b")...)},
		{"an http redirect_uri for an https registration is refused", env.authorizeURL(valid("redirect_uri", "http://app.example/cb")...)},
		{"an OpenID Connect request without redirect_uri is refused", env.authorizeURL(valid("redirect_uri", "-", "scope", "openid")...)},
		{"a client with two redirect URIs must name one", env.authorizeURL(valid("client_id", multiID, "redirect_uri", "-")...)},
		{"a badly encoded query is refused", env.srv.URL + oauth2.AuthorizePath + "?client_id=spa&redirect_uri=%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := env.browser(t).Get(tt.rawURL)
			assert.Equal(t, http.StatusBadRequest, p.Status)
			assert.Nil(t, p.Location, "never redirected")
			assert.Empty(t, p.Header.Get("Location"))
			assert.Contains(t, p.Body, "Sign-in request rejected")
			assert.NotContains(t, p.Body, "evil.example\"", "no link to the attacker's URI")
			assertPageHeaders(t, p.Header)
		})
	}
}

func TestAuthorizeErrorsAreRedirectedWithStateAndIssuer(t *testing.T) {
	env := newFlowEnv(t)
	_, challenge := pkcePair()
	tests := []struct {
		name      string
		kv        []string
		wantError string
		wantState string
	}{
		{"a public client without PKCE gets invalid_request",
			[]string{"response_type", "code", "client_id", spaClientID, "redirect_uri", appRedirect, "state", "s1"}, "invalid_request", "s1"},
		{"plain PKCE is refused under the RequiredS256 policy",
			[]string{"response_type", "code", "client_id", spaClientID, "state", "s2", "code_challenge", strings.Repeat("a", 43), "code_challenge_method", "plain"},
			"invalid_request", "s2"},
		{"a challenge without a method is plain and refused under RequiredS256",
			[]string{"response_type", "code", "client_id", spaClientID, "state", "s3", "code_challenge", challenge}, "invalid_request", "s3"},
		{"an unknown challenge method is refused",
			[]string{"response_type", "code", "client_id", spaClientID, "state", "s4", "code_challenge", challenge, "code_challenge_method", "S512"},
			"invalid_request", "s4"},
		{"a malformed S256 challenge is refused",
			[]string{"response_type", "code", "client_id", spaClientID, "state", "s5", "code_challenge", "short", "code_challenge_method", "S256"},
			"invalid_request", "s5"},
		{"a method without a challenge is refused",
			[]string{"response_type", "code", "client_id", webID, "state", "s6", "code_challenge_method", "S256"}, "invalid_request", "s6"},
		{"response_type token is unsupported",
			[]string{"response_type", "token", "client_id", spaClientID, "state", "s7", "code_challenge", challenge, "code_challenge_method", "S256"},
			"unsupported_response_type", "s7"},
		{"a hybrid response_type is unsupported",
			[]string{"response_type", "code id_token", "client_id", spaClientID, "state", "s8", "code_challenge", challenge, "code_challenge_method", "S256"},
			"unsupported_response_type", "s8"},
		{"a missing response_type is invalid_request",
			[]string{"client_id", spaClientID, "state", "s9", "code_challenge", challenge, "code_challenge_method", "S256"}, "invalid_request", "s9"},
		{"an unknown scope is invalid_scope",
			[]string{"response_type", "code", "client_id", spaClientID, "scope", "read:projects admin:everything", "state", "s10",
				"code_challenge", challenge, "code_challenge_method", "S256"}, "invalid_scope", "s10"},
		{"a repeated state is invalid_request",
			[]string{"response_type", "code", "client_id", spaClientID, "state", "s11", "state", "s11b",
				"code_challenge", challenge, "code_challenge_method", "S256"}, "invalid_request", "s11"},
		{"a client without the authorization_code grant is unauthorized_client",
			[]string{"response_type", "code", "client_id", noCodeGrantID, "state", "s12", "code_challenge", challenge, "code_challenge_method", "S256"},
			"unauthorized_client", "s12"},
		{"response_mode fragment is refused",
			[]string{"response_type", "code", "client_id", spaClientID, "response_mode", "fragment", "state", "s13",
				"code_challenge", challenge, "code_challenge_method", "S256"}, "invalid_request", "s13"},
		{"request objects are not supported",
			[]string{"response_type", "code", "client_id", spaClientID, "request", "eyJ.x.y", "state", "s14",
				"code_challenge", challenge, "code_challenge_method", "S256"}, "request_not_supported", "s14"},
		{"prompt none combined with login is refused",
			[]string{"response_type", "code", "client_id", spaClientID, "prompt", "none login", "state", "s15",
				"code_challenge", challenge, "code_challenge_method", "S256"}, "invalid_request", "s15"},
		{"a negative max_age is refused",
			[]string{"response_type", "code", "client_id", spaClientID, "max_age", "-1", "state", "s16",
				"code_challenge", challenge, "code_challenge_method", "S256"}, "invalid_request", "s16"},
		{"prompt none without a session is login_required",
			[]string{"response_type", "code", "client_id", spaClientID, "prompt", "none", "state", "s17",
				"code_challenge", challenge, "code_challenge_method", "S256"}, "login_required", "s17"},
		{"an error without state has no state",
			[]string{"response_type", "token", "client_id", spaClientID}, "unsupported_response_type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := env.browser(t).Get(env.authorizeURL(tt.kv...))
			assert.Equal(t, http.StatusSeeOther, p.Status)
			cb := p.Callback(t)
			assert.Equal(t, "app.example", p.Location.Host)
			assert.Equal(t, "/cb", p.Location.Path)
			assert.Equal(t, tt.wantError, cb.Error)
			assert.NotEmpty(t, cb.ErrorDescription)
			assert.Equal(t, tt.wantState, cb.State)
			_, hasState := cb.Query["state"]
			assert.Equal(t, tt.wantState != "", hasState)
			assert.Equal(t, env.srv.URL, cb.Iss, "RFC 9207 iss")
			assert.Empty(t, cb.Code)
			assert.Equal(t, "no-store", p.Header.Get("Cache-Control"))
		})
	}
}

func TestAuthorizeRequestsThatProceedToTheLoginPage(t *testing.T) {
	env := newFlowEnv(t)
	_, challenge := pkcePair()
	tests := []struct {
		name string
		kv   []string
	}{
		{"the AuthMaster seed's request works as written",
			[]string{"response_type", "code", "client_id", spaClientID, "redirect_uri", appRedirect, "scope", "openid profile email",
				"state", "RANDOM_STATE", "code_challenge", challenge, "code_challenge_method", "S256"}},
		{"the guide's confidential request without PKCE works for an Optional client",
			[]string{"response_type", "code", "client_id", webID, "redirect_uri", appRedirect, "scope", "read:projects write:projects",
				"state", "random_state_string"}},
		{"a client with one redirect URI may omit it outside OpenID Connect",
			[]string{"response_type", "code", "client_id", spaClientID, "scope", "read:projects", "code_challenge", challenge, "code_challenge_method", "S256"}},
		{"plain PKCE is accepted under the Required policy",
			[]string{"response_type", "code", "client_id", plainID, "code_challenge", strings.Repeat("v", 43), "code_challenge_method", "plain"}},
		{"no scope at all is accepted",
			[]string{"response_type", "code", "client_id", spaClientID, "code_challenge", challenge, "code_challenge_method", "S256"}},
		{"unknown parameters are ignored",
			[]string{"response_type", "code", "client_id", spaClientID, "code_challenge", challenge, "code_challenge_method", "S256",
				"ui_locales", "de", "foo", "bar"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := env.browser(t).Get(env.authorizeURL(tt.kv...))
			require.Equal(t, http.StatusOK, p.Status, p.Body)
			assert.True(t, p.IsLogin())
			assert.Equal(t, oauth2.LoginPath, p.URL.Path)
			assertPageHeaders(t, p.Header)
		})
	}

	t.Run("the seeds' /oauth/authorize alias works", func(t *testing.T) {
		u := strings.Replace(env.authorizeURL("response_type", "code", "client_id", webID, "redirect_uri", appRedirect,
			"scope", "read:projects", "state", "random_state_string"), oauth2.AuthorizePath, "/oauth/authorize", 1)
		p := env.browser(t).Get(u)
		require.Equal(t, http.StatusOK, p.Status, p.Body)
		assert.True(t, p.IsLogin())
		assert.Equal(t, oauth2.LoginPath, p.URL.Path)
	})
	t.Run("a form POST to the authorization endpoint works", func(t *testing.T) {
		b := env.browser(t)
		p := b.Post(env.srv.URL+oauth2.AuthorizePath, url.Values{
			"response_type": {"code"}, "client_id": {spaClientID}, "redirect_uri": {appRedirect},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"},
		})
		require.Equal(t, http.StatusOK, p.Status, p.Body)
		assert.True(t, p.IsLogin())
	})
	t.Run("the login page names the client and prefills login_hint", func(t *testing.T) {
		p := env.browser(t).Get(env.authorizeURL("response_type", "code", "client_id", spaClientID, "code_challenge", challenge,
			"code_challenge_method", "S256", "login_hint", "alice"))
		assert.Contains(t, p.Body, "Project SPA")
		assert.Contains(t, p.Body, `value="alice"`)
		assert.Contains(t, p.Header.Get("Content-Security-Policy"), "form-action 'self' https://app.example;")
	})
}

// The page shown for an unknown client is the page shown for a known client with a redirect URI
// it has not registered (or without the one it needs): it does not tell which clients exist.
func TestTheAuthorizeErrorPageDoesNotTellWhichClientsExist(t *testing.T) {
	env := newFlowEnv(t)
	_, challenge := pkcePair()
	page := func(clientID, redirectURI string) string {
		kv := []string{"response_type", "code", "client_id", clientID, "state", "s", "code_challenge", challenge, "code_challenge_method", "S256"}
		if redirectURI != "" {
			kv = append(kv, "redirect_uri", redirectURI)
		}
		p := env.browser(t).Get(env.authorizeURL(kv...))
		require.Equal(t, http.StatusBadRequest, p.Status)
		require.Nil(t, p.Location)
		return p.Body
	}
	unknown := page("no-such-client", "https://evil.example/cb")
	assert.Equal(t, unknown, page(spaClientID, "https://evil.example/cb"), "a known client with an unregistered redirect URI")
	assert.Equal(t, unknown, page(multiID, "https://evil.example/cb"), "a known client with several redirect URIs")
	assert.Equal(t, page("no-such-client", ""), page(multiID, ""), "without a redirect URI that the client needs")
	assert.NotContains(t, unknown, "no-such-client")
}

// RFC 8252 7.3: a native app's loopback redirect URI is registered without a port and used with
// whatever port the app listens on; the token request repeats it with that port.
func TestALoopbackRedirectURIMatchesAnyPort(t *testing.T) {
	env := newFlowEnv(t)
	b := env.browser(t)
	verifier, challenge := pkcePair()
	const used = "http://127.0.0.1:51234/cb"
	p := b.Get(env.authorizeURL("response_type", "code", "client_id", nativeID, "redirect_uri", used, "scope", "openid",
		"state", "s", "code_challenge", challenge, "code_challenge_method", "S256"))
	p = b.Login(p, ownerName, ownerPassword)
	if p.IsConsent() {
		p = b.Decide(p, "allow")
	}
	require.NotNil(t, p.Location)
	assert.Equal(t, "127.0.0.1:51234", p.Location.Host, "the code goes to the port of the request")
	cb := p.Callback(t)
	require.NotEmpty(t, cb.Code, cb.ErrorDescription)

	status, body := env.exchangeForm(t, "grant_type", "authorization_code", "client_id", nativeID, "code", cb.Code,
		"redirect_uri", "http://127.0.0.1:5000/cb", "code_verifier", verifier)
	assert.Equal(t, http.StatusBadRequest, status, "the token request must repeat the port of the authorization request")
	assert.Equal(t, "invalid_grant", body["error"])

	for _, other := range []string{"http://localhost:51234/cb", "http://127.0.0.1:51234/cb/", "http://127.0.0.2:51234/cb"} {
		p := env.browser(t).Get(env.authorizeURL("response_type", "code", "client_id", nativeID, "redirect_uri", other,
			"state", "s", "code_challenge", challenge, "code_challenge_method", "S256"))
		assert.Equal(t, http.StatusBadRequest, p.Status, other)
		assert.Nil(t, p.Location, other)
	}
}

func TestALoopbackCodeIsExchangedWithItsPort(t *testing.T) {
	env := newFlowEnv(t)
	b := env.browser(t)
	verifier, challenge := pkcePair()
	const used = "http://127.0.0.1:40000/cb"
	p := b.Get(env.authorizeURL("response_type", "code", "client_id", nativeID, "redirect_uri", used, "scope", "openid",
		"state", "s", "code_challenge", challenge, "code_challenge_method", "S256"))
	p = b.Login(p, ownerName, ownerPassword)
	if p.IsConsent() {
		p = b.Decide(p, "allow")
	}
	cb := p.Callback(t)
	require.NotEmpty(t, cb.Code, cb.ErrorDescription)
	status, body := env.exchangeForm(t, "grant_type", "authorization_code", "client_id", nativeID, "code", cb.Code,
		"redirect_uri", used, "code_verifier", verifier)
	require.Equal(t, http.StatusOK, status, body)
	assert.NotEmpty(t, body["access_token"])
}

func TestTheRedirectURIKeepsItsQuery(t *testing.T) {
	env := newFlowEnv(t)
	p := env.browser(t).Get(env.authorizeURL("response_type", "token", "client_id", queryID, "state", "a&b=c"))
	require.NotNil(t, p.Location)
	q := p.Location.Query()
	assert.Equal(t, "a b", q.Get("tenant"))
	assert.Equal(t, "unsupported_response_type", q.Get("error"))
	assert.Equal(t, "a&b=c", q.Get("state"), "state is passed back verbatim")
}

func TestTheStylesheetIsServed(t *testing.T) {
	env := newFlowEnv(t)
	res, err := env.srv.Client().Get(env.srv.URL + oauth2.StylesheetPath)
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/css; charset=utf-8", res.Header.Get("Content-Type"))
	assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	assert.Contains(t, res.Header.Get("Cache-Control"), "max-age")
}
