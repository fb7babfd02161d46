package seeds

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runDocument runs every example of a document in order. Token responses feed the placeholders of
// later examples (ACCESS_TOKEN, REFRESH_TOKEN, TOKEN_TO_REVOKE); each authorization_code exchange
// takes the code of the document's next authorize URL, opened and consented to first.
func runDocument(t *testing.T, s seed, v values) (ran map[string]int) {
	t.Helper()
	text := s.text(t)
	authorizes := authorizeURLs(text)
	ran = map[string]int{}
	for _, e := range curlCommands(text) {
		cmd := e.String()
		if skipURL.MatchString(cmd) {
			t.Logf("outside Latchkey's surface: %s", firstLine(cmd))
			continue
		}
		switch {
		case strings.Contains(cmd, "authorization_code"):
			require.NotEmpty(t, authorizes, "an authorization_code exchange needs the document's authorize URL")
			v["AUTHORIZATION_CODE"] = code(t, s, v, authorizes[0])
			v["AUTH_CODE"] = v["AUTHORIZATION_CODE"]
			asked, err := url.Parse(authorizes[0])
			require.NoError(t, err)
			authorizes = authorizes[1:]
			r := s.run(t, e, v)
			tokenShape(t, r, true)
			assert.Equal(t, asked.Query().Get("scope"), r.body["scope"], "the granted scopes are the requested ones")
			remember(v, r)
			ran["authorization_code"]++
		case strings.Contains(cmd, "grant_type=password") || strings.Contains(cmd, `"grant_type": "password"`):
			r := s.run(t, e, v)
			tokenShape(t, r, true)
			remember(v, r)
			ran["password"]++
		case strings.Contains(cmd, "client_credentials"):
			r := s.run(t, e, v)
			tokenShape(t, r, false)
			if strings.Contains(cmd, "scope=admin:read") {
				assert.Equal(t, "admin:read", r.body["scope"])
			}
			ran["client_credentials"]++
		case strings.Contains(cmd, "refresh_token"):
			old := v["REFRESH_TOKEN"]
			r := s.run(t, e, v)
			tokenShape(t, r, true)
			assert.NotEqual(t, old, r.body["refresh_token"], "refresh tokens rotate on every use")
			remember(v, r)
			ran["refresh_token"]++
		case strings.Contains(cmd, "/userinfo"):
			r := s.run(t, e, v)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			// sub is the User's stable subject (its uid), not the username; the username
			// is preferred_username, which the example's profile scope releases.
			assert.NotEmpty(t, r.body["sub"])
			assert.NotEqual(t, username, r.body["sub"])
			assert.Equal(t, username, r.body["preferred_username"])
			assert.Equal(t, "seed-user@example.com", r.body["email"])
			assert.Equal(t, true, r.body["email_verified"])
			ran["userinfo"]++
		case strings.Contains(cmd, "/revoke"):
			revoked := v["TOKEN_TO_REVOKE"]
			r := s.run(t, e, v)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			// The revoked refresh token (and its family) is dead now.
			status, body := postForm(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {revoked}})
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", body["error"])
			ran["revoke"]++
		case strings.Contains(cmd, "/.well-known/openid-configuration"):
			r := s.run(t, e, v)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			assert.Equal(t, srv.base, r.body["issuer"])
			for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint"} {
				assert.Contains(t, r.body, k)
			}
			ran["discovery"]++
		default:
			t.Fatalf("an example this test does not know: %s", cmd)
		}
	}
	return ran
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// remember keeps the tokens of a response for the placeholders of later examples.
func remember(v values, r response) {
	if at, ok := r.body["access_token"].(string); ok {
		v["ACCESS_TOKEN"] = at
	}
	if rt, ok := r.body["refresh_token"].(string); ok {
		v["REFRESH_TOKEN"] = rt
		v["YOUR_REFRESH_TOKEN"] = rt
		v["TOKEN_TO_REVOKE"] = rt
	}
}

