package handler

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/userauth"
)

func TestPasswordGrant(t *testing.T) {
	e := newUserEnv(t)
	tests := []struct {
		name       string
		client     string
		values     url.Values
		wantStatus int
		wantError  string
		wantDesc   string
	}{
		{name: "a confidential client logs alice in with her bcrypt password", client: appID,
			values: url.Values{"username": {aliceName}, "password": {alicePassword}}, wantStatus: 200},
		{name: "a public client logs bob in with his argon2id password by client_id alone", client: spaID,
			values: url.Values{"username": {bobName}, "password": {bobPassword}}, wantStatus: 200},
		{name: "a wrong password is invalid_grant", client: appID,
			values:     url.Values{"username": {bobName}, "password": {"wrong"}},
			wantStatus: 400, wantError: "invalid_grant", wantDesc: badCredentials},
		{name: "an unknown user is invalid_grant with the same description", client: appID,
			values:     url.Values{"username": {"nobody"}, "password": {"whatever"}},
			wantStatus: 400, wantError: "invalid_grant", wantDesc: badCredentials},
		{name: "a disabled user with the right password is invalid_grant with the same description", client: appID,
			values:     url.Values{"username": {carolName}, "password": {alicePassword}},
			wantStatus: 400, wantError: "invalid_grant", wantDesc: badCredentials},
		{name: "a user without a password hash is invalid_grant with the same description", client: appID,
			values:     url.Values{"username": {daveName}, "password": {"anything"}},
			wantStatus: 400, wantError: "invalid_grant", wantDesc: badCredentials},
		{name: "a missing password is invalid_request", client: appID,
			values: url.Values{"username": {aliceName}}, wantStatus: 400, wantError: "invalid_request"},
		{name: "a client without the password grant is unauthorized_client", client: resourceID,
			values:     url.Values{"username": {aliceName}, "password": {alicePassword}},
			wantStatus: 400, wantError: "unauthorized_client"},
		{name: "a request that names no client is invalid_client", client: "",
			values:     url.Values{"username": {aliceName}, "password": {alicePassword}},
			wantStatus: 400, wantError: "invalid_client"},
		{name: "a scope the client may not request is invalid_scope", client: appID,
			values:     url.Values{"username": {aliceName}, "password": {alicePassword}, "scope": {"admin:read"}},
			wantStatus: 400, wantError: "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.values.Set("grant_type", "password")
			res := e.form(t, oauth2.TokenPath, tt.client, tt.values)
			require.Equal(t, tt.wantStatus, res.status, "%v", res.body)
			assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
			if tt.wantStatus == http.StatusOK {
				assert.NotEmpty(t, res.body["access_token"])
				assert.NotEmpty(t, res.body["refresh_token"])
				return
			}
			assert.Equal(t, tt.wantError, res.body["error"])
			if tt.wantDesc != "" {
				assert.Equal(t, tt.wantDesc, res.body["error_description"])
			}
		})
	}
}

func TestPasswordGrantLocksAUsernameAfterTenFailures(t *testing.T) {
	e := newUserEnv(t)
	login := func(pw string) response {
		return e.form(t, oauth2.TokenPath, appID, url.Values{"grant_type": {"password"}, "username": {aliceName}, "password": {pw}})
	}
	t.Run("a success resets the count", func(t *testing.T) {
		for range userauth.DefaultMaxFailuresPerUser - 1 {
			require.Equal(t, "invalid_grant", login("wrong").body["error"])
		}
		require.Equal(t, http.StatusOK, login(alicePassword).status)
	})
	t.Run("ten failures lock the username, even for the right password", func(t *testing.T) {
		for range userauth.DefaultMaxFailuresPerUser {
			assert.Equal(t, badCredentials, login("wrong").body["error_description"])
		}
		assertLocked(t, login(alicePassword))
	})
	t.Run("another username is not locked", func(t *testing.T) {
		res := e.form(t, oauth2.TokenPath, appID, url.Values{"grant_type": {"password"}, "username": {bobName}, "password": {bobPassword}})
		assert.Equal(t, http.StatusOK, res.status)
	})
	t.Run("the lock ends with the window", func(t *testing.T) {
		e.clock.Advance(userauth.DefaultFailureWindow + time.Second)
		assert.Equal(t, http.StatusOK, login(alicePassword).status)
	})
}

