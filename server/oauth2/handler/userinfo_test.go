package handler

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUserinfo(t *testing.T) {
	e := newUserEnv(t)
	full := e.passwordLogin(t, appID, aliceName, alicePassword, allOIDC+" groups")
	at := str(full["access_token"])
	bearer := "Bearer " + at

	t.Run("GET with a Bearer header answers sub and the claims of the scopes", func(t *testing.T) {
		res := doT(t, e.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: bearer})
		require.Equal(t, http.StatusOK, res.status)
		assert.Equal(t, map[string]any{
			"sub": subjectOf(aliceName), "name": "Alice Liddell", "preferred_username": aliceName,
			"email": "alice@example.com", "email_verified": true, "groups": []any{"admins", "dev"},
		}, res.body)
		assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
	})
	t.Run("POST with the token in the form body works", func(t *testing.T) {
		res := doT(t, e.srv, request{path: oauth2.UserinfoPath, contentType: formType,
			body: url.Values{"access_token": {at}}.Encode()})
		require.Equal(t, http.StatusOK, res.status)
		assert.Equal(t, subjectOf(aliceName), res.body["sub"])
	})
	t.Run("POST with a Bearer header and no body works", func(t *testing.T) {
		res := doT(t, e.srv, request{path: oauth2.UserinfoPath, authorization: bearer})
		require.Equal(t, http.StatusOK, res.status)
	})
	t.Run("openid alone answers sub alone", func(t *testing.T) {
		tok := str(e.passwordLogin(t, appID, bobName, bobPassword, "openid")["access_token"])
		res := doT(t, e.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "bearer " + tok})
		assert.Equal(t, map[string]any{"sub": subjectOf(bobName)}, res.body)
	})

	tests := []struct {
		name       string
		rq         request
		wantStatus int
		wantError  string
		challenge  string
	}{
		{name: "no token is 401 with a bare Bearer challenge",
			rq:         request{method: http.MethodGet},
			wantStatus: 401, wantError: "invalid_token", challenge: `Bearer realm="latchkey"`},
		{name: "a Basic header is 401 with a bare Bearer challenge",
			rq:         request{method: http.MethodGet, authorization: basic(appID, appSecret)},
			wantStatus: 401, wantError: "invalid_token", challenge: `Bearer realm="latchkey"`},
		{name: "a garbage token is 401 invalid_token",
			rq:         request{method: http.MethodGet, authorization: "Bearer abc.def.ghi"},
			wantStatus: 401, wantError: "invalid_token"},
		{name: "a malformed Bearer header is 400 invalid_request",
			rq:         request{method: http.MethodGet, authorization: "Bearer a b"},
			wantStatus: 400, wantError: "invalid_request"},
		{name: "a header and a body token together are 400 invalid_request",
			rq: request{authorization: bearer, contentType: formType,
				body: url.Values{"access_token": {at}}.Encode()},
			wantStatus: 400, wantError: "invalid_request"},
		{name: "a body token twice is 400 invalid_request",
			rq: request{contentType: formType,
				body: url.Values{"access_token": {at, at}}.Encode()},
			wantStatus: 400, wantError: "invalid_request"},
		{name: "a token without openid is 403 insufficient_scope",
			rq:         request{method: http.MethodGet},
			wantStatus: 403, wantError: "insufficient_scope"},
		{name: "a client_credentials token is 401 invalid_token",
			rq:         request{method: http.MethodGet},
			wantStatus: 401, wantError: "invalid_token"},
		{name: "an ID token is 401 invalid_token",
			rq:         request{method: http.MethodGet, authorization: "Bearer " + str(full["id_token"])},
			wantStatus: 401, wantError: "invalid_token"},
		{name: "DELETE is 405",
			rq:         request{method: http.MethodDelete, authorization: bearer},
			wantStatus: 405, wantError: "invalid_request"},
	}
	tests[6].rq.authorization = "Bearer " + str(e.passwordLogin(t, appID, aliceName, alicePassword, projectScope)["access_token"])
	tests[7].rq.authorization = "Bearer " + e.clientCredentialsToken(t, resourceID, "openid")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rq.path = oauth2.UserinfoPath
			res := doT(t, e.srv, tt.rq)
			assert.Equal(t, tt.wantStatus, res.status, "%v", res.body)
			assert.Equal(t, tt.wantError, res.body["error"])
			if tt.wantStatus == 401 || tt.wantStatus == 403 {
				ch := res.header.Get("WWW-Authenticate")
				if tt.challenge != "" {
					assert.Equal(t, tt.challenge, ch)
				} else {
					assert.Contains(t, ch, `error="`+tt.wantError+`"`)
				}
			}
		})
	}

	t.Run("a revoked access token is 401 invalid_token", func(t *testing.T) {
		tok := str(e.passwordLogin(t, appID, aliceName, alicePassword, "openid")["access_token"])
		res := e.form(t, oauth2.RevocationPath, appID, url.Values{"token": {tok}})
		require.Equal(t, http.StatusOK, res.status)
		res = doT(t, e.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer " + tok})
		assert.Equal(t, http.StatusUnauthorized, res.status)
		assert.Contains(t, res.header.Get("WWW-Authenticate"), `error="invalid_token"`)
	})
	t.Run("an expired access token is 401 invalid_token", func(t *testing.T) {
		e.clock.Advance(time.Hour)
		defer e.clock.Advance(-time.Hour)
		res := doT(t, e.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: bearer})
		assert.Equal(t, http.StatusUnauthorized, res.status)
	})
	t.Run("a deleted user's token is 401 invalid_token", func(t *testing.T) {
		tok := str(e.passwordLogin(t, appID, bobName, bobPassword, "openid")["access_token"])
		snap := e.reg.Snapshot()
		bob, _ := snap.User(bobName)
		e.reg.DeleteUser(bob.Source)
		defer e.reg.PutUser(*bob)
		res := doT(t, e.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer " + tok})
		assert.Equal(t, http.StatusUnauthorized, res.status)
	})
}

func TestEndpointsNeedTheStore(t *testing.T) {
	srv := newTestServer(t) // no Store
	for _, p := range []string{oauth2.UserinfoPath, oauth2.RevocationPath, oauth2.IntrospectionPath} {
		t.Run(p+" is 404 without a store", func(t *testing.T) {
			res := doT(t, srv, request{path: p, contentType: formType})
			assert.Equal(t, http.StatusNotFound, res.status)
		})
	}
	t.Run("the password grant is unsupported without a store", func(t *testing.T) {
		res := doT(t, srv, request{path: oauth2.TokenPath, contentType: formType, authorization: basic(billingID, billingSecret),
			body: "grant_type=password&username=a&password=b"})
		assert.Equal(t, "unsupported_grant_type", res.body["error"])
	})
}