// code opens a document's authorize URL, signs in and consents, and checks the redirect.
func code(t *testing.T, s seed, v values, raw string) string {
	t.Helper()
	u := s.rewrite(v, raw)
	want, err := url.Parse(u)
	require.NoError(t, err)
	loc := authorize(t, u)
	q := loc.Query()
	require.Empty(t, q.Get("error"), "authorize %s: %s", u, loc)
	assert.Equal(t, want.Query().Get("redirect_uri"), loc.Scheme+"://"+loc.Host+loc.Path)
	assert.Equal(t, want.Query().Get("state"), q.Get("state"), "state comes back verbatim")
	assert.Equal(t, srv.base, q.Get("iss"), "RFC 9207 iss")
	require.NotEmpty(t, q.Get("code"))
	return q.Get("code")
}

func postForm(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.base+"/oauth2/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	var body map[string]any
	require.NoError(t, jsonDecode(resp, &body))
	return resp.StatusCode, body
}

func baseValues() values {
	return values{
		"YOUR_CLIENT_ID": clientID, "YOUR_CLIENT_SECRET": clientSecret,
		"USER_USERNAME": username, "USER_PASSWORD": password,
		"CODE_CHALLENGE": pkceChallenge(), "ORIGINAL_CODE_VERIFIER": pkceVerifier, "CODE_VERIFIER": pkceVerifier,
	}
}

// TestAuthupDocuments: the password, client_credentials and refresh examples of the Authup
// documents (the flattened page and its markdown source) at /token.
func TestAuthupDocuments(t *testing.T) {
	for _, file := range []string{"000", "001"} {
		t.Run(file, func(t *testing.T) {
			ran := runDocument(t, seed{file: file, hosts: []string{"http://localhost:3001"}}, baseValues())
			assert.Equal(t, map[string]int{"password": 1, "client_credentials": 1, "refresh_token": 1}, ran)
		})
	}
}

// TestAuthMasterDocument: authorize with PKCE, the JSON-body code exchange, userinfo,
// client_credentials and refresh in JSON, and discovery, at /oauth2/*.
func TestAuthMasterDocument(t *testing.T) {
	ran := runDocument(t, seed{file: "002", hosts: []string{"https://api.auth.example.com", "https://auth.example.com"}}, baseValues())
	assert.Equal(t, map[string]int{"authorization_code": 1, "userinfo": 1, "client_credentials": 1, "refresh_token": 1, "discovery": 1}, ran)
}

// TestHelloDocument: Basic credentials (KEY:SECRET) at /v1/oauth/token, the base path dropped.
// Its refresh example needs a refresh token of the client KEY, which the document gets from a
// flow it does not show: the password grant gives one here.
func TestHelloDocument(t *testing.T) {
	v := baseValues()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.base+"/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(keyID, keySecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	var body map[string]any
	require.NoError(t, jsonDecode(resp, &body))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	v["REFRESH_TOKEN"] = body["refresh_token"].(string) //nolint:forcetypeassert // checked by the status

	ran := runDocument(t, seed{file: "003", hosts: []string{"https://api.hello.com/v1"}}, v)
	assert.Equal(t, map[string]int{"client_credentials": 1, "refresh_token": 1}, ran)
}

// TestOAuthGuideDocument: /oauth/authorize without and with PKCE, form code exchanges,
// client_credentials with scope=admin:read, refresh, revocation, and the JWKS of its quick
// reference.
func TestOAuthGuideDocument(t *testing.T) {
	s := seed{file: "004", hosts: []string{"https://auth.example.com"}}
	ran := runDocument(t, s, baseValues())
	assert.Equal(t, map[string]int{"authorization_code": 2, "client_credentials": 1, "refresh_token": 1, "revoke": 1}, ran)

	for _, line := range strings.Split(s.text(t), "\n") {
		if _, u, ok := strings.Cut(line, "JWKS endpoint: "); ok {
			resp, err := http.Get(s.rewrite(nil, strings.TrimSpace(u))) //nolint:noctx // test
			require.NoError(t, err)
			var set struct{ Keys []map[string]any }
			require.NoError(t, jsonDecode(resp, &set))
			_ = resp.Body.Close()
			assert.NotEmpty(t, set.Keys)
			return
		}
	}
	t.Fatal("the guide's quick reference names the JWKS endpoint")
}