// assertLocked checks the answer to a locked login: 429 temporarily_unavailable with
// Retry-After, whatever the password.
func assertLocked(t *testing.T, res response) {
	t.Helper()
	assert.Equal(t, http.StatusTooManyRequests, res.status)
	assert.Equal(t, "temporarily_unavailable", res.body["error"])
	assert.Equal(t, tooManyFailures, res.body["error_description"])
	n, err := strconv.Atoi(res.header.Get("Retry-After"))
	if assert.NoError(t, err, "Retry-After %q", res.header.Get("Retry-After")) {
		assert.Positive(t, n)
	}
}

// TestPasswordGrantHasTheLoginPagesLockoutPolicy: the password grant and the login page check
// passwords with one authenticator, so the configured limits, the per-address lock and the
// failure delay apply to both (the grant once had a hard-coded limit of its own).
func TestPasswordGrantHasTheLoginPagesLockoutPolicy(t *testing.T) {
	grant := func(e *userEnv, user, pw string) response {
		return e.form(t, oauth2.TokenPath, appID, url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}})
	}
	t.Run("the configured per-username limit locks the name, even for the right password", func(t *testing.T) {
		e := newUserEnv(t, func(c *Config) { c.Login.MaxFailuresPerUser = 3 })
		for range 3 {
			require.Equal(t, badCredentials, grant(e, aliceName, "wrong").body["error_description"])
		}
		assertLocked(t, grant(e, aliceName, alicePassword))
		t.Run("until the configured window ends", func(t *testing.T) {
			e := newUserEnv(t, func(c *Config) { c.Login.MaxFailuresPerUser, c.Login.FailureWindow = 1, time.Minute })
			require.Equal(t, badCredentials, grant(e, aliceName, "wrong").body["error_description"])
			assertLocked(t, grant(e, aliceName, alicePassword))
			e.clock.Advance(time.Minute + time.Second)
			assert.Equal(t, http.StatusOK, grant(e, aliceName, alicePassword).status)
		})
	})
	t.Run("failures across usernames from one address lock the address", func(t *testing.T) {
		e := newUserEnv(t, func(c *Config) { c.Login.MaxFailuresPerAddress = 3 })
		for _, user := range []string{bobName, "nobody", daveName} {
			require.Equal(t, badCredentials, grant(e, user, "wrong").body["error_description"])
		}
		assertLocked(t, grant(e, aliceName, alicePassword)) // alice from the locked address
	})
	t.Run("the client address comes from the trusted proxy's header", func(t *testing.T) {
		e := newUserEnv(t, func(c *Config) { c.Login.MaxFailuresPerAddress, c.Login.ClientIPHeader = 1, "X-Forwarded-For" })
		post := func(user, pw, forwarded string) response {
			return doT(t, e.srv, request{path: oauth2.TokenPath, contentType: formType, authorization: basic(appID, appSecret),
				forwardedFor: forwarded,
				body:         url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}.Encode()})
		}
		require.Equal(t, badCredentials, post(bobName, "wrong", "198.51.100.7").body["error_description"])
		assertLocked(t, post(aliceName, alicePassword, "198.51.100.7"))
		assert.Equal(t, http.StatusOK, post(aliceName, alicePassword, "198.51.100.9").status, "another address")
	})
	t.Run("failed attempts wait the failure delay", func(t *testing.T) {
		e := newUserEnv(t, func(c *Config) { c.Login.FailureDelay = 150 * time.Millisecond })
		start := time.Now()
		require.Equal(t, badCredentials, grant(e, "nobody", "wrong").body["error_description"])
		assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
	})
}

