package oauth2

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// PKCE code challenge methods (RFC 7636 4.2).
const (
	PKCES256  = "S256"
	PKCEPlain = "plain"
)

// PKCE policies of a client (OAuthClient spec.pkce); empty means RequiredS256.
const (
	pkcePolicyRequired = "Required"
	pkcePolicyOptional = "Optional"
)

// Lengths of a code verifier (RFC 7636 4.1) and of an S256 challenge (base64url of 32 bytes).
const (
	minVerifierLength = 43
	maxVerifierLength = 128
	s256Length        = 43
)

// PKCERequired reports whether the client must send a code challenge: always for public
// clients, and for confidential ones unless their policy is Optional.
func PKCERequired(c *registry.Client) bool {
	return IsPublic(c) || c.PKCE != pkcePolicyOptional
}

// plainAllowed reports whether the client may use the plain method. RequiredS256 (the default)
// refuses it; Required allows it, and so does Optional, since a plain challenge is no weaker
// than none.
func plainAllowed(c *registry.Client) bool {
	return c.PKCE == pkcePolicyRequired || c.PKCE == pkcePolicyOptional
}

// CheckCodeChallenge applies the client's PKCE policy to the challenge of an authorization
// request and returns the method to store ("" without PKCE).
func CheckCodeChallenge(c *registry.Client, challenge, method string) (string, error) {
	if challenge == "" {
		if method != "" {
			return "", InvalidRequest("The code_challenge_method parameter requires code_challenge.")
		}
		if PKCERequired(c) {
			return "", InvalidRequest("The client must use PKCE: code_challenge is missing.")
		}
		return "", nil
	}
	if method == "" {
		method = PKCEPlain // RFC 7636 4.3
	}
	switch method {
	case PKCES256:
		if len(challenge) != s256Length || !IsUnreserved(challenge) {
			return "", InvalidRequest("The code_challenge must be the 43-character base64url SHA-256 of the verifier.")
		}
	case PKCEPlain:
		if !plainAllowed(c) {
			return "", InvalidRequest("The client must use code_challenge_method S256.")
		}
		if !validVerifier(challenge) {
			return "", InvalidRequest("A plain code_challenge must be 43 to 128 unreserved characters.")
		}
	default:
		return "", InvalidRequest("The code_challenge_method must be S256 or plain.")
	}
	return method, nil
}

// validVerifier reports whether v has the syntax of a code verifier (RFC 7636 4.1).
func validVerifier(v string) bool {
	return len(v) >= minVerifierLength && len(v) <= maxVerifierLength && IsUnreserved(v)
}

// IsUnreserved reports whether s holds only [A-Za-z0-9-._~].
func IsUnreserved(s string) bool {
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// VerifyCodeChallenge reports, in constant time, whether the verifier matches the challenge.
func VerifyCodeChallenge(challenge, method, verifier string) bool {
	if !validVerifier(verifier) {
		return false
	}
	var computed string
	switch method {
	case PKCES256:
		sum := sha256.Sum256([]byte(verifier))
		computed = base64.RawURLEncoding.EncodeToString(sum[:])
	case PKCEPlain:
		computed = verifier
	default:
		return false
	}
	return subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) == 1
}
