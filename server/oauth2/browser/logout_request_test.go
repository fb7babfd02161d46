package browser

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

func TestParseLogoutRequest(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    *LogoutRequest
		wantErr string
	}{
		{"every parameter is read", "id_token_hint=a.b.c&client_id=app&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye&state=s+1&ui_locales=de+en",
			&LogoutRequest{IDTokenHint: "a.b.c", ClientID: "app", PostLogoutRedirectURI: "https://app.example/bye", State: "s 1", UILocales: "de en"}, ""},
		{"no parameters is a request without a hint", "", &LogoutRequest{}, ""},
		{"the confirmation form's token and decision are read", "csrf_token=t&decision=logout", &LogoutRequest{CSRFToken: "t", Decision: "logout"}, ""},
		{"unknown parameters are ignored", "foo=bar&state=x", &LogoutRequest{State: "x"}, ""},
		{"a parameter without a value is omitted", "state=&client_id=app", &LogoutRequest{ClientID: "app"}, ""},
		{"a repeated parameter is refused", "state=a&state=b", nil, "state parameter is included more than once"},
		{"a repeated hint is refused", "id_token_hint=a&id_token_hint=b", nil, "id_token_hint parameter is included more than once"},
		{"a bad encoding is refused", "state=%zz", nil, "not correctly encoded"},
		{"an overlong state is refused", "state=" + strings.Repeat("s", maxStateLength+1), nil, "state parameter is too long"},
		{"an oversized request is refused", "x=" + strings.Repeat("a", 80_000), nil, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLogoutRequest(tt.raw)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, oauth2.ErrInvalidRequest)
				var oe *oauth2.Error
				require.True(t, errors.As(err, &oe))
				assert.Contains(t, oe.Description(), tt.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseLogoutRequest(f *testing.F) {
	f.Add("id_token_hint=a.b.c&client_id=app&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye&state=s")
	f.Add("state=a&state=b")
	f.Add("%zz")
	f.Add("csrf_token=t&decision=logout&ui_locales=en")
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseLogoutRequest(raw)
		if err != nil {
			require.ErrorIs(t, err, oauth2.ErrInvalidRequest)
			require.Nil(t, got)
			return
		}
		require.NotNil(t, got)
		assert.LessOrEqual(t, len(got.State), maxStateLength)
		assert.LessOrEqual(t, len(got.Decision), maxDecisionLength)
	})
}
