package oauth2

import "strings"

// BearerCredentials returns the token of an Authorization header value "Bearer <token>" (RFC
// 6750 2.1; the scheme is case-insensitive). isBearer is false for another scheme; token is ""
// when the credentials are not an RFC 6750 b64token.
func BearerCredentials(header string) (token string, isBearer bool) {
	scheme, tok, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimLeft(tok, " ")
	if !IsB64Token(tok) {
		return "", true
	}
	return tok, true
}

// IsB64Token reports whether s matches RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." /
// "_" / "~" / "+" / "/" ) *"=".
func IsB64Token(s string) bool {
	s = strings.TrimRight(s, "=")
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
