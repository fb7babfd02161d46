package handler

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"
)

// runFlow drives the browser through the login and consent pages of an authorization URL and
// returns the client's callback.
func (env *flowEnv) runFlow(t *testing.T, b *harness.Browser, authURL string) harness.Callback {
	t.Helper()
	p := b.Get(authURL)
	if p.IsLogin() {
		p = b.Login(p, ownerName, ownerPassword)
	}
	if p.IsConsent() {
		p = b.Decide(p, "allow")
	}
	return p.Callback(t)
}

func TestGolangOAuth2AuthorizationCodeWithPKCE(t *testing.T) {
	env := newFlowEnv(t)
	ctx := env.clientContext(t.Context())
	cfg := env.oauth2Config(spaClientID, "", "openid", "profile", "email", "read:projects")
	verifier := xoauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("state-1", xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("nonce", "nonce-1"))

	cb := env.runFlow(t, env.browser(t), authURL)
	require.Empty(t, cb.Error, cb.ErrorDescription)
	assert.Equal(t, "state-1", cb.State)
	assert.Equal(t, env.srv.URL, cb.Iss)
	assert.Len(t, cb.Code, oauth2.SecretLength)

	tok, err := cfg.Exchange(ctx, cb.Code, xoauth2.VerifierOption(verifier))
	require.NoError(t, err)
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.NotEmpty(t, tok.RefreshToken, "the SPA lists refresh_token")
	assert.Equal(t, "openid profile email read:projects", tok.Extra("scope"))

	t.Run("the ID token passes go-oidc with the nonce and auth_time", func(t *testing.T) {
		provider, err := oidc.NewProvider(oidc.ClientContext(t.Context(), env.srv.Client()), env.srv.URL)
		require.NoError(t, err)
		rawID, _ := tok.Extra("id_token").(string)
		require.NotEmpty(t, rawID)
		idt, err := provider.Verifier(&oidc.Config{ClientID: spaClientID, Now: env.clock.Now}).Verify(
			oidc.ClientContext(t.Context(), env.srv.Client()), rawID)
		require.NoError(t, err)
		assert.Equal(t, subjectOf(ownerName), idt.Subject)
		assert.Equal(t, "nonce-1", idt.Nonce)
		var claims struct {
			AuthTime int64  `json:"auth_time"`
			Email    string `json:"email"`
		}
		require.NoError(t, idt.Claims(&claims))
		assert.InDelta(t, env.clock.Now().Unix(), claims.AuthTime, 5)
		assert.Equal(t, "alice@example.com", claims.Email)
		require.NoError(t, idt.VerifyAccessToken(tok.AccessToken))
	})
	t.Run("the access token works at userinfo", func(t *testing.T) {
		res, err := cfg.Client(ctx, tok).Get(env.srv.URL + oauth2.UserinfoPath)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		var info map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&info))
		assert.Equal(t, subjectOf(ownerName), info["sub"])
		assert.Equal(t, "alice@example.com", info["email"])
	})
	t.Run("the discovery document describes the endpoint", func(t *testing.T) {
		res, err := env.srv.Client().Get(env.srv.URL + oauth2.OpenIDConfigurationPath)
		require.NoError(t, err)
		defer res.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
		assert.Equal(t, env.srv.URL+oauth2.AuthorizePath, m["authorization_endpoint"])
		assert.Equal(t, []any{"code"}, m["response_types_supported"])
		assert.Equal(t, []any{"query"}, m["response_modes_supported"])
		assert.Equal(t, []any{"S256", "plain"}, m["code_challenge_methods_supported"])
		assert.Equal(t, true, m["authorization_response_iss_parameter_supported"])
		assert.Contains(t, m["grant_types_supported"], "authorization_code")
		assert.Contains(t, m["token_endpoint_auth_methods_supported"], "none")
	})
}

