package handler

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// The origins of the CORS tests.
const (
	spaOrigin  = "https://app.example"          // the SPA's (public) allowed origin, its redirect URI's
	confOrigin = "https://confidential.example" // a confidential client's redirect origin
	evilOrigin = "https://evil.example"         // nobody's
)

// newCORSEnv is the flow env where the SPA allows its redirect origin and a confidential
// client lists an origin of its own too (which convert never gives it): only the SPA's may be
// allowed.
func newCORSEnv(t *testing.T) *flowEnv {
	t.Helper()
	env := newFlowEnv(t)
	snap := env.reg.Snapshot()
	spa, ok := snap.Client(spaClientID)
	require.True(t, ok)
	withOrigin := *spa
	withOrigin.AllowedOrigins = []string{spaOrigin}
	env.reg.PutClient(withOrigin)
	web, ok := snap.Client(webID)
	require.True(t, ok)
	conf := *web
	conf.RedirectURIs, conf.AllowedOrigins = []string{confOrigin + "/cb"}, []string{confOrigin}
	env.reg.PutClient(conf)
	return env
}

// fromOrigin is the header of a request from a page at the origins (one Origin header each),
// with the key/value pairs after them.
func fromOrigin(origins []string, kv ...string) http.Header {
	h := http.Header{"Origin": origins}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// preflightOf is the header of a browser's preflight from origin for a POST with a JSON body.
func preflightOf(origin string) http.Header {
	return fromOrigin([]string{origin}, "Access-Control-Request-Method", http.MethodPost,
		"Access-Control-Request-Headers", "content-type")
}

// corsHeaders are the Access-Control-* headers of an answer.
func corsHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			out[k] = v
		}
	}
	return out
}

// assertVaryOrigin checks that the answer says it depends on the Origin header.
func assertVaryOrigin(t *testing.T, h http.Header) {
	t.Helper()
	var vary []string
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			vary = append(vary, strings.TrimSpace(f))
		}
	}
	assert.Contains(t, vary, "Origin", "Vary: %q", h.Values("Vary"))
}

