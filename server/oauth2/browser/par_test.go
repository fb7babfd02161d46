package browser

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// FuzzParsePushedBody: any body and Authorization header parse into a request or an RFC 6749
// error, never a panic; a parsed request holds no request_uri.
func FuzzParsePushedBody(f *testing.F) {
	for _, seed := range []struct{ auth, body string }{
		{"", "client_id=spa&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_challenge=x&code_challenge_method=S256"},
		{"Basic d2ViOnNlY3JldA==", "response_type=code&scope=openid&state=s&nonce=n&prompt=login&max_age=0"},
		{"", "client_id=a&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax"},
		{"", "client_id=a&client_id=b&%zz"},
		{"Basic !!", "client_secret=x&grant_type=y"},
		{"", "client_id=spa&response_type=code&dpop_jkt=NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
	} {
		f.Add(seed.auth, seed.body)
	}
	f.Fuzz(func(t *testing.T, auth, body string) {
		var authz []string
		if auth != "" {
			authz = []string{auth}
		}
		creds, req, err := parsePushedBody(authz, []byte(body))
		if err != nil {
			var oe *oauth2.Error
			require.True(t, errors.As(err, &oe), "an RFC 6749 error: %v", err)
			require.Less(t, oe.StatusCode(), http.StatusInternalServerError)
			return
		}
		require.NotNil(t, creds)
		require.NotNil(t, req)
		require.Empty(t, req.RequestURI)
		require.Nil(t, req.invalid)
	})
}
