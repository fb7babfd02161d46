package handler

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestGolangOAuth2ClientCredentials(t *testing.T) {
	srv := newTestServer(t)
	jwks := fetchJWKS(t, srv)
	tests := []struct {
		name   string
		style  xoauth2.AuthStyle
		id     string
		secret string
		scopes []string
	}{
		{"the header auth style works with special characters", xoauth2.AuthStyleInHeader, specialID, specialSecret, []string{"read"}},
		{"the params auth style works", xoauth2.AuthStyleInParams, billingID, billingSecret, []string{"read:projects", "admin:read"}},
		{"auto-detection works", xoauth2.AuthStyleAutoDetect, edID, commonSecret, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := clientcredentials.Config{
				ClientID: tt.id, ClientSecret: tt.secret, TokenURL: srv.URL + oauth2.TokenPath,
				Scopes: tt.scopes, AuthStyle: tt.style,
			}
			ctx := context.WithValue(t.Context(), xoauth2.HTTPClient, srv.Client())
			tok, err := cfg.Token(ctx)
			require.NoError(t, err)
			assert.Equal(t, "Bearer", tok.TokenType)
			assert.Empty(t, tok.RefreshToken)
			assert.InDelta(t, 3600, tok.Extra("expires_in"), 0)
			assert.WithinDuration(t, time.Now().Add(time.Hour), tok.Expiry, time.Minute)
			v := verifyToken(t, jwks, tok.AccessToken)
			assert.Equal(t, tt.id, v.claims["client_id"])
			if len(tt.scopes) > 0 {
				assert.Equal(t, strings.Join(tt.scopes, " "), tok.Extra("scope"))
			}
		})
	}

	t.Run("a wrong secret is a RetrieveError with invalid_client", func(t *testing.T) {
		cfg := clientcredentials.Config{ClientID: billingID, ClientSecret: "wrong", TokenURL: srv.URL + oauth2.TokenPath,
			AuthStyle: xoauth2.AuthStyleInHeader}
		_, err := cfg.Token(context.WithValue(t.Context(), xoauth2.HTTPClient, srv.Client()))
		var re *xoauth2.RetrieveError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, "invalid_client", re.ErrorCode)
		assert.Equal(t, 401, re.Response.StatusCode)
	})
}

// TestSeedCurlExamples runs the client_credentials curl commands of the seed documents as
// written, with only the host (and base path) and the credentials changed.
func TestSeedCurlExamples(t *testing.T) {
	curl, err := harness.Tool("curl", "curl")
	require.NoError(t, err, "curl is part of the test tools (.ci/run installs it)")
	// The hello.com seed's Basic credentials are KEY:SECRET: a copy of the billing client.
	reg := testRegistry()
	billing, _ := reg.Snapshot().Client(billingID)
	key := *billing
	key.Source, key.ID, key.SecretHash = "payments/key", "KEY", registry.HashSecret([]byte("SECRET"))
	reg.PutClient(key)
	kr, err := testKeyring()
	require.NoError(t, err)
	h, err := New(Config{Issuer: testIssuer, Registry: reg, Keys: kr})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	tests := []struct {
		name  string
		args  []string
		scope string
	}{
		{name: "the Authup seed (form body on /token) works", args: []string{"-X", "POST", srv.URL + "/token",
			"-H", "Content-Type: application/x-www-form-urlencoded",
			"-d", "grant_type=client_credentials", "-d", "client_id=" + billingID, "-d", "client_secret=" + billingSecret}},
		{name: "the AuthMaster seed (JSON body on /oauth2/token) works", args: []string{"-X", "POST", srv.URL + "/oauth2/token",
			"-H", "Content-Type: application/json",
			"-d", `{
"grant_type": "client_credentials",
"client_id": "` + billingID + `",
"client_secret": "` + billingSecret + `"
}`}},
		{name: "the hello.com seed (Basic on /oauth/token) works", args: []string{"-X", "POST", srv.URL + "/oauth/token",
			"-H", "Authorization: Basic S0VZOlNFQ1JFVA==",
			"-H", "content-type: application/x-www-form-urlencoded",
			"-d", "grant_type=client_credentials"}},
		{name: "the authentication guide seed (scope admin:read on /oauth/token) works", args: []string{"-X", "POST", srv.URL + "/oauth/token",
			"-H", "Content-Type: application/x-www-form-urlencoded",
			"-d", "grant_type=client_credentials", "-d", "client_id=" + billingID, "-d", "client_secret=" + billingSecret,
			"-d", "scope=admin:read"}, scope: "admin:read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), curl, append([]string{"-sS", "--fail-with-body"}, tt.args...)...).Output()
			require.NoError(t, err, "curl: %s", out)
			var body map[string]any
			require.NoError(t, json.Unmarshal(out, &body))
			assert.NotEmpty(t, body["access_token"])
			assert.Equal(t, "Bearer", body["token_type"])
			assert.InDelta(t, 3600, body["expires_in"], 0)
			if tt.scope != "" {
				assert.Equal(t, tt.scope, body["scope"])
			}
		})
	}
}
