package oauth2

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzClientParams fuzzes the parsing of revocation and introspection requests: every input
// is either a typed OAuth error or a request whose token came from the body.
func FuzzClientParams(f *testing.F) {
	f.Add(true, "", "token=abc&token_type_hint=access_token")
	f.Add(true, "Basic "+"YTpi", "token=abc&client_id=a")
	f.Add(false, "", `{"token":"abc","client_id":"x"}`)
	f.Add(false, "", `{"token":1}`)
	f.Add(true, "", "token=a&token=b")
	f.Fuzz(func(t *testing.T, form bool, auth, body string) {
		format := JSONBody
		if form {
			format = FormBody
		}
		var authorization []string
		if auth != "" {
			authorization = []string{auth}
		}
		req, err := parseClientParams(format, authorization, []byte(body))
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