func TestAuthorizationCodeReplayRevokesTheFirstExchange(t *testing.T) {
	env := newFlowEnv(t)
	ctx := env.clientContext(t.Context())
	cfg := env.oauth2Config(spaClientID, "", "openid", "read:projects")
	verifier := xoauth2.GenerateVerifier()
	cb := env.runFlow(t, env.browser(t), cfg.AuthCodeURL("s", xoauth2.S256ChallengeOption(verifier)))

	first, err := cfg.Exchange(ctx, cb.Code, xoauth2.VerifierOption(verifier))
	require.NoError(t, err)
	require.NotEmpty(t, first.RefreshToken)

	_, err = cfg.Exchange(ctx, cb.Code, xoauth2.VerifierOption(verifier))
	var re *xoauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "invalid_grant", re.ErrorCode)

	t.Run("the refresh token of the first exchange is revoked", func(t *testing.T) {
		status, body := env.exchangeForm(t, "grant_type", "refresh_token", "refresh_token", first.RefreshToken, "client_id", spaClientID)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", body["error"])
	})
	t.Run("the access token of the first exchange is revoked", func(t *testing.T) {
		res, err := cfg.Client(ctx, &xoauth2.Token{AccessToken: first.AccessToken, TokenType: "Bearer"}).Get(env.srv.URL + oauth2.UserinfoPath)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	})
}

func TestAuthorizationCodeExchangeFailures(t *testing.T) {
	env := newFlowEnv(t)
	b := env.browser(t)
	tests := []struct {
		name        string
		exchange    func(code, verifier string) []string
		wantError   string
		wantStatus  int
		description string
	}{
		{"a code presented by another client is invalid_grant", func(code, verifier string) []string {
			return []string{"client_id", plainID, "code", code, "redirect_uri", appRedirect, "code_verifier", verifier}
		}, "invalid_grant", http.StatusBadRequest, ""},
		{"a different redirect_uri is invalid_grant", func(code, verifier string) []string {
			return []string{"client_id", spaClientID, "code", code, "redirect_uri", appRedirect2, "code_verifier", verifier}
		}, "invalid_grant", http.StatusBadRequest, ""},
		{"a missing redirect_uri is invalid_grant when the request had one", func(code, verifier string) []string {
			return []string{"client_id", spaClientID, "code", code, "code_verifier", verifier}
		}, "invalid_grant", http.StatusBadRequest, ""},
		{"a missing code_verifier is invalid_grant", func(code, _ string) []string {
			return []string{"client_id", spaClientID, "code", code, "redirect_uri", appRedirect}
		}, "invalid_grant", http.StatusBadRequest, ""},
		{"a wrong code_verifier is invalid_grant", func(code, _ string) []string {
			return []string{"client_id", spaClientID, "code", code, "redirect_uri", appRedirect, "code_verifier", xoauth2.GenerateVerifier()}
		}, "invalid_grant", http.StatusBadRequest, ""},
		{"a code_verifier that is too short is invalid_grant", func(code, verifier string) []string {
			return []string{"client_id", spaClientID, "code", code, "redirect_uri", appRedirect, "code_verifier", verifier[:42]}
		}, "invalid_grant", http.StatusBadRequest, ""},
		{"the challenge itself as the verifier is invalid_grant", func(code, verifier string) []string {
			_ = verifier
			_, challenge := pkcePair()
			return []string{"client_id", spaClientID, "code", code, "redirect_uri", appRedirect, "code_verifier", challenge}
		}, "invalid_grant", http.StatusBadRequest, ""},
		{"an unknown code is invalid_grant", func(_, verifier string) []string {
			return []string{"client_id", spaClientID, "code", strings.Repeat("x", oauth2.SecretLength), "redirect_uri", appRedirect, "code_verifier", verifier}
		}, "invalid_grant", http.StatusBadRequest, ""},
		{"a missing code is invalid_request", func(_, verifier string) []string {
			return []string{"client_id", spaClientID, "redirect_uri", appRedirect, "code_verifier", verifier}
		}, "invalid_request", http.StatusBadRequest, ""},
		{"a public client with a secret is invalid_client", func(code, verifier string) []string {
			return []string{"client_id", spaClientID, "client_secret", "x", "code", code, "redirect_uri", appRedirect, "code_verifier", verifier}
		}, "invalid_client", http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, verifier := env.signIn(t, b)
			status, body := env.exchangeForm(t, append([]string{"grant_type", "authorization_code"}, tt.exchange(code, verifier)...)...)
			assert.Equal(t, tt.wantStatus, status, "%v", body)
			assert.Equal(t, tt.wantError, body["error"])
			assert.NotContains(t, body, "access_token")
		})
	}

	t.Run("a failed exchange uses the code up", func(t *testing.T) {
		code, verifier := env.signIn(t, b)
		status, _ := env.exchangeForm(t, "grant_type", "authorization_code", "client_id", spaClientID, "code", code,
			"redirect_uri", appRedirect, "code_verifier", xoauth2.GenerateVerifier())
		require.Equal(t, http.StatusBadRequest, status)
		status, body := env.exchangeForm(t, "grant_type", "authorization_code", "client_id", spaClientID, "code", code,
			"redirect_uri", appRedirect, "code_verifier", verifier)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", body["error"])
	})
	t.Run("an expired code is invalid_grant", func(t *testing.T) {
		code, verifier := env.signIn(t, b)
		env.clock.Advance(oauth2.DefaultCodeLifetime + time.Second)
		status, body := env.exchangeForm(t, "grant_type", "authorization_code", "client_id", spaClientID, "code", code,
			"redirect_uri", appRedirect, "code_verifier", verifier)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", body["error"])
	})
	t.Run("a code whose user was disabled since is invalid_grant", func(t *testing.T) {
		code, verifier := env.signIn(t, env.browser(t))
		u, _ := env.reg.Snapshot().User(ownerName)
		disabled := *u
		disabled.Disabled = true
		env.reg.PutUser(disabled)
		defer env.reg.PutUser(*u)
		status, body := env.exchangeForm(t, "grant_type", "authorization_code", "client_id", spaClientID, "code", code,
			"redirect_uri", appRedirect, "code_verifier", verifier)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", body["error"])
	})
}

