package token

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRefreshTokenShape(t *testing.T) {
	for _, tt := range []struct {
		name string
		tok  string
		want bool
	}{
		{"a family ID, a dot and 43 base64url characters is well formed",
			"AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_AA", true},
		{"a dot elsewhere is not", "AAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false},
		{"a shorter token is not", "AAAAAAAAAAAAAAAAAAAAAA.AAAA", false},
		{"padding is not base64url", "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", false},
		{"a JWT is not", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", false},
	} {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, IsRefreshToken(tt.tok)) })
	}
}

func TestNewRefreshTokenHasTheShapeAndFamily(t *testing.T) {
	fam, err := NewFamilyID()
	require.NoError(t, err)
	assert.Len(t, fam, 22)
	tok, err := NewRefreshToken(fam)
	require.NoError(t, err)
	assert.True(t, IsRefreshToken(tok), tok)
	assert.Equal(t, fam, RefreshFamily(tok))
	other, err := NewRefreshToken(fam)
	require.NoError(t, err)
	assert.NotEqual(t, tok, other, "the secret part is random")
	_, err = NewRefreshToken("short")
	assert.Error(t, err, "a family ID of another length is refused")
}
