package token

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/registry"
)

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
	Sid      *string         `json:"sid"`
}

func TestAccessTokenClaimsJSON(t *testing.T) {
	tests := []struct {
		name string
		c    AccessTokenClaims
		want string
	}{
		{
			name: "one audience is a string and no scope omits the claim",
			c: AccessTokenClaims{Issuer: "https://i", Subject: "s", Audience: Audience{"a"},
				Expiry: 20, IssuedAt: 10, ID: "j", ClientID: "c"},
			want: `{"iss":"https://i","sub":"s","aud":"a","exp":20,"iat":10,"jti":"j","client_id":"c"}`,
		},
		{
			name: "several audiences are an array and scopes are space-separated",
			c: AccessTokenClaims{Issuer: "i", Subject: "s", Audience: Audience{"a", "b"},
				Expiry: 2, IssuedAt: 1, ID: "j", ClientID: "c", Scope: JoinScope([]string{"read:x", "write"})},
			want: `{"iss":"i","sub":"s","aud":["a","b"],"exp":2,"iat":1,"jti":"j","client_id":"c","scope":"read:x write"}`,
		},
		{
			name: "a family is written as latchkey_family and an OP session as sid",
			c: AccessTokenClaims{Issuer: "i", Subject: "alice", Audience: Audience{"c"},
				Expiry: 2, IssuedAt: 1, ID: "j", ClientID: "c", Scope: "openid", FamilyID: "fam", SessionID: "op"},
			want: `{"iss":"i","sub":"alice","aud":"c","exp":2,"iat":1,"jti":"j","client_id":"c","scope":"openid","latchkey_family":"fam","sid":"op"}`,
		},
		{
			name: "no audience omits the claim",
			c:    AccessTokenClaims{Issuer: "i", Subject: "s", Expiry: 2, IssuedAt: 1, ID: "j", ClientID: "c"},
			want: `{"iss":"i","sub":"s","exp":2,"iat":1,"jti":"j","client_id":"c"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(&tt.c)
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(got))
		})
	}
}

func TestAccessTokenClaimsRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    AccessTokenClaims
	}{
		{"plain values survive", AccessTokenClaims{Issuer: "https://issuer", Subject: "sub",
			Audience: Audience{"aud1"}, Expiry: 3601, IssuedAt: 1, ID: "jti", ClientID: "client", Scope: "a b"}},
		{"quotes, control characters, separators and HTML survive", AccessTokenClaims{Issuer: "\x00\"\\",
			Subject: "<a>&</a>", Audience: Audience{"a", "b\u2028"}, Expiry: 1 << 62, IssuedAt: -1,
			ID: "é世🔑", ClientID: "c\n", SessionID: "\t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := json.Marshal(&tt.c)
			require.NoError(t, err)
			var got decodedClaims
			require.NoError(t, json.Unmarshal(out, &got))
			assert.Equal(t, tt.c.Issuer, got.Iss)
			assert.Equal(t, tt.c.Subject, got.Sub)
			assert.Equal(t, tt.c.ID, got.Jti)
			assert.Equal(t, tt.c.ClientID, got.ClientID)
			assert.Equal(t, tt.c.Expiry, got.Exp)
			assert.Equal(t, tt.c.IssuedAt, got.Iat)
			if tt.c.Scope == "" {
				assert.Nil(t, got.Scope)
			} else {
				require.NotNil(t, got.Scope)
				assert.Equal(t, tt.c.Scope, *got.Scope)
			}
			if tt.c.SessionID == "" {
				assert.Nil(t, got.Sid)
			} else {
				require.NotNil(t, got.Sid)
				assert.Equal(t, tt.c.SessionID, *got.Sid)
			}
			if len(tt.c.Audience) == 1 {
				var aud string
				require.NoError(t, json.Unmarshal(got.Aud, &aud))
				assert.Equal(t, tt.c.Audience[0], aud)
			} else {
				var aud []string
				require.NoError(t, json.Unmarshal(got.Aud, &aud))
				assert.Equal(t, []string(tt.c.Audience), aud)
			}
		})
	}
}

func TestUserClaimsJSON(t *testing.T) {
	full := &registry.User{Username: "alice", DisplayName: "Alice", Email: "a@example.com",
		EmailVerified: true, Groups: []string{"g1", "g2"}}
	all := ClaimName | ClaimPreferredUsername | ClaimEmail | ClaimEmailVerified | ClaimGroups
	tests := []struct {
		name    string
		u       *registry.User
		release Claims
		want    string
	}{
		{"a nil user releases nothing", nil, all, `{}`},
		{"nothing released writes nothing", full, 0, `{}`},
		{"every claim is written when released", full, all,
			`{"name":"Alice","preferred_username":"alice","email":"a@example.com","email_verified":true,"groups":["g1","g2"]}`},
		{"empty strings are omitted, and email_verified with email",
			&registry.User{Username: "bob", EmailVerified: true}, all,
			`{"preferred_username":"bob","groups":[]}`},
		{"email_verified false is written", &registry.User{Username: "c", Email: "c@x"},
			ClaimEmail | ClaimEmailVerified, `{"email":"c@x","email_verified":false}`},
		{"email_verified needs its own release", full, ClaimEmail, `{"email":"a@example.com"}`},
		{"groups are written even when the user has none", &registry.User{Username: "d"}, ClaimGroups,
			`{"groups":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(NewUserClaims(tt.u, tt.release))
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(got))
		})
	}
}

func TestAccessTokenClaimsFamily(t *testing.T) {
	tests := []struct {
		name    string
		c       AccessTokenClaims
		want    string
		forUser bool
	}{
		{"a token with latchkey_family belongs to that family", AccessTokenClaims{FamilyID: "fam", SessionID: "op"}, "fam", true},
		{"a token of a grant without an OP session belongs to its family", AccessTokenClaims{FamilyID: "fam"}, "fam", true},
		{"a token issued before latchkey_family carried its family in sid", AccessTokenClaims{SessionID: "fam"}, "fam", true},
		{"a client_credentials token has no family and acts for no user", AccessTokenClaims{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.c.Family())
			assert.Equal(t, tt.forUser, tt.c.ForUser())
		})
	}
}
