package token

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// Shape of a refresh token: "<family ID>.<secret>", a 22-character family ID (16 random bytes)
// and a 43-character secret (32 random bytes), both base64url without padding. The family
// prefix lets a Redis backend hash-tag a family's keys; only the token's hash is stored.
const (
	familyIDLength     = 22
	refreshSecretBytes = 32
	refreshTokenLength = familyIDLength + 1 + 43
)

// NewFamilyID returns a new grant (refresh token family) ID: 16 random bytes, base64url
// without padding (22 characters). Access tokens of the grant carry it (see
// AccessTokenRequest.FamilyID), so revoking the family revokes them too.
func NewFamilyID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: random family ID: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// NewRefreshToken returns a new refresh token of the family (a NewFamilyID value).
func NewRefreshToken(familyID string) (string, error) {
	if len(familyID) != familyIDLength {
		return "", fmt.Errorf("token: family ID of %d characters, want %d", len(familyID), familyIDLength)
	}
	var b [refreshSecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: random refresh token: %w", err)
	}
	return familyID + "." + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// IsRefreshToken reports whether s has the shape NewRefreshToken makes, so that anything
// else is refused before the store is asked (and a JWT is never taken for one).
func IsRefreshToken(s string) bool {
	if len(s) != refreshTokenLength || s[familyIDLength] != '.' {
		return false
	}
	for i := range len(s) {
		if i != familyIDLength && !isBase64URL(s[i]) {
			return false
		}
	}
	return true
}

// RefreshFamily returns the family ID of a token for which IsRefreshToken holds.
func RefreshFamily(s string) string { return s[:familyIDLength] }

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