func TestPasswordGrantTakesAsLongForUnknownUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	// Alice's test hash is bcrypt at the minimum cost; give her a default-cost one as in
	// production, where VerifyDummy's cost 10 applies.
	e := newUserEnv(t)
	hash, err := bcrypt.GenerateFromPassword([]byte(alicePassword), bcrypt.DefaultCost)
	require.NoError(t, err)
	snap := e.reg.Snapshot()
	alice, _ := snap.User(aliceName)
	a := *alice
	a.PasswordHash = hash
	e.reg.PutUser(a)
	timeIt := func(user string) time.Duration {
		start := time.Now()
		res := e.form(t, oauth2.TokenPath, appID, url.Values{"grant_type": {"password"}, "username": {user}, "password": {"wrong"}})
		require.Equal(t, "invalid_grant", res.body["error"])
		return time.Since(start)
	}
	// The fastest of a few interleaved runs of each, which load on the machine only slows. Only
	// the direction that leaks is checked: an unknown user must not answer faster (without the
	// dummy hash it answers in well under a tenth of the time).
	known, unknown := time.Hour, time.Hour
	for range 5 {
		known, unknown = min(known, timeIt(aliceName)), min(unknown, timeIt("nobody"))
	}
	assert.Greater(t, float64(unknown)/float64(known), 0.5, "known %v unknown %v", known, unknown)
}

func TestGolangOAuth2PasswordAndRefresh(t *testing.T) {
	e := newUserEnv(t)
	cfg := xoauth2.Config{
		ClientID: appID, ClientSecret: appSecret, Scopes: []string{"openid", "profile", "email"},
		Endpoint: xoauth2.Endpoint{TokenURL: e.srv.URL + oauth2.TokenPath, AuthStyle: xoauth2.AuthStyleInHeader},
	}
	ctx := context.WithValue(t.Context(), xoauth2.HTTPClient, e.srv.Client())
	tok, err := cfg.PasswordCredentialsToken(ctx, aliceName, alicePassword)
	require.NoError(t, err)
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.NotEmpty(t, tok.RefreshToken)
	assert.NotEmpty(t, tok.Extra("id_token"))

	t.Run("the TokenSource refreshes an expired token and rotates the refresh token", func(t *testing.T) {
		expired := *tok
		expired.Expiry = time.Now().Add(-time.Minute)
		src := cfg.TokenSource(ctx, &expired)
		next, err := src.Token()
		require.NoError(t, err)
		assert.NotEqual(t, tok.AccessToken, next.AccessToken)
		assert.NotEqual(t, tok.RefreshToken, next.RefreshToken, "rotated")
		_, claims := e.verifyJWT(t, next.AccessToken)
		assert.Equal(t, subjectOf(aliceName), claims["sub"])
		assert.Equal(t, "openid profile email", claims["scope"])
	})
	t.Run("a wrong password is a RetrieveError with invalid_grant", func(t *testing.T) {
		_, err := cfg.PasswordCredentialsToken(ctx, aliceName, "wrong")
		var re *xoauth2.RetrieveError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, "invalid_grant", re.ErrorCode)
	})
}

