package grants

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

func TestParseDeviceAuthorizationRequest(t *testing.T) {
	tests := []struct {
		name, contentType, authorization, body string
		wantClient, wantScope                  string
		wantCode                               string
	}{
		{name: "a public client's form names it and its scopes", contentType: "application/x-www-form-urlencoded",
			body: "client_id=cli&scope=openid+email", wantClient: "cli", wantScope: "openid email"},
		{name: "a JSON body is read like a form", contentType: "application/json",
			body: `{"client_id":"cli","scope":"openid"}`, wantClient: "cli", wantScope: "openid"},
		{name: "Basic credentials name a confidential client", contentType: "application/x-www-form-urlencoded",
			authorization: "Basic Y2xpOnNlY3JldA==", body: "scope=openid", wantClient: "cli", wantScope: "openid"},
		{name: "a grant_type is refused", contentType: "application/x-www-form-urlencoded",
			body: "client_id=cli&grant_type=client_credentials", wantCode: "invalid_request"},
		{name: "another content type is refused", contentType: "text/plain", body: "client_id=cli", wantCode: "invalid_request"},
		{name: "a JSON number is refused", contentType: "application/json", body: `{"client_id":1}`, wantCode: "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseDeviceAuthorizationRequest(deviceRequest(tc.contentType, tc.authorization, tc.body), 1<<10)
			if tc.wantCode != "" {
				var oe *oauth2.Error
				require.ErrorAs(t, err, &oe)
				require.Equal(t, tc.wantCode, oe.Code())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantClient, req.ClientID)
			require.Equal(t, tc.wantScope, req.Scope)
		})
	}
}

func deviceRequest(contentType, authorization, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, oauth2.DeviceAuthorizationPath, strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	return r
}

func FuzzParseDeviceAuthorizationRequest(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "", "client_id=cli&scope=openid")
	f.Add("application/json", "", `{"client_id":"cli","scope":"openid email"}`)
	f.Add("application/x-www-form-urlencoded", "Basic Y2xpOnNlY3JldA==", "scope=openid&client_id=cli")
	f.Add("application/x-www-form-urlencoded", "Basic !!", "grant_type=x&scope=%zz")
	f.Fuzz(func(t *testing.T, contentType, authorization, body string) {
		req, err := ParseDeviceAuthorizationRequest(deviceRequest(contentType, authorization, body), 1<<10)
		if err != nil {
			var oe *oauth2.Error
			require.True(t, errors.As(err, &oe), "an RFC 6749 error: %v", err)
			require.Less(t, oe.StatusCode(), 500, "bad input is the client's error")
			return
		}
		require.Empty(t, req.GrantType)
	})
}
