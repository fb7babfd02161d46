package oauth2

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
			r := httptest.NewRequest(tt.method, UserinfoPath, strings.NewReader(tt.body))
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			tok, err := bearerToken(r, DefaultMaxBodyBytes)
			if tt.want != "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, tok)
				return
			}
			var be *bearerError
			require.ErrorAs(t, err, &be)
			assert.Equal(t, tt.wantCode, be.code)
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
		r := httptest.NewRequest(method, UserinfoPath, strings.NewReader(body))
		r.Header["Authorization"] = []string{auth}
		r.Header.Set("Content-Type", contentType)
		tok, err := bearerToken(r, 1024)
		if err != nil {
			assert.Empty(t, tok)
			var be *bearerError
			var oe *Error
			assert.True(t, errors.As(err, &be) || errors.As(err, &oe), "typed error %T", err)
			return
		}
		assert.NotEmpty(t, tok)
		assert.NotContains(t, tok, " ")
	})
}

// FuzzEndpointParams fuzzes the parsing of revocation and introspection requests: every input
// is either a typed OAuth error or a request whose token came from the body.
func FuzzEndpointParams(f *testing.F) {
	f.Add(true, "", "token=abc&token_type_hint=access_token")
	f.Add(true, "Basic "+"YTpi", "token=abc&client_id=a")
	f.Add(false, "", `{"token":"abc","client_id":"x"}`)
	f.Add(false, "", `{"token":1}`)
	f.Add(true, "", "token=a&token=b")
	f.Fuzz(func(t *testing.T, form bool, auth, body string) {
		format := jsonBody
		if form {
			format = formBody
		}
		var authorization []string
		if auth != "" {
			authorization = []string{auth}
		}
		req, err := parseEndpointParams(format, authorization, []byte(body))
		if err != nil {
			var oe *Error
			require.ErrorAs(t, err, &oe)
			assert.Less(t, oe.StatusCode(), 500)
			return
		}
		if req.Token != "" && form {
			assert.Contains(t, body, "token=")
		}
		if req.ClientSecret != "" {
			assert.NotEmpty(t, req.ClientID)
		}
	})
}
