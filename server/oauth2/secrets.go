package oauth2

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// SecretLength is the length of every random identifier of the browser flow (session IDs,
// pending request IDs, CSRF tokens) and of authorization codes: 32 random bytes, base64url.
const SecretLength = 43

// NewSecret returns 32 random bytes, base64url-encoded without padding.
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// WellFormedSecret reports whether s could be a value of NewSecret, so that garbage from a
// cookie, a form or a token request never reaches the store.
func WellFormedSecret(s string) bool { return len(s) == SecretLength && IsUnreserved(s) }
