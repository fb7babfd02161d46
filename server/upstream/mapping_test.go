package upstream

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestMap(t *testing.T) {
	tests := []struct {
		name     string
		provider registry.UpstreamOIDC
		claims   string
		want     Identity
		wantErr  error
	}{
		{
			name:   "the defaults take email, groups, email_verified and name",
			claims: `{"sub":"u1","email":"a@example.com","preferred_username":"alice","groups":["dev","ops"],"email_verified":true,"name":"Alice"}`,
			want:   Identity{Username: "a@example.com", Email: "a@example.com", EmailVerified: true, Name: "Alice", Groups: []string{"dev", "ops"}},
		},
		{
			name:   "without email the username is preferred_username, then sub",
			claims: `{"sub":"u1","preferred_username":"alice"}`,
			want:   Identity{Username: "alice", Groups: []string{}},
		},
		{
			name:   "a single group string is one group",
			claims: `{"sub":"u1","groups":"dev"}`,
			want:   Identity{Username: "u1", Groups: []string{"dev"}},
		},
		{
			name:     "custom mappings are used",
			provider: registry.UpstreamOIDC{Claims: registry.ClaimMappings{Username: "'gh:' + claims.login", Groups: "claims.roles.map(r, 'role:' + r)"}},
			claims:   `{"sub":"u1","login":"octo","roles":["a"]}`,
			want:     Identity{Username: "gh:octo", Groups: []string{"role:a"}},
		},
		{
			name:    "a missing sub is refused",
			claims:  `{"email":"a@example.com"}`,
			wantErr: ErrClaims,
		},
		{
			name:    "an email that is a number is refused",
			claims:  `{"sub":"u1","email":42}`,
			wantErr: ErrClaims,
		},
		{
			name:    "groups that are not strings are refused",
			claims:  `{"sub":"u1","groups":[1,2]}`,
			wantErr: ErrClaims,
		},
		{
			name:     "a mapping on a missing claim is refused",
			provider: registry.UpstreamOIDC{Claims: registry.ClaimMappings{Username: "claims.login"}},
			claims:   `{"sub":"u1"}`,
			wantErr:  ErrClaims,
		},
		{
			name:     "a false claim validation rule is refused with its message",
			provider: registry.UpstreamOIDC{ClaimRules: []registry.ClaimRule{{Expression: "claims.email_verified == true", Message: "verify your email"}}},
			claims:   `{"sub":"u1","email_verified":false}`,
			wantErr:  ErrClaims,
		},
		{
			name:     "the allow policy sees the mapped user",
			provider: registry.UpstreamOIDC{AllowPolicy: "'admins' in user.groups"},
			claims:   `{"sub":"u1","groups":["admins"]}`,
			want:     Identity{Username: "u1", Groups: []string{"admins"}},
		},
		{
			name:     "a false allow policy refuses the user",
			provider: registry.UpstreamOIDC{AllowPolicy: "'admins' in user.groups"},
			claims:   `{"sub":"u1","groups":["dev"]}`,
			wantErr:  ErrNotAllowed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Compile(&tt.provider)
			require.NoError(t, err)
			var claims map[string]any
			require.NoError(t, json.Unmarshal([]byte(tt.claims), &claims))
			got, err := m.Map("corp", "uid-1", claims)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), "42", "the error never quotes a claim's value")
				return
			}
			require.NoError(t, err)
			tt.want.Kind, tt.want.Provider, tt.want.ProviderUID, tt.want.UpstreamSubject = registry.KindOIDC, "corp", "uid-1", claims["sub"].(string)
			tt.want.Subject = Subject("uid-1", tt.want.UpstreamSubject)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSubjectIsStablePerProviderUIDAndUpstreamSubject(t *testing.T) {
	a := Subject("uid-1", "alice")
	assert.Equal(t, a, Subject("uid-1", "alice"))
	assert.NotEqual(t, a, Subject("uid-2", "alice"), "a re-created provider is a new subject space")
	assert.NotEqual(t, a, Subject("uid-1", "alice2"))
	assert.NotEqual(t, Subject("uid-1\x00a", "b"), Subject("uid-1", "a\x00b"), "the separator cannot be forged in a UID")
	assert.True(t, strings.HasPrefix(a, "oidc:"))
	assert.Len(t, a, len("oidc:")+43)
	assert.NotContains(t, a, "alice")
}

func TestCompileRefusesBadExpressions(t *testing.T) {
	for name, p := range map[string]registry.UpstreamOIDC{
		"a username mapping that does not parse": {Claims: registry.ClaimMappings{Username: "claims.("}},
		"an allow policy that does not parse":    {AllowPolicy: "user.groups ||"},
		"a claim rule that is not bool":          {ClaimRules: []registry.ClaimRule{{Expression: "'x'"}}},
		"an unknown variable":                    {Claims: registry.ClaimMappings{Email: "token.email"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Compile(&p)
			assert.ErrorIs(t, err, ErrInvalidMapping)
		})
	}
}

func FuzzMap(f *testing.F) {
	for _, s := range []string{
		`{"sub":"u1","email":"a@example.com","groups":["a"]}`,
		`{"sub":1}`, `{"sub":"u","groups":{"a":1}}`, `{"sub":"u","email_verified":"yes"}`,
		`{"sub":"u","groups":[null,[],{}]}`, `{"sub":"u","name":[1.5e308]}`, `{"sub":"","email":true}`,
	} {
		f.Add(s)
	}
	m, err := Compile(&registry.UpstreamOIDC{AllowPolicy: "user.username != 'root' && size(user.groups) >= 0",
		ClaimRules: []registry.ClaimRule{{Expression: "!has(claims.blocked) || claims.blocked == false"}}})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, s string) {
		var claims map[string]any
		if json.Unmarshal([]byte(s), &claims) != nil {
			return
		}
		id, err := m.Map("p", "uid", claims)
		if err != nil {
			if !errors.Is(err, ErrClaims) && !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("error %v is neither ErrClaims nor ErrNotAllowed", err)
			}
			return
		}
		if id.Username == "" || id.Subject == "" {
			t.Fatalf("empty identity %+v", id)
		}
	})
}
