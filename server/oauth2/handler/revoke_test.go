package handler

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
)

func TestRevocation(t *testing.T) {
	e := newUserEnv(t)
	revoke := func(t *testing.T, path, clientID string, v url.Values) response {
		t.Helper()
		res := e.form(t, path, clientID, v)
		return res
	}

	t.Run("revoking a refresh token revokes its family and the access tokens issued from it", func(t *testing.T) {
		first := e.passwordLogin(t, appID, aliceName, alicePassword, "openid")
		res := e.refresh(t, appID, str(first["refresh_token"]), "")
		require.Equal(t, http.StatusOK, res.status)
		rt, at := str(res.body["refresh_token"]), str(res.body["access_token"])
		assert.Equal(t, true, e.introspect(t, resourceID, str(first["access_token"]))["active"])

		res = revoke(t, oauth2.RevocationPath, appID, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}})
		assert.Equal(t, http.StatusOK, res.status)
		assert.Nil(t, res.body, "empty body")
		assert.Equal(t, "no-store", res.header.Get("Cache-Control"))

		assert.Equal(t, "invalid_grant", e.refresh(t, appID, rt, "").body["error"])
		assert.Equal(t, false, e.introspect(t, resourceID, at)["active"])
		assert.Equal(t, false, e.introspect(t, resourceID, str(first["access_token"]))["active"],
			"the access token from before the rotation too")
		assert.Equal(t, false, e.introspect(t, appID, rt)["active"])
		ui := doT(t, e.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer " + at})
		assert.Equal(t, http.StatusUnauthorized, ui.status)
	})
	t.Run("revoking an access token revokes it alone, at the seed's /oauth/revoke", func(t *testing.T) {
		body := e.passwordLogin(t, spaID, aliceName, alicePassword, "openid")
		at := str(body["access_token"])
		res := revoke(t, "/oauth/revoke", spaID, url.Values{"token": {at}, "token_type_hint": {"refresh_token"}})
		assert.Equal(t, http.StatusOK, res.status, "a wrong hint does not matter")
		assert.Equal(t, false, e.introspect(t, resourceID, at)["active"])
		assert.Equal(t, http.StatusOK, e.refresh(t, spaID, str(body["refresh_token"]), "").status,
			"the grant lives on")
	})
	t.Run("another client's tokens are not revoked, and the answer is 200", func(t *testing.T) {
		body := e.passwordLogin(t, appID, aliceName, alicePassword, "openid")
		for _, tok := range []string{str(body["access_token"]), str(body["refresh_token"])} {
			res := revoke(t, oauth2.RevocationPath, otherAppID, url.Values{"token": {tok}})
			assert.Equal(t, http.StatusOK, res.status)
		}
		assert.Equal(t, true, e.introspect(t, resourceID, str(body["access_token"]))["active"])
		assert.Equal(t, http.StatusOK, e.refresh(t, appID, str(body["refresh_token"]), "").status)
	})
	for _, tt := range []struct{ name, token string }{
		{"an unknown refresh token is 200", "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"a malformed token is 200", "garbage"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, http.StatusOK, revoke(t, oauth2.RevocationPath, appID, url.Values{"token": {tt.token}}).status)
		})
	}
	for _, tt := range []struct {
		name, contentType, auth, body, wantError string
		wantStatus                               int
	}{
		{"a missing token is invalid_request", formType, basic(appID, appSecret), "", "invalid_request", 400},
		{"a duplicated token is invalid_request", formType, basic(appID, appSecret), "token=a&token=b", "invalid_request", 400},
		{"a duplicated hint is invalid_request", formType, basic(appID, appSecret), "token=a&token_type_hint=x&token_type_hint=y", "invalid_request", 400},
		{"a bad content type is invalid_request", "text/plain", basic(appID, appSecret), "token=a", "invalid_request", 400},
		{"a wrong secret is invalid_client", formType, basic(appID, "wrong"), "token=a", "invalid_client", 401},
		{"no client is invalid_client", formType, "", "token=a", "invalid_client", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := doT(t, e.srv, request{path: oauth2.RevocationPath, contentType: tt.contentType, authorization: tt.auth, body: tt.body})
			assert.Equal(t, tt.wantStatus, res.status)
			assert.Equal(t, tt.wantError, res.body["error"])
		})
	}
}

// BenchmarkRevoke measures revoking a refresh token (its family) through ServeHTTP with the
// memory store. Each iteration revokes a fresh token of its own family, stored outside the
// timer (as the token set makes them, without signing anything).
func BenchmarkRevoke(b *testing.B) {
	e := newUserEnv(b)
	now := e.clock.Now()
	const batch = 4096
	tokens := make([]string, 0, batch)
	refill := func() {
		tokens = tokens[:0]
		for range batch {
			fam, err := token.NewFamilyID()
			require.NoError(b, err)
			rt, err := token.NewRefreshToken(fam)
			require.NoError(b, err)
			require.NoError(b, e.store.CreateRefresh(b.Context(), store.HashOf(rt), store.RefreshToken{
				FamilyID: fam, ClientID: appID, Subject: subjectOf(aliceName), Scopes: []string{projectScope},
				IssuedAt: now, ExpiresAt: now.Add(oauth2.DefaultRefreshTokenLifetime),
			}))
			tokens = append(tokens, rt)
		}
	}
	p := newPoster(e.h, oauth2.RevocationPath, basic(appID, appSecret), false)
	refill()
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if i == len(tokens) {
			b.StopTimer()
			refill()
			i = 0
			b.StartTimer()
		}
		p.post(b, []byte("token="+tokens[i]+"&token_type_hint=refresh_token"))
		i++
	}
}