func TestAuthorizationCodePKCEDowngrade(t *testing.T) {
	env := newFlowEnv(t)
	b := env.browser(t)
	// The web client's policy is Optional: it may leave PKCE out, but then no verifier may come.
	cb := env.runFlow(t, b, env.authorizeURL("response_type", "code", "client_id", webID, "redirect_uri", appRedirect,
		"scope", "read:projects", "state", "s"))
	require.NotEmpty(t, cb.Code, cb.ErrorDescription)
	status, body := env.exchangeForm(t, "grant_type", "authorization_code", "client_id", webID, "client_secret", webSecret,
		"code", cb.Code, "redirect_uri", appRedirect, "code_verifier", xoauth2.GenerateVerifier())
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_grant", body["error"])
}

func TestAuthorizationCodePlainPKCE(t *testing.T) {
	env := newFlowEnv(t)
	verifier := xoauth2.GenerateVerifier()
	cb := env.runFlow(t, env.browser(t), env.authorizeURL("response_type", "code", "client_id", plainID,
		"code_challenge", verifier, "code_challenge_method", "plain"))
	require.NotEmpty(t, cb.Code, cb.ErrorDescription)
	status, body := env.exchangeForm(t, "grant_type", "authorization_code", "client_id", plainID, "code", cb.Code,
		"code_verifier", verifier)
	assert.Equal(t, http.StatusOK, status, "%v", body)
	assert.NotEmpty(t, body["access_token"])
}

func TestSeedCodeExchanges(t *testing.T) {
	env := newFlowEnv(t)
	b := env.browser(t)

	t.Run("the AuthMaster JSON body with client_secret and code_verifier works", func(t *testing.T) {
		verifier, challenge := pkcePair()
		cb := env.runFlow(t, b, env.authorizeURL("response_type", "code", "client_id", webID, "redirect_uri", appRedirect,
			"scope", "openid profile email", "state", "RANDOM_STATE", "code_challenge", challenge, "code_challenge_method", "S256"))
		require.NotEmpty(t, cb.Code, cb.ErrorDescription)
		assert.Equal(t, "RANDOM_STATE", cb.State)
		body, err := json.Marshal(map[string]string{
			"grant_type": "authorization_code", "code": cb.Code, "redirect_uri": appRedirect,
			"client_id": webID, "client_secret": webSecret, "code_verifier": verifier,
		})
		require.NoError(t, err)
		status, out := env.tokenPost(t, "application/json", string(body))
		require.Equal(t, http.StatusOK, status, "%v", out)
		assert.Equal(t, "Bearer", out["token_type"])
		assert.InDelta(t, 3600, out["expires_in"], 0)
		assert.NotEmpty(t, out["refresh_token"])
		assert.NotEmpty(t, out["id_token"])
		assert.Equal(t, "openid profile email", out["scope"])
	})
	t.Run("the guide's form body with client_secret and no PKCE works", func(t *testing.T) {
		cb := env.runFlow(t, b, env.authorizeURL("response_type", "code", "client_id", webID, "redirect_uri", appRedirect,
			"scope", "read:projects write:projects", "state", "random_state_string"))
		require.NotEmpty(t, cb.Code, cb.ErrorDescription)
		status, out := env.exchangeForm(t, "grant_type", "authorization_code", "code", cb.Code,
			"redirect_uri", appRedirect, "client_id", webID, "client_secret", webSecret)
		require.Equal(t, http.StatusOK, status, "%v", out)
		assert.Equal(t, "read:projects write:projects", out["scope"])
		assert.NotContains(t, out, "id_token", "no openid, no ID token")
	})
	t.Run("the guide's PKCE form body without a secret works for a public client", func(t *testing.T) {
		verifier, challenge := pkcePair()
		cb := env.runFlow(t, b, env.authorizeURL("response_type", "code", "client_id", spaClientID, "redirect_uri", appRedirect,
			"scope", "read:projects", "state", "random_state_string", "code_challenge", challenge, "code_challenge_method", "S256"))
		require.NotEmpty(t, cb.Code, cb.ErrorDescription)
		status, out := env.exchangeForm(t, "grant_type", "authorization_code", "code", cb.Code,
			"redirect_uri", appRedirect, "client_id", spaClientID, "code_verifier", verifier)
		require.Equal(t, http.StatusOK, status, "%v", out)
		assert.Equal(t, "read:projects", out["scope"])
	})
	t.Run("a confidential client must authenticate", func(t *testing.T) {
		cb := env.runFlow(t, b, env.authorizeURL("response_type", "code", "client_id", webID, "redirect_uri", appRedirect, "state", "s"))
		require.NotEmpty(t, cb.Code, cb.ErrorDescription)
		status, out := env.exchangeForm(t, "grant_type", "authorization_code", "code", cb.Code,
			"redirect_uri", appRedirect, "client_id", webID)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_client", out["error"])
	})
}

