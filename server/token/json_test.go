package token

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stdJSONString is what encoding/json writes for s with HTML escaping off.
func stdJSONString(t testing.TB, s string) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(s))
	return strings.TrimSuffix(buf.String(), "\n")
}

// viaJSON is the value s has after a trip through encoding/json (invalid UTF-8 replaced).
func viaJSON(t testing.TB, s string) string {
	t.Helper()
	var out string
	require.NoError(t, json.Unmarshal([]byte(stdJSONString(t, s)), &out))
	return out
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"an empty string is two quotes", ""},
		{"plain ASCII is copied", "read:projects"},
		{"quotes and backslashes are escaped", `a"b\c`},
		{"short control escapes are used", "\b\f\n\r\t"},
		{"other control characters become \\u00XX", "\x00\x01\x1f\x7f"},
		{"HTML characters are left alone", "<a href='x'>&</a>"},
		{"multi-byte UTF-8 is copied", "héllo, 世界 🔑"},
		{"invalid UTF-8 becomes \\ufffd per byte", "a\xff\xfeb\xc3"},
		{"line and paragraph separators are escaped", "a\u2028b\u2029c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendJSONString([]byte("x"), tt.in))
			assert.Equal(t, "x"+stdJSONString(t, tt.in), got)
		})
	}
}

func TestAppendJSONStringFindsEveryByteAtEveryPosition(t *testing.T) {
	for pos := range 17 {
		for b := range 256 {
			in := []byte(strings.Repeat("a", 17))
			in[pos] = byte(b)
			require.Equal(t, stdJSONString(t, string(in)), string(AppendJSONString(nil, string(in))),
				"byte %#x at %d", b, pos)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "abc", `"\`, "\x00\n", "\xff", "\u2028", "é世🔑"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendJSONString(nil, s)
		require.Equal(t, stdJSONString(t, s), string(got))
		var back string
		require.NoError(t, json.Unmarshal(got, &back))
		require.Equal(t, viaJSON(t, s), back)
	})
}

// decodedClaims is the claims object as encoding/json reads it.
type decodedClaims struct {
	Iss      string          `json:"iss"`
	Sub      string          `json:"sub"`
	Aud      json.RawMessage `json:"aud"`
	Exp      int64           `json:"exp"`
	Iat      int64           `json:"iat"`
	Jti      string          `json:"jti"`
	ClientID string          `json:"client_id"`
	Scope    *string         `json:"scope"`
}

func TestAppendAccessTokenClaims(t *testing.T) {
	tests := []struct {
		name string
		c    AccessTokenClaims
		want string
	}{
		{
			name: "one audience is a string and no scope omits the claim",
			c: AccessTokenClaims{Issuer: "https://i", Subject: "s", Audience: []string{"a"},
				Expiry: 20, IssuedAt: 10, ID: "j", ClientID: "c"},
			want: `{"iss":"https://i","sub":"s","aud":"a","exp":20,"iat":10,"jti":"j","client_id":"c"}`,
		},
		{
			name: "several audiences are an array and scopes are space-separated",
			c: AccessTokenClaims{Issuer: "i", Subject: "s", Audience: []string{"a", "b"},
				Expiry: 2, IssuedAt: 1, ID: "j", ClientID: "c", Scopes: []string{"read:x", "write"}},
			want: `{"iss":"i","sub":"s","aud":["a","b"],"exp":2,"iat":1,"jti":"j","client_id":"c","scope":"read:x write"}`,
		},
		{
			name: "a session ID is written as sid last",
			c: AccessTokenClaims{Issuer: "i", Subject: "alice", Audience: []string{"c"},
				Expiry: 2, IssuedAt: 1, ID: "j", ClientID: "c", Scopes: []string{"openid"}, SessionID: "fam"},
			want: `{"iss":"i","sub":"alice","aud":"c","exp":2,"iat":1,"jti":"j","client_id":"c","scope":"openid","sid":"fam"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendAccessTokenClaims(nil, &tt.c)
			assert.JSONEq(t, tt.want, string(got))
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func FuzzAppendAccessTokenClaims(f *testing.F) {
	f.Add("https://issuer", "sub", "aud1", "", "client", "jti", "a b", int64(1), int64(3601))
	f.Add("\x00\"", "\xff", "a", "b", "c\u2028", "", "", int64(-1), int64(1<<62))
	f.Fuzz(func(t *testing.T, iss, sub, aud1, aud2, clientID, jti, scope string, iat, exp int64) {
		c := AccessTokenClaims{Issuer: iss, Subject: sub, Audience: []string{aud1}, Expiry: exp,
			IssuedAt: iat, ID: jti, ClientID: clientID}
		if aud2 != "" {
			c.Audience = append(c.Audience, aud2)
		}
		if scope != "" {
			c.Scopes = strings.Split(scope, " ")
		}
		out := AppendAccessTokenClaims(nil, &c)
		require.True(t, json.Valid(out), "invalid JSON: %q", out)

		var got decodedClaims
		require.NoError(t, json.Unmarshal(out, &got))
		assert.Equal(t, viaJSON(t, iss), got.Iss)
		assert.Equal(t, viaJSON(t, sub), got.Sub)
		assert.Equal(t, viaJSON(t, jti), got.Jti)
		assert.Equal(t, viaJSON(t, clientID), got.ClientID)
		assert.Equal(t, exp, got.Exp)
		assert.Equal(t, iat, got.Iat)
		if scope == "" {
			assert.Nil(t, got.Scope)
		} else {
			require.NotNil(t, got.Scope)
			assert.Equal(t, viaJSON(t, scope), *got.Scope)
		}
		if aud2 == "" {
			var aud string
			require.NoError(t, json.Unmarshal(got.Aud, &aud))
			assert.Equal(t, viaJSON(t, aud1), aud)
		} else {
			var aud []string
			require.NoError(t, json.Unmarshal(got.Aud, &aud))
			assert.Equal(t, []string{viaJSON(t, aud1), viaJSON(t, aud2)}, aud)
		}
	})
}
