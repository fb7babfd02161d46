package handler

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/token"
)

// introspect asks the introspection endpoint about the token as the client; it requires 200.
func (e *userEnv) introspect(t testing.TB, clientID, tok string) map[string]any {
	t.Helper()
	res := e.form(t, oauth2.IntrospectionPath, clientID, url.Values{"token": {tok}})
	require.Equal(t, http.StatusOK, res.status, "%v", res.body)
	assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
	return res.body
}

// clientCredentialsToken gets a client_credentials access token.
func (e *userEnv) clientCredentialsToken(t testing.TB, clientID, scope string) string {
	t.Helper()
	res := e.form(t, oauth2.TokenPath, clientID, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
	require.Equal(t, http.StatusOK, res.status, "%v", res.body)
	return str(res.body["access_token"])
}

func TestIntrospection(t *testing.T) {
	e := newUserEnv(t)
	login := e.passwordLogin(t, appID, aliceName, alicePassword, "openid "+projectScope)
	at, rt := str(login["access_token"]), str(login["refresh_token"])
	_, atClaims := e.verifyJWT(t, at)
	iat := float64(e.clock.Now().Unix())

	t.Run("an active user access token shows its claims to a declared resource server", func(t *testing.T) {
		got := e.introspect(t, resourceID, at)
		assert.Equal(t, map[string]any{
			"active": true, "token_type": "Bearer", "scope": "openid " + projectScope, "client_id": appID,
			"username": aliceName, "sub": subjectOf(aliceName), "aud": "https://api.example.com", "iss": testIssuer,
			"exp": iat + 3600, "iat": iat, "jti": atClaims["jti"], "latchkey_family": token.RefreshFamily(rt),
		}, got)
	})
	t.Run("an active refresh token shows its record to its own client", func(t *testing.T) {
		got := e.introspect(t, appID, rt)
		assert.Equal(t, map[string]any{
			"active": true, "token_type": "refresh_token", "scope": "openid " + projectScope, "client_id": appID,
			"username": aliceName, "sub": subjectOf(aliceName), "iss": testIssuer,
			"exp": iat + oauth2.DefaultRefreshTokenLifetime.Seconds(), "iat": iat, "latchkey_family": token.RefreshFamily(rt),
		}, got)
	})
	t.Run("a client_credentials token has no username, sid or family", func(t *testing.T) {
		got := e.introspect(t, appID, e.clientCredentialsToken(t, resourceID, projectScope))
		assert.Equal(t, true, got["active"])
		assert.Equal(t, resourceID, got["sub"])
		assert.NotContains(t, got, "username")
		assert.NotContains(t, got, "sid")
		assert.NotContains(t, got, "latchkey_family")
	})

	inactive := map[string]any{"active": false}
	otherIssuer := func() string {
		kr, err := testKeyring()
		require.NoError(t, err)
		h, err := New(Config{Issuer: "https://evil.example", Registry: testRegistry(), Keys: kr, Now: e.clock.Now})
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		defer srv.Close()
		res := doT(t, srv, request{path: oauth2.TokenPath, contentType: formType, authorization: basic(billingID, billingSecret),
			body: "grant_type=client_credentials"})
		return str(res.body["access_token"])
	}()
	for _, tt := range []struct {
		name, client, token string
	}{
		{"another client's refresh token is inactive", otherAppID, rt},
		{"a malformed token is inactive", resourceID, "garbage"},
		{"a token with a broken signature is inactive", resourceID, at[:len(at)-4] + "AAAA"},
		{"a token of another issuer, signed with our keys, is inactive", resourceID, otherIssuer},
		{"an ID token is not an access token", resourceID, str(login["id_token"])},
		{"an unknown refresh token is inactive", appID, "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, inactive, e.introspect(t, tt.client, tt.token))
		})
	}
	t.Run("an expired access token is inactive", func(t *testing.T) {
		tok := str(e.passwordLogin(t, appID, aliceName, alicePassword, "openid")["access_token"])
		e.clock.Advance(time.Hour)
		defer e.clock.Advance(-time.Hour)
		assert.Equal(t, inactive, e.introspect(t, resourceID, tok))
	})
	t.Run("a disabled user's access token is inactive", func(t *testing.T) {
		tok := str(e.passwordLogin(t, appID, bobName, bobPassword, "openid")["access_token"])
		snap := e.reg.Snapshot()
		bob, _ := snap.User(bobName)
		disabled := *bob
		disabled.Disabled = true
		e.reg.PutUser(disabled)
		defer e.reg.PutUser(*bob)
		assert.Equal(t, inactive, e.introspect(t, resourceID, tok))
	})
	t.Run("a deleted client's access token is inactive", func(t *testing.T) {
		e.reg.PutClient(registry.Client{Source: "apps/temp", ID: "temp", Type: registry.Confidential,
			GrantTypes: []string{"client_credentials"}, SecretHash: registry.HashSecret([]byte(userSecret)), HasSecret: true})
		tok := e.clientCredentialsToken(t, "temp", "")
		assert.Equal(t, true, e.introspect(t, resourceID, tok)["active"])
		e.reg.DeleteClient("apps/temp")
		assert.Equal(t, inactive, e.introspect(t, resourceID, tok))
	})

	t.Run("a confidential client that is not a declared resource server may not introspect", func(t *testing.T) {
		res := e.form(t, oauth2.IntrospectionPath, esAppID, url.Values{"token": {at}})
		assert.Equal(t, http.StatusForbidden, res.status)
		assert.Equal(t, "unauthorized_client", res.body["error"])
		assert.NotContains(t, res.body, "active")
		assert.NotContains(t, res.body, "username")
	})
	t.Run("a public client may not introspect", func(t *testing.T) {
		res := e.form(t, oauth2.IntrospectionPath, spaID, url.Values{"token": {at}})
		assert.Equal(t, "invalid_client", res.body["error"])
	})
	t.Run("a wrong secret is invalid_client with a Basic challenge", func(t *testing.T) {
		res := doT(t, e.srv, request{path: oauth2.IntrospectionPath, contentType: formType,
			authorization: basic(resourceID, "wrong"), body: "token=" + at})
		assert.Equal(t, http.StatusUnauthorized, res.status)
		assert.Equal(t, "invalid_client", res.body["error"])
		assert.Contains(t, res.header.Get("WWW-Authenticate"), "Basic")
	})
	t.Run("no credentials is invalid_client", func(t *testing.T) {
		res := doT(t, e.srv, request{path: oauth2.IntrospectionPath, contentType: formType, body: "token=" + at})
		assert.Equal(t, "invalid_client", res.body["error"])
	})
	for _, tt := range []struct{ name, contentType, body string }{
		{"a missing token is invalid_request", formType, ""},
		{"a duplicated token is invalid_request", formType, "token=a&token=b"},
		{"a text body is invalid_request", "text/plain", "token=a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := doT(t, e.srv, request{path: oauth2.IntrospectionPath, contentType: tt.contentType,
				authorization: basic(resourceID, resourceSec), body: tt.body})
			assert.Equal(t, http.StatusBadRequest, res.status)
			assert.Equal(t, "invalid_request", res.body["error"])
		})
	}
	t.Run("a JSON body works", func(t *testing.T) {
		res := doT(t, e.srv, request{path: oauth2.IntrospectionPath, contentType: "application/json",
			authorization: basic(resourceID, resourceSec), body: `{"token":"` + at + `"}`})
		assert.Equal(t, true, res.body["active"])
	})
	t.Run("GET is 405", func(t *testing.T) {
		res := doT(t, e.srv, request{method: http.MethodGet, path: oauth2.IntrospectionPath})
		assert.Equal(t, http.StatusMethodNotAllowed, res.status)
	})
}