func TestCORSPreflights(t *testing.T) {
	env := newCORSEnv(t)
	tests := []struct {
		name    string
		path    string
		header  http.Header
		methods string // the Access-Control-Allow-Methods of an allowed preflight; "" refused
		any     bool   // allowed with "*"
	}{
		{name: "the token endpoint allows a preflight from the SPA's origin",
			path: oauth2.TokenPath, header: preflightOf(spaOrigin), methods: "POST"},
		{name: "the token endpoint's /token alias allows it too",
			path: "/token", header: preflightOf(spaOrigin), methods: "POST"},
		{name: "the token endpoint's /oauth/token alias allows it too",
			path: "/oauth/token", header: preflightOf(spaOrigin), methods: "POST"},
		{name: "userinfo allows a preflight from the SPA's origin, with its methods",
			path: oauth2.UserinfoPath, header: preflightOf(spaOrigin), methods: "GET, HEAD, POST"},
		{name: "revocation allows a preflight from the SPA's origin",
			path: oauth2.RevocationPath, header: preflightOf(spaOrigin), methods: "POST"},
		{name: "revocation's /oauth/revoke alias allows it too",
			path: "/oauth/revoke", header: preflightOf(spaOrigin), methods: "POST"},
		{name: "the pushed authorization request endpoint allows a preflight from the SPA's origin",
			path: oauth2.PushedAuthorizationRequestPath, header: preflightOf(spaOrigin), methods: "POST"},
		{name: "the pushed authorization request endpoint refuses an origin no client allows",
			path: oauth2.PushedAuthorizationRequestPath, header: preflightOf(evilOrigin)},
		{name: "the openid-configuration allows any origin with *",
			path: oauth2.OpenIDConfigurationPath, header: preflightOf(evilOrigin), methods: "GET, HEAD", any: true},
		{name: "the oauth-authorization-server metadata allows any origin with *",
			path: oauth2.AuthorizationServerPath, header: preflightOf(evilOrigin), methods: "GET, HEAD", any: true},
		{name: "the JWKS allows any origin with *",
			path: oauth2.JWKSPath, header: preflightOf("null"), methods: "GET, HEAD", any: true},

		{name: "an origin no client allows is refused",
			path: oauth2.TokenPath, header: preflightOf(evilOrigin)},
		{name: "a confidential client's redirect origin is refused, even listed in its registry value",
			path: oauth2.TokenPath, header: preflightOf(confOrigin)},
		{name: "the null origin is refused",
			path: oauth2.UserinfoPath, header: preflightOf("null")},
		{name: "the SPA's origin in upper case is refused (browsers send lower case)",
			path: oauth2.TokenPath, header: preflightOf(strings.ToUpper(spaOrigin))},
		{name: "the SPA's origin with a slash is refused",
			path: oauth2.TokenPath, header: preflightOf(spaOrigin + "/")},
		{name: "the SPA's origin with its default port is refused",
			path: oauth2.RevocationPath, header: preflightOf(spaOrigin + ":443")},
		{name: "two Origin headers are refused",
			path: oauth2.TokenPath, header: fromOrigin([]string{spaOrigin, evilOrigin}, "Access-Control-Request-Method", "POST")},
		{name: "an OPTIONS request without Access-Control-Request-Method is no preflight",
			path: oauth2.TokenPath, header: fromOrigin([]string{spaOrigin})},
		{name: "an OPTIONS request without Origin is no preflight",
			path: oauth2.JWKSPath, header: http.Header{"Access-Control-Request-Method": {"GET"}}},
		{name: "introspection answers no CORS, whatever the origin",
			path: oauth2.IntrospectionPath, header: preflightOf(spaOrigin)},
		{name: "the authorization endpoint answers no CORS",
			path: oauth2.AuthorizePath, header: preflightOf(spaOrigin)},
		{name: "the login page answers no CORS",
			path: oauth2.LoginPath, header: preflightOf(spaOrigin)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := doT(t, env.srv, request{method: http.MethodOptions, path: tt.path, header: tt.header})
			assert.Empty(t, res.header.Get("Access-Control-Allow-Credentials"), "credentials are never allowed")
			if tt.methods == "" {
				assert.Equal(t, http.StatusMethodNotAllowed, res.status, "the route's 405")
				assert.NotEmpty(t, res.header.Get("Allow"))
				assert.Empty(t, corsHeaders(res.header), "no CORS header")
				if tt.header.Get("Origin") != "" && tt.path != oauth2.IntrospectionPath && tt.path != oauth2.AuthorizePath &&
					tt.path != oauth2.LoginPath {
					assertVaryOrigin(t, res.header)
				}
				return
			}
			require.Equal(t, http.StatusNoContent, res.status)
			assert.Nil(t, res.body)
			want := http.Header{
				"Access-Control-Allow-Origin":  {tt.header.Get("Origin")},
				"Access-Control-Allow-Methods": {tt.methods},
				"Access-Control-Allow-Headers": {"Authorization, Content-Type, DPoP, X-Request-Id"},
				"Access-Control-Max-Age":       {"600"},
			}
			if tt.any {
				want.Set("Access-Control-Allow-Origin", "*")
			}
			assert.Equal(t, want, corsHeaders(res.header))
			assertVaryOrigin(t, res.header)
		})
	}
}

