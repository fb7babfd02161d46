package browser

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/dpop"
	"github.com/latchkey-dev/latchkey/server/oauth2"
)

func TestParseAuthorizeRequest(t *testing.T) {
	t.Run("every parameter is parsed", func(t *testing.T) {
		req, err := parseAuthorizeRequest("response_type=code&client_id=app%3A1&redirect_uri=https%3A%2F%2Fa.example%2Fcb" +
			"&scope=openid+read%3Aprojects&state=s%20t&nonce=n&code_challenge=c&code_challenge_method=S256" +
			"&prompt=login+consent&max_age=300&login_hint=alice&response_mode=query&unknown=1" +
			"&dpop_jkt=NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
		require.NoError(t, err)
		assert.Equal(t, &AuthorizeRequest{
			ClientID: "app:1", RedirectURI: "https://a.example/cb", ResponseType: "code", ResponseMode: "query",
			Scope: "openid read:projects", State: "s t", Nonce: "n", CodeChallenge: "c", CodeChallengeMethod: "S256",
			Prompt: promptLogin | promptConsent, MaxAge: 300, LoginHint: "alice",
			DPoPJKT: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
		}, req)
	})

	fatal := []struct{ name, raw string }{
		{"a missing client_id cannot be answered", "response_type=code"},
		{"an empty client_id counts as missing", "client_id=&response_type=code"},
		{"a repeated client_id cannot be answered", "client_id=a&client_id=b"},
		{"a repeated client_id with the same value cannot be answered", "client_id=a&client_id=a"},
		{"a repeated redirect_uri cannot be answered", "client_id=a&redirect_uri=x&redirect_uri=y"},
		{"bad percent-encoding cannot be answered", "client_id=a&redirect_uri=%zz"},
		{"an overlong client_id cannot be answered", "client_id=" + strings.Repeat("a", maxParamLength+1)},
	}
	for _, tt := range fatal {
		t.Run(tt.name, func(t *testing.T) {
			req, err := parseAuthorizeRequest(tt.raw)
			assert.Nil(t, req)
			assert.True(t, errors.Is(err, oauth2.ErrInvalidRequest), "%v", err)
		})
	}

	redirectable := []struct{ name, raw string }{
		{"a repeated response_type is invalid", "client_id=a&response_type=code&response_type=code"},
		{"a repeated scope is invalid", "client_id=a&scope=x&scope=y"},
		{"a repeated code_challenge is invalid", "client_id=a&code_challenge=x&code_challenge=y"},
		{"prompt none with login is invalid", "client_id=a&prompt=none+login"},
		{"an unknown prompt value is invalid", "client_id=a&prompt=bogus"},
		{"a negative max_age is invalid", "client_id=a&max_age=-5"},
		{"a signed max_age is invalid", "client_id=a&max_age=%2B5"},
		{"a non-numeric max_age is invalid", "client_id=a&max_age=soon"},
		{"an overflowing max_age is invalid", "client_id=a&max_age=99999999999999999999"},
		{"an overlong state is invalid", "client_id=a&state=" + strings.Repeat("s", maxStateLength+1)},
		{"an overlong nonce is invalid", "client_id=a&nonce=" + strings.Repeat("n", maxNonceLength+1)},
		{"a dpop_jkt that is no thumbprint is invalid", "client_id=a&dpop_jkt=abc"},
		{"a padded dpop_jkt is invalid", "client_id=a&dpop_jkt=NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs%3D"},
		{"a repeated dpop_jkt is invalid", "client_id=a&dpop_jkt=NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" +
			"&dpop_jkt=NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
	}
	for _, tt := range redirectable {
		t.Run(tt.name, func(t *testing.T) {
			req, err := parseAuthorizeRequest(tt.raw)
			require.NoError(t, err)
			require.NotNil(t, req.invalid)
			assert.True(t, errors.Is(req.invalid, oauth2.ErrInvalidRequest))
			assert.LessOrEqual(t, len(req.State), maxStateLength)
		})
	}

	t.Run("request, request_uri and registration are noticed", func(t *testing.T) {
		req, err := parseAuthorizeRequest("client_id=a&request=x&request_uri=y&registration=z")
		require.NoError(t, err)
		assert.True(t, req.RequestObject)
		assert.Equal(t, "y", req.RequestURI)
		assert.True(t, req.Registration)
	})
	t.Run("empty values count as omitted", func(t *testing.T) {
		req, err := parseAuthorizeRequest("client_id=a&state=&state=&max_age=&prompt=&&=x")
		require.NoError(t, err)
		assert.Nil(t, req.invalid)
		assert.Equal(t, int64(-1), req.MaxAge)
		assert.Equal(t, prompt(0), req.Prompt)
	})
	t.Run("select_account is a prompt value", func(t *testing.T) {
		req, err := parseAuthorizeRequest("client_id=a&prompt=select_account")
		require.NoError(t, err)
		assert.True(t, req.Prompt.Has(promptSelectAccount))
	})
}

func FuzzParseAuthorizeRequest(f *testing.F) {
	for _, seed := range []string{
		"response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid&state=x" +
			"&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
		"client_id=a&client_id=b",
		"client_id=a&prompt=none+login&max_age=12",
		"client_id=a&redirect_uri=%zz",
		"client_id=a&request=x&state=" + strings.Repeat("s", 10),
		"&&&=&client_id=%20",
		"client_id=a&dpop_jkt=NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
		"client_id=a&dpop_jkt=NzbLsXh8uDCcd%2B6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		req, err := parseAuthorizeRequest(raw)
		if err != nil {
			var oe *oauth2.Error
			if !errors.As(err, &oe) || oe.Code() != "invalid_request" {
				t.Fatalf("error %v is not invalid_request", err)
			}
			if req != nil {
				t.Fatal("a request with an error")
			}
			return
		}
		if req.ClientID == "" || len(req.ClientID) > maxParamLength || len(req.RedirectURI) > maxParamLength {
			t.Fatalf("client_id %q or redirect_uri accepted", req.ClientID)
		}
		if len(req.State) > maxStateLength {
			t.Fatalf("state of %d bytes kept", len(req.State))
		}
		if req.MaxAge < -1 {
			t.Fatalf("max_age %d", req.MaxAge)
		}
		if req.invalid == nil && req.Prompt.Has(promptNone) && req.Prompt != promptNone {
			t.Fatalf("prompt none combined: %b", req.Prompt)
		}
		if req.invalid != nil && req.invalid.Code() != "invalid_request" {
			t.Fatalf("invalid is %v", req.invalid)
		}
		if req.invalid == nil && req.DPoPJKT != "" && !dpop.ValidThumbprint(req.DPoPJKT) {
			t.Fatalf("dpop_jkt %q accepted", req.DPoPJKT)
		}
	})
}

func TestParseAuthorizeRequestResources(t *testing.T) {
	many := "client_id=a"
	for range oauth2.MaxResources + 2 {
		many += "&resource=https%3A%2F%2Fsame.example"
	}
	tests := []struct {
		name    string
		raw     string
		want    []string
		invalid bool
	}{
		{name: "repeated resources are all kept, each once", raw: "client_id=a&resource=https%3A%2F%2Fa.example&resource=urn%3Ax&resource=urn%3Ax",
			want: []string{"https://a.example", "urn:x"}},
		{name: "many copies of one resource do not hide a later one", raw: many + "&resource=urn%3Alast",
			want: []string{"https://same.example", "urn:last"}},
		{name: "a relative resource is invalid_target", raw: "client_id=a&resource=%2Fapi", invalid: true},
		{name: "a resource with a fragment is invalid_target", raw: "client_id=a&resource=https%3A%2F%2Fa.example%23f", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := parseAuthorizeRequest(tt.raw)
			require.NoError(t, err)
			if tt.invalid {
				assert.ErrorIs(t, req.invalid, oauth2.ErrInvalidTarget)
				return
			}
			assert.Nil(t, req.invalid)
			assert.Equal(t, tt.want, req.Resources)
		})
	}
}