// BenchmarkIntrospect measures introspecting an active user access token through ServeHTTP
// (client_secret_basic, form body, memory store), per signing algorithm: hit, the token's
// verification answered by the cache (the same token every time, as a resource server asks
// about the token of each request); miss, the cache off (AccessTokenCacheSize -1), so every
// request verifies the signature. BenchmarkCachedVerifier in server/token has the cost of a
// real miss (hash, verify, insert). Besides ns/op (wall clock) it reports the process's CPU time
// per introspection and its inverse, introspections per CPU-second: the per-core rate, which
// other processes on a shared machine do not inflate.
func BenchmarkIntrospect(b *testing.B) {
	envs := map[string]*userEnv{
		"hit":  newUserEnv(b),
		"miss": newUserEnv(b, func(c *Config) { c.AccessTokenCacheSize = -1 }),
	}
	for _, alg := range keys.SupportedAlgorithms() {
		for _, mode := range []string{"hit", "miss"} {
			b.Run(alg+"/"+mode, func(b *testing.B) {
				e := envs[mode]
				client := map[string]string{"RS256": appID, "ES256": esAppID, "EdDSA": edAppID}[alg]
				at := str(e.passwordLogin(b, client, aliceName, alicePassword, "openid "+projectScope)["access_token"])
				payload := []byte("token=" + at + "&token_type_hint=access_token")
				p := newPoster(e.h, oauth2.IntrospectionPath, basic(resourceID, resourceSec), true)
				b.ReportAllocs()
				cpu := processCPU(b)
				for b.Loop() {
					if body := p.post(b, payload); !bytes.HasPrefix(body, []byte(`{"active":true`)) {
						b.Fatalf("inactive: %s", body)
					}
				}
				reportCPU(b, processCPU(b)-cpu, "introspections")
			})
		}
	}
}