// TestACodeCanOnlyBeUsedOrBurntByItsOwnClient is finding 3 of the hardening issue: a party
// holding a code (from history, logs or a Referer) cannot burn it or revoke its grant under
// another client ID; a replay by the code's own client revokes the first exchange's grant, is
// audited and reported.
func TestACodeCanOnlyBeUsedOrBurntByItsOwnClient(t *testing.T) {
	aud, events := &recordingAuditor{}, &recordingReuse{}
	env := newFlowEnv(t, func(c *Config) { c.Audit, c.ClientEvents = aud, events })
	b := env.browser(t)
	exchange := func(client, code, verifier string) (int, map[string]any) {
		return env.exchangeForm(t, "grant_type", "authorization_code", "client_id", client, "code", code,
			"redirect_uri", appRedirect, "code_verifier", verifier)
	}

	code, verifier := env.signIn(t, b)
	for range 3 {
		status, body := exchange(plainID, code, verifier)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "invalid_grant", body["error"])
	}
	status, first := exchange(spaClientID, code, verifier)
	require.Equal(t, http.StatusOK, status, "another client's attempts left the code usable: %v", first)

	status, _ = exchange(plainID, code, verifier)
	require.Equal(t, http.StatusBadRequest, status)
	rt := str(first["refresh_token"])
	status, refreshed := env.exchangeForm(t, "grant_type", "refresh_token", "client_id", spaClientID, "refresh_token", rt)
	require.Equal(t, http.StatusOK, status, "another client's replay revoked nothing")

	// The SPA is public: anyone can name its client ID. Without the code's verifier a replay
	// proves nothing and revokes nothing.
	status, _ = exchange(spaClientID, code, "")
	require.Equal(t, http.StatusBadRequest, status)
	status, refreshed = env.exchangeForm(t, "grant_type", "refresh_token", "client_id", spaClientID, "refresh_token", str(refreshed["refresh_token"]))
	require.Equal(t, http.StatusOK, status, "a replay without the verifier revoked nothing: %v", refreshed)
	require.Empty(t, events.codeReplays(), "a replay without the verifier is not reported")

	status, _ = exchange(spaClientID, code, verifier)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, []string{spaClientID}, events.codeReplays(), "the own client's replay is reported")
	status, _ = env.exchangeForm(t, "grant_type", "refresh_token", "client_id", spaClientID, "refresh_token", str(refreshed["refresh_token"]))
	require.Equal(t, http.StatusBadRequest, status, "the replay with the verifier revoked the grant")
	aud.mu.Lock()
	n := 0
	for _, ev := range aud.events {
		if ev.Event == oauth2.AuditCodeReplayed {
			n++
			assert.Equal(t, spaClientID, ev.ClientID)
		}
	}
	aud.mu.Unlock()
	assert.Equal(t, 1, n, "one replay audited")
}
