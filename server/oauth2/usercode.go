package oauth2

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/latchkey-dev/latchkey/server/store"
)

// User codes (RFC 8628 6.1): 8 characters from 20 consonants (no vowels, so no words; no
// letters that look like digits), shown as XXXX-XXXX. 20^8 is about 2^34.6 codes; with the
// verification page's limits on failed entries (RFC 8628 5.1) a guess is hopeless within a
// code's lifetime.
const (
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	// UserCodeLength is the number of characters of a user code, without the dash.
	UserCodeLength = 8
	// maxUserCodeInput bounds what NormalizeUserCode reads: a code with generous spacing.
	maxUserCodeInput = 64
)

// NewUserCode returns a random user code in its display form, XXXX-XXXX.
func NewUserCode() (string, error) {
	var b [UserCodeLength]byte
	out := make([]byte, 0, UserCodeLength+1)
	// 256 is not a multiple of 20: bytes from 240 on are drawn again, so every character is
	// equally likely.
	for i := 0; i < UserCodeLength; {
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("random user code: %w", err)
		}
		for _, c := range b {
			if i == UserCodeLength {
				break
			}
			if c >= 240 {
				continue
			}
			if i == UserCodeLength/2 {
				out = append(out, '-')
			}
			out = append(out, userCodeAlphabet[int(c)%len(userCodeAlphabet)])
			i++
		}
	}
	return string(out), nil
}

// NormalizeUserCode returns the canonical form of a user code as a person typed it: upper
// case, without dashes and white space (XXXXXXXX). ok is false when what is left is not
// UserCodeLength characters of the alphabet.
func NormalizeUserCode(input string) (code string, ok bool) {
	if len(input) > maxUserCodeInput {
		return "", false
	}
	var b strings.Builder
	b.Grow(UserCodeLength)
	for _, r := range input {
		switch {
		case r == '-' || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\u00a0':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		if r > 'Z' || !strings.ContainsRune(userCodeAlphabet, r) || b.Len() == UserCodeLength {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != UserCodeLength {
		return "", false
	}
	return b.String(), true
}

// DisplayUserCode is the display form (XXXX-XXXX) of a normalised user code.
func DisplayUserCode(code string) string {
	if len(code) != UserCodeLength {
		return code
	}
	return code[:UserCodeLength/2] + "-" + code[UserCodeLength/2:]
}

// UserCodeHash is the store key of a normalised user code (store.DeviceGrant.UserCode).
func UserCodeHash(normalized string) store.Hash { return store.HashOf("user-code\x00" + normalized) }