// TestSeedUserExamples runs the password, refresh, userinfo and revoke curl commands of the
// seed documents as written, with only the host (and base path) changed and, where an example
// sends no client credentials, the client's added.
func TestSeedUserExamples(t *testing.T) {
	curl, err := harness.Tool("curl", "curl")
	require.NoError(t, err, "curl is part of the test tools")
	e := newUserEnv(t)
	// The hello.com seed's Basic credentials are KEY:SECRET.
	snap := e.reg.Snapshot()
	app, _ := snap.Client(appID)
	key := *app
	key.Source, key.ID, key.SecretHash = "apps/key", "KEY", registry.HashSecret([]byte("SECRET"))
	e.reg.PutClient(key)

	run := func(t *testing.T, args ...string) map[string]any {
		t.Helper()
		out, err := exec.CommandContext(t.Context(), curl, append([]string{"-sS", "--fail-with-body"}, args...)...).Output()
		require.NoError(t, err, "curl: %s", out)
		if len(out) == 0 {
			return nil
		}
		var body map[string]any
		require.NoError(t, json.Unmarshal(out, &body), "%s", out)
		return body
	}
	login := func(t *testing.T, client string) map[string]any {
		return e.passwordLogin(t, client, aliceName, alicePassword, allOIDC)
	}

	t.Run("the Authup password example works with the public client's client_id added", func(t *testing.T) {
		body := run(t, "-X", "POST", e.srv.URL+"/token",
			"-H", "Content-Type: application/x-www-form-urlencoded",
			"-d", "grant_type=password",
			"-d", "username="+aliceName,
			"-d", "password="+alicePassword, "-d", "client_id="+spaID)
		assert.NotEmpty(t, body["access_token"])
		assert.Equal(t, "Bearer", body["token_type"])
		assert.InDelta(t, 3600, body["expires_in"], 0)
	})
	t.Run("the Authup refresh example works with the public client's client_id added", func(t *testing.T) {
		rt := str(login(t, spaID)["refresh_token"])
		body := run(t, "-X", "POST", e.srv.URL+"/token",
			"-H", "Content-Type: application/x-www-form-urlencoded",
			"-d", "grant_type=refresh_token",
			"-d", "refresh_token="+rt, "-d", "client_id="+spaID)
		assert.NotEmpty(t, body["access_token"])
		assert.NotEmpty(t, body["refresh_token"])
	})
	t.Run("the AuthMaster JSON refresh example and its userinfo example work", func(t *testing.T) {
		rt := str(login(t, appID)["refresh_token"])
		body := run(t, "-X", "POST", e.srv.URL+"/oauth2/token",
			"-H", "Content-Type: application/json",
			"-d", `{
"grant_type": "refresh_token",
"refresh_token": "`+rt+`",
"client_id": "`+appID+`",
"client_secret": "`+appSecret+`"
}`)
		assert.Equal(t, "openid profile email", body["scope"])
		info := run(t, e.srv.URL+"/oauth2/userinfo",
			"-H", "Authorization: Bearer "+str(body["access_token"]))
		assert.Equal(t, map[string]any{"sub": subjectOf(aliceName), "email": "alice@example.com", "email_verified": true,
			"name": "Alice Liddell", "preferred_username": aliceName}, info)
	})
	t.Run("the hello.com Basic refresh example works", func(t *testing.T) {
		rt := str(login(t, "KEY")["refresh_token"])
		body := run(t, "-X", "POST", e.srv.URL+"/oauth/token",
			"-H", "Authorization: Basic S0VZOlNFQ1JFVA==",
			"-H", "content-type: application/x-www-form-urlencoded",
			"-d", "grant_type=refresh_token&refresh_token="+rt)
		assert.NotEmpty(t, body["refresh_token"])
	})
	t.Run("the authentication guide's refresh and revoke examples work", func(t *testing.T) {
		rt := str(login(t, appID)["refresh_token"])
		body := run(t, "-X", "POST", e.srv.URL+"/oauth/token",
			"-H", "Content-Type: application/x-www-form-urlencoded",
			"-d", "grant_type=refresh_token",
			"-d", "refresh_token="+rt,
			"-d", "client_id="+appID,
			"-d", "client_secret="+appSecret)
		next := str(body["refresh_token"])
		require.NotEmpty(t, next)
		run(t, "-X", "POST", e.srv.URL+"/oauth/revoke",
			"-H", "Content-Type: application/x-www-form-urlencoded",
			"-d", "token="+next,
			"-d", "client_id="+appID,
			"-d", "client_secret="+appSecret)
		// "Revoking a refresh token also invalidates all associated access tokens."
		res := e.refresh(t, appID, next, "")
		assert.Equal(t, "invalid_grant", res.body["error"])
		res = doT(t, e.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath,
			authorization: "Bearer " + str(body["access_token"])})
		assert.Equal(t, http.StatusUnauthorized, res.status)
	})
}