// TestCORSActualRequests runs the SPA's calls as a browser sends them (with its Origin), and the
// same from other origins and from no browser at all.
func TestCORSActualRequests(t *testing.T) {
	env := newCORSEnv(t)
	code, verifier := env.signIn(t, env.browser(t))
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"client_id": {spaClientID}, "redirect_uri": {appRedirect}}.Encode()
	allowed := func(t *testing.T, res response) {
		t.Helper()
		assert.Equal(t, http.Header{
			"Access-Control-Allow-Origin":   {spaOrigin},
			"Access-Control-Expose-Headers": {"WWW-Authenticate, DPoP-Nonce, X-Request-Id"},
		}, corsHeaders(res.header), "the SPA's origin, never *, and no credentials")
		assertVaryOrigin(t, res.header)
		assert.Empty(t, res.header.Values("Set-Cookie"), "no cookies")
	}

	res := doT(t, env.srv, request{path: oauth2.TokenPath, contentType: formType, body: exchange, header: fromOrigin([]string{spaOrigin})})
	require.Equal(t, http.StatusOK, res.status, "%v", res.body)
	allowed(t, res)
	at := str(res.body["access_token"])
	require.NotEmpty(t, at)

	t.Run("userinfo answers the SPA's origin", func(t *testing.T) {
		res := doT(t, env.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer " + at,
			header: fromOrigin([]string{spaOrigin})})
		require.Equal(t, http.StatusOK, res.status)
		assert.Equal(t, subjectOf(ownerName), res.body["sub"])
		allowed(t, res)
	})
	t.Run("an error answers the SPA's origin too, so the page can read it", func(t *testing.T) {
		wrong := url.Values{"grant_type": {"authorization_code"}, "code": {"not-a-code"}, "code_verifier": {verifier},
			"client_id": {spaClientID}, "redirect_uri": {appRedirect}}.Encode()
		res := doT(t, env.srv, request{path: oauth2.TokenPath, contentType: formType, body: wrong, header: fromOrigin([]string{spaOrigin})})
		assert.Equal(t, "invalid_grant", res.body["error"])
		allowed(t, res)
		res = doT(t, env.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer nope",
			header: fromOrigin([]string{spaOrigin})})
		assert.Equal(t, http.StatusUnauthorized, res.status)
		assert.NotEmpty(t, res.header.Get("WWW-Authenticate"), "exposed to the page")
		allowed(t, res)
	})
	for _, o := range []string{evilOrigin, confOrigin, "null"} {
		t.Run("a request from "+o+" is answered without CORS headers", func(t *testing.T) {
			res := doT(t, env.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer " + at,
				header: fromOrigin([]string{o})})
			assert.Equal(t, http.StatusOK, res.status, "the server answers; the browser keeps the answer from the page")
			assert.Empty(t, corsHeaders(res.header))
			assertVaryOrigin(t, res.header)
		})
	}
	t.Run("a request without Origin gets no CORS headers and no Vary", func(t *testing.T) {
		res := doT(t, env.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer " + at})
		assert.Equal(t, http.StatusOK, res.status)
		assert.Empty(t, corsHeaders(res.header))
		assert.Empty(t, res.header.Values("Vary"))
	})
	t.Run("introspection answers the SPA's origin no CORS", func(t *testing.T) {
		res := doT(t, env.srv, request{path: oauth2.IntrospectionPath, contentType: formType, authorization: basic(skipID, webSecret),
			body: url.Values{"token": {at}}.Encode(), header: fromOrigin([]string{spaOrigin})})
		assert.Equal(t, http.StatusOK, res.status)
		assert.Empty(t, corsHeaders(res.header))
	})
	t.Run("revocation answers the SPA's origin", func(t *testing.T) {
		res := doT(t, env.srv, request{path: oauth2.RevocationPath, contentType: formType,
			body: url.Values{"token": {at}, "client_id": {spaClientID}}.Encode(), header: fromOrigin([]string{spaOrigin})})
		assert.Equal(t, http.StatusOK, res.status)
		allowed(t, res)
	})
	for _, path := range []string{oauth2.OpenIDConfigurationPath, oauth2.AuthorizationServerPath, oauth2.JWKSPath} {
		t.Run(path+" answers * to every origin and to none", func(t *testing.T) {
			for _, h := range []http.Header{fromOrigin([]string{evilOrigin}), nil} {
				res := doT(t, env.srv, request{method: http.MethodGet, path: path, header: h})
				assert.Equal(t, http.StatusOK, res.status)
				assert.Equal(t, http.Header{"Access-Control-Allow-Origin": {"*"}}, corsHeaders(res.header))
				assert.Empty(t, res.header.Values("Vary"), "the same answer for every origin: caches need no Vary")
			}
		})
	}
}

// TestACORSPreflightNeverReachesTheEndpoint sends preflights that carry a valid code exchange
// in their body: had any reached the token endpoint, it would have spent the code.
func TestACORSPreflightNeverReachesTheEndpoint(t *testing.T) {
	env := newCORSEnv(t)
	code, verifier := env.signIn(t, env.browser(t))
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"client_id": {spaClientID}, "redirect_uri": {appRedirect}}.Encode()
	for _, o := range []string{evilOrigin, spaOrigin} {
		res := doT(t, env.srv, request{method: http.MethodOptions, path: oauth2.TokenPath, contentType: formType, body: exchange, header: preflightOf(o)})
		assert.NotEqual(t, http.StatusOK, res.status, "from %s", o)
		assert.Empty(t, res.body["access_token"], "from %s", o)
	}
	status, body := env.tokenPost(t, formType, exchange)
	assert.Equal(t, http.StatusOK, status, "the code is unspent: %v", body)
}
