package dpop

import (
	"crypto/sha256"
	"encoding/base64"
)

// thumbprintLength is the length of a base64url (unpadded) SHA-256 JWK thumbprint.
var thumbprintLength = base64.RawURLEncoding.EncodedLen(sha256.Size)

// ValidThumbprint reports whether s is the form of a JWK SHA-256 thumbprint (RFC 7638) as
// cnf.jkt and the dpop_jkt parameter (RFC 9449 10) carry it: 43 base64url characters without
// padding that decode to 32 bytes.
func ValidThumbprint(s string) bool {
	if len(s) != thumbprintLength {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == sha256.Size
}
