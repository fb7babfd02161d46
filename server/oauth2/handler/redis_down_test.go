package handler

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRedisDownIsTemporarilyUnavailable: with the Redis store unreachable, every grant that must
// store something answers temporarily_unavailable (503) rather than a token that was not stored,
// while client_credentials, which stores nothing, keeps working.
func TestRedisDownIsTemporarilyUnavailable(t *testing.T) {
	rs, _, srv := startRedis(t)
	e := newUserEnv(t, withRedis(rs))
	refresh := str(e.passwordLogin(t, appID, aliceName, alicePassword, projectScope)["refresh_token"])
	require.NotEmpty(t, refresh)
	require.NoError(t, srv.Kill())

	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"a refresh is temporarily_unavailable, not a token that was never stored",
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, http.StatusServiceUnavailable, "temporarily_unavailable"},
		{"a password login is temporarily_unavailable",
			url.Values{"grant_type": {"password"}, "username": {aliceName}, "password": {alicePassword}}, http.StatusServiceUnavailable, "temporarily_unavailable"},
		{"client_credentials stores nothing and still works",
			url.Values{"grant_type": {"client_credentials"}}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.form(t, oauth2.TokenPath, appID, tt.form)
			assert.Equal(t, tt.status, res.status, "%v", res.body)
			if tt.code != "" {
				assert.Equal(t, tt.code, res.body["error"])
				assert.Nil(t, res.body["access_token"])
			}
		})
	}
}
