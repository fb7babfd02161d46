package handler

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// TestRecreatedUserInheritsNothing is the regression test of tokens, sessions and consents
// tied to the username: a User deleted and created again with the same username is another
// subject, and nothing issued to the old one works for the new one.
func TestRecreatedUserInheritsNothing(t *testing.T) {
	const pwID, pwSecret = "pw-app", "pw-secret"
	env := newFlowEnv(t)
	env.reg.PutClient(registry.Client{
		Source: "web/" + pwID, Namespace: "web", ID: pwID, Type: registry.Confidential, AuthMethod: oauth2.AuthMethodPost,
		GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"openid", "profile", "email"},
		SecretHash: registry.HashSecret([]byte(pwSecret)), HasSecret: true, Introspection: true,
	})
	post := func(t *testing.T, path string, v url.Values) response {
		t.Helper()
		return do(t, env.srv, request{path: path, contentType: formType, body: v.Encode()})
	}
	passwordGrant := func(t *testing.T) response {
		t.Helper()
		return post(t, oauth2.TokenPath, url.Values{"grant_type": {"password"}, "client_id": {pwID}, "client_secret": {pwSecret},
			"username": {ownerName}, "password": {ownerPassword}, "scope": {"openid profile email"}})
	}
	introspect := func(t *testing.T, tok string) map[string]any {
		t.Helper()
		res := post(t, oauth2.IntrospectionPath, url.Values{"client_id": {pwID}, "client_secret": {pwSecret}, "token": {tok}})
		require.Equal(t, http.StatusOK, res.status, res.body)
		return res.body
	}
	userinfo := func(t *testing.T, tok string) response {
		t.Helper()
		return do(t, env.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer " + tok})
	}

	// What the first alice got: tokens from the password grant, a browser session with a
	// remembered consent, and a code she has not redeemed yet.
	issued := passwordGrant(t)
	require.Equal(t, http.StatusOK, issued.status, issued.body)
	accessToken, _ := issued.body["access_token"].(string)
	refreshToken, _ := issued.body["refresh_token"].(string)
	require.NotEmpty(t, accessToken)
	require.NotEmpty(t, refreshToken)
	b := env.browser(t)
	env.signIn(t, b)
	pendingCode, verifier := env.signIn(t, b)
	require.Equal(t, true, introspect(t, accessToken)["active"])
	require.Equal(t, subjectOf(ownerName), userinfo(t, accessToken).body["sub"])

	old, ok := env.reg.Snapshot().User(ownerName)
	require.True(t, ok)
	env.reg.DeleteUser(old.Source)
	const newSubject = "sub-alice-0002"
	env.reg.PutUser(registry.User{Source: old.Source, Subject: newSubject, Username: ownerName,
		Email: "someone-else@example.com", PasswordHash: old.PasswordHash})

	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"the old access token is inactive at introspection", func(t *testing.T) {
			assert.Equal(t, map[string]any{"active": false}, introspect(t, accessToken))
		}},
		{"the old access token is rejected at userinfo and shows nothing of the new user", func(t *testing.T) {
			res := userinfo(t, accessToken)
			assert.Equal(t, http.StatusUnauthorized, res.status)
			assert.Equal(t, "invalid_token", res.body["error"])
			assert.NotContains(t, res.body, "email")
		}},
		{"the old refresh token is inactive at introspection", func(t *testing.T) {
			assert.Equal(t, map[string]any{"active": false}, introspect(t, refreshToken))
		}},
		{"the old refresh token is invalid_grant", func(t *testing.T) {
			res := post(t, oauth2.TokenPath, url.Values{"grant_type": {"refresh_token"}, "client_id": {pwID},
				"client_secret": {pwSecret}, "refresh_token": {refreshToken}})
			assert.Equal(t, http.StatusBadRequest, res.status)
			assert.Equal(t, "invalid_grant", res.body["error"])
		}},
		{"a code issued to the old user is invalid_grant", func(t *testing.T) {
			status, body := env.exchangeForm(t, "grant_type", "authorization_code", "client_id", spaClientID,
				"code", pendingCode, "redirect_uri", appRedirect, "code_verifier", verifier)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", body["error"])
		}},
		{"the old browser session is not honoured: the login page is shown again", func(t *testing.T) {
			_, challenge := pkcePair()
			p := b.Get(env.spaRequest(challenge))
			assert.True(t, p.IsLogin(), p.Body)
		}},
		{"the old consent is not honoured: the new user is asked to consent", func(t *testing.T) {
			_, challenge := pkcePair()
			p := b.Login(b.Get(env.spaRequest(challenge)), ownerName, ownerPassword)
			require.True(t, p.IsConsent(), p.Body)
			assert.Contains(t, p.Body, "Signed in as <strong>"+ownerName+"</strong>")
		}},
		{"the new user's tokens carry the new subject and the username", func(t *testing.T) {
			res := passwordGrant(t)
			require.Equal(t, http.StatusOK, res.status, res.body)
			tok, _ := res.body["access_token"].(string)
			in := introspect(t, tok)
			assert.Equal(t, newSubject, in["sub"])
			assert.Equal(t, ownerName, in["username"])
			info := userinfo(t, tok).body
			assert.Equal(t, newSubject, info["sub"])
			assert.Equal(t, ownerName, info["preferred_username"])
			assert.Equal(t, "someone-else@example.com", info["email"])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}
