package register

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	tokenA = "initial-token-0123456789abcdef"
	tokenB = "second-initial-token-0123456789"
)

func TestParseInitialTokens(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []InitialToken
	}{
		{"tokens are read one a line, skipping comments and blank lines",
			"# team tokens\n\n  " + tokenA + "  \r\n" + tokenB + "\n",
			[]InitialToken{{Hash: HashInitialToken(tokenA)}, {Hash: HashInitialToken(tokenB)}}},
		{"a token may carry its scopes and grant types, in any order",
			tokenA + " scopes=read:projects,openid grants=client_credentials,refresh_token\n" + tokenB + "\tgrants=authorization_code scopes=a",
			[]InitialToken{
				{Hash: HashInitialToken(tokenA), Scopes: []string{"read:projects", "openid"}, GrantTypes: []string{"client_credentials", "refresh_token"}},
				{Hash: HashInitialToken(tokenB), Scopes: []string{"a"}, GrantTypes: []string{"authorization_code"}},
			}},
		{"scopes=* allows every scope", tokenA + " scopes=*", []InitialToken{{Hash: HashInitialToken(tokenA), Scopes: []string{AnyScope}}}},
		{"an empty scopes= allows none", tokenA + " scopes=", []InitialToken{{Hash: HashInitialToken(tokenA), Scopes: []string{}}}},
		{"repeated list entries are dropped", tokenA + " scopes=a,a grants=refresh_token,refresh_token",
			[]InitialToken{{Hash: HashInitialToken(tokenA), Scopes: []string{"a"}, GrantTypes: []string{"refresh_token"}}}},
		{"a comment may follow the attributes", tokenA + " scopes=a # the CI token\n",
			[]InitialToken{{Hash: HashInitialToken(tokenA), Scopes: []string{"a"}}}},
		{"a comment may start right after its # without a space", tokenA + " #scopes=a\n",
			[]InitialToken{{Hash: HashInitialToken(tokenA)}}},
		{"a # inside a word does not start a comment", tokenA + " scopes=read#all\n",
			[]InitialToken{{Hash: HashInitialToken(tokenA), Scopes: []string{"read#all"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseInitialTokens([]byte(tt.data))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	refused := []struct{ name, data string }{
		{"an empty file is refused", "# nothing\n"},
		{"a short token is refused", "short\n"},
		{"a token with a space is refused", "abcdefgh ijklmnopqrstu\n"},
		{"a second word that is not an attribute is refused", tokenA + " ijklmnopqrstuvwxyz\n"},
		{"an unknown attribute is refused", tokenA + " scope=ijklmnopqrstuvwxyz\n"},
		{"an attribute given twice is refused", tokenA + " scopes=a scopes=ijklmnopqrstuvwxyz\n"},
		{"a scope that is not a scope token is refused", tokenA + " scopes=a,ijklm\"nopqrstuvwxyz\n"},
		{"an empty scope in the list is refused", tokenA + " scopes=a,,b\n"},
		{"* among other scopes is refused", tokenA + " scopes=a,*\n"},
		{"an unknown grant type is refused", tokenA + " grants=ijklmnopqrstuvwxyz\n"},
		{"the password grant is refused", tokenA + " grants=password\n"},
		{"an empty grants= is refused", tokenA + " grants=\n"},
		{"a token listed twice is refused", tokenA + "\n" + tokenA + " scopes=*\n"},
		{"a line over 64 KiB is refused", tokenA + " scopes=" + strings.Repeat("a", 70<<10)},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInitialTokens([]byte(tt.data))
			require.Error(t, err)
			for _, secret := range []string{"ijklm", tokenA} {
				assert.NotContains(t, err.Error(), secret, "errors never contain a token or a value")
			}
		})
	}
}

func TestMatchInitialToken(t *testing.T) {
	tokens, err := ParseInitialTokens([]byte(tokenA + " scopes=a\n" + tokenB + " grants=refresh_token\n"))
	require.NoError(t, err)
	got := matchInitialToken(tokens, tokenB)
	require.NotNil(t, got)
	assert.Equal(t, []string{"refresh_token"}, got.GrantTypes)
	assert.Nil(t, matchInitialToken(tokens, tokenA+"x"))
	assert.Nil(t, matchInitialToken(nil, tokenA))
}

// fixedWords are words the errors of ParseInitialTokens may contain whatever the input.
const fixedWords = "register: initial access token on line want at least characters scopes= grants= authorization_code refresh_token client_credentials"

func FuzzParseInitialTokens(f *testing.F) {
	f.Add(tokenA + "\n")
	f.Add("# c\n" + tokenA + " scopes=read:projects,openid grants=client_credentials # x\n" + tokenB + " scopes=*\n")
	f.Add(tokenA + " scopes= grants=authorization_code,refresh_token\r\n")
	f.Add(tokenA + " scopes=a scopes=b\n")
	f.Add(tokenA + " grants=password\n" + tokenA)
	f.Add(tokenA + "== x=y\n\n\t#")
	f.Add("abcdefghijklmnop\nabcdefghijklmnop\n")
	f.Fuzz(func(t *testing.T, data string) {
		got, err := ParseInitialTokens([]byte(data))
		if err != nil {
			for _, field := range strings.Fields(data) {
				if len(field) >= minInitialTokenLen && !strings.Contains(fixedWords, field) && strings.Contains(err.Error(), field) {
					t.Fatalf("the error %q repeats %q of the input", err, field)
				}
			}
			return
		}
		require.NotEmpty(t, got)
		var firsts []InitialTokenHash
		for line := range strings.Lines(data) {
			if fields := strings.Fields(line); len(fields) > 0 && !strings.HasPrefix(fields[0], "#") {
				firsts = append(firsts, HashInitialToken(fields[0]))
			}
		}
		require.Len(t, got, len(firsts), "one token a line that is not blank or a comment")
		seen := map[InitialTokenHash]bool{}
		for i, tok := range got {
			require.Equal(t, firsts[i], tok.Hash, "the token is the first word of its line")
			require.False(t, seen[tok.Hash], "a token is listed once")
			seen[tok.Hash] = true
			require.Len(t, regDedupe(tok.Scopes), len(tok.Scopes), "no repeats")
			if !tok.allowsAnyScope() {
				require.LessOrEqual(t, len(tok.Scopes), regMaxScopes)
				for _, s := range tok.Scopes {
					require.Regexp(t, regScopeToken, s)
					require.LessOrEqual(t, len(s), regMaxScopeLen)
					require.NotEqual(t, AnyScope, s)
				}
			}
			require.True(t, tok.GrantTypes == nil || len(tok.GrantTypes) > 0, "grants= never allows nothing")
			require.Len(t, regDedupe(tok.GrantTypes), len(tok.GrantTypes), "no repeats")
			for _, g := range tok.GrantTypes {
				require.Contains(t, registrableGrants, g)
			}
		}
	})
}
