package oauth2

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNormalizeUserCode(t *testing.T) {
	tests := []struct {
		name, input, want string
		ok                bool
	}{
		{name: "the display form is accepted", input: "BCDF-GHJK", want: "BCDFGHJK", ok: true},
		{name: "lower case, spaces and extra dashes are ignored", input: " bcdf - ghjk\t", want: "BCDFGHJK", ok: true},
		{name: "no dash at all is fine", input: "bcdfghjk", want: "BCDFGHJK", ok: true},
		{name: "a vowel is not in the alphabet", input: "BCDF-GHJA", ok: false},
		{name: "a digit is not in the alphabet", input: "BCDF-GHJ1", ok: false},
		{name: "too short is refused", input: "BCDF-GHJ", ok: false},
		{name: "too long is refused", input: "BCDF-GHJKL", ok: false},
		{name: "empty is refused", input: "", ok: false},
		{name: "a look-alike of a letter outside ASCII is refused", input: "BCDF-GHJ\u212a", ok: false},
		{name: "an overlong input is refused before it is read", input: strings.Repeat(" ", 100) + "BCDFGHJK", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := NormalizeUserCode(tc.input)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestNewUserCodeIsNormalAndVaried(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := NewUserCode()
		require.NoError(t, err)
		require.Len(t, c, UserCodeLength+1)
		require.Equal(t, byte('-'), c[4])
		n, ok := NormalizeUserCode(c)
		require.True(t, ok, c)
		require.Equal(t, c, DisplayUserCode(n))
		seen[c] = true
	}
	require.Greater(t, len(seen), 195, "200 draws of 2^34 codes barely collide")
}

func FuzzNormalizeUserCode(f *testing.F) {
	for _, s := range []string{"BCDF-GHJK", " bcdf ghjk ", "", "ÄÖÜ-ßßßß", "BCDF-GHJ\u212a", "--------"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		code, ok := NormalizeUserCode(input)
		if !ok {
			require.Empty(t, code)
			return
		}
		require.Len(t, code, UserCodeLength)
		for _, r := range code {
			require.Contains(t, userCodeAlphabet, string(r))
		}
		again, ok := NormalizeUserCode(DisplayUserCode(code))
		require.True(t, ok)
		require.Equal(t, code, again, "normalising is idempotent")
	})
}
