package bearer

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

const formType = "application/x-www-form-urlencoded"

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name, method, auth, contentType, body string
		want                                  string
		wantCode                              string // "" with want empty: no token (401 without error)
	}{
		{name: "a Bearer header gives its token", method: "GET", auth: "Bearer abc.def-_~+/=", want: "abc.def-_~+/="},
		{name: "the scheme is case-insensitive", method: "GET", auth: "bEaReR abc", want: "abc"},
		{name: "a form body gives access_token on POST", method: "POST", contentType: formType, body: "x=1&access_token=abc", want: "abc"},
		{name: "a form body is ignored on GET", method: "GET", contentType: formType, body: "access_token=abc"},
		{name: "nothing is no token", method: "GET"},
		{name: "another scheme is no token", method: "GET", auth: "Basic Zm9vOmJhcg=="},
		{name: "an empty Bearer is invalid_request", method: "GET", auth: "Bearer ", wantCode: "invalid_request"},
		{name: "a space inside the token is invalid_request", method: "GET", auth: "Bearer a b", wantCode: "invalid_request"},
		{name: "padding in the middle is invalid_request", method: "GET", auth: "Bearer a=b", wantCode: "invalid_request"},
		{name: "header and body together are invalid_request", method: "POST", auth: "Bearer abc",
			contentType: formType, body: "access_token=abc", wantCode: "invalid_request"},
		{name: "access_token twice is invalid_request", method: "POST", contentType: formType,
			body: "access_token=a&access_token=b", wantCode: "invalid_request"},
		{name: "a JSON body on POST without a header is invalid_request", method: "POST",
			contentType: "application/json", body: `{"access_token":"a"}`, wantCode: "invalid_request"},
		{name: "a JSON body on POST with a header is ignored", method: "POST", auth: "Bearer abc",
			contentType: "application/json", body: `{}`, want: "abc"},
		{name: "a malformed form is invalid_request", method: "POST", contentType: formType,
			body: "access_token=%zz", wantCode: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, oauth2.UserinfoPath, strings.NewReader(tt.body))
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			tok, err := accessToken(r, 64<<10)
			if tt.wantCode == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, tok)
				return
			}
			var oe *oauth2.Error
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, tt.wantCode, oe.Code())
			assert.Empty(t, tok)
		})
	}
}

func FuzzBearerToken(f *testing.F) {
	f.Add("GET", "Bearer abc", "", "")
	f.Add("POST", "", formType, "access_token=abc&x=%20")
	f.Add("POST", "bearer a=", "application/x-www-form-urlencoded; charset=utf-8", "access_token=")
	f.Add("POST", "Bearer  a", "application/json", "{}")
	f.Fuzz(func(t *testing.T, method, auth, contentType, body string) {
		if method != http.MethodGet {
			method = http.MethodPost
		}
		r := httptest.NewRequest(method, oauth2.UserinfoPath, strings.NewReader(body))
		r.Header["Authorization"] = []string{auth}
		r.Header.Set("Content-Type", contentType)
		tok, err := accessToken(r, 1024)
		if err != nil {
			assert.Empty(t, tok)
			var oe *oauth2.Error
			assert.True(t, errors.As(err, &oe), "typed error %T", err)
			assert.Less(t, oe.StatusCode(), 500)
			return
		}
		assert.NotContains(t, tok, " ")
	})
}
