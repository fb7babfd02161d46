package token

import (
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s to dst as a quoted JSON string. It escapes exactly as
// encoding/json does with HTML escaping turned off: '"', '\\' and control characters are
// escaped, invalid UTF-8 becomes \ufffd, and U+2028 and U+2029 are escaped for JavaScript.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

// appendEscaped appends the body of the JSON string s, without quotes.
func appendEscaped(dst []byte, s string) []byte {
	start := 0 // s[start:i] is pending, needs no escaping
	for i := 0; i < len(s); {
		if i+8 <= len(s) && !mayNeedEscape(s[i:i+8]) {
			i += 8
			continue
		}
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscapedByte(dst, b)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// Byte masks for testing eight bytes at once.
const (
	swarOnes  = 0x0101010101010101
	swarHighs = 0x8080808080808080
)

// mayNeedEscape reports whether any of the 8 bytes of s is a control character, '"', '\\' or
// not ASCII. Each test leaves a byte's high bit set where the byte matched (SWAR).
func mayNeedEscape(s string) bool {
	_ = s[7]
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	lessThanSpace := (x - swarOnes*0x20) &^ x
	q := x ^ swarOnes*'"'
	quote := (q - swarOnes) &^ q
	b := x ^ swarOnes*'\\'
	backslash := (b - swarOnes) &^ b
	return (lessThanSpace|quote|backslash|x)&swarHighs != 0
}

// appendEscapedByte appends the JSON escape of an ASCII byte that may not appear raw.
func appendEscapedByte(dst []byte, b byte) []byte {
	switch b {
	case '"', '\\':
		return append(dst, '\\', b)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	default:
		return append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
	}
}

// AccessTokenClaims are the claims of an RFC 9068 access token.
type AccessTokenClaims struct {
	Issuer   string
	Subject  string
	Audience []string // one value is written as a string, several as an array
	// Expiry and IssuedAt are Unix times in seconds.
	Expiry   int64
	IssuedAt int64
	ID       string   // jti
	ClientID string   // client_id
	Scopes   []string // written space-separated as scope; omitted when empty
	// SessionID is the sid claim, the grant (refresh token family) the token belongs to;
	// omitted when empty.
	SessionID string
}

// AppendAccessTokenClaims appends the claims as a JSON object to dst.
func AppendAccessTokenClaims(dst []byte, c *AccessTokenClaims) []byte {
	dst = append(dst, `{"iss":`...)
	dst = AppendJSONString(dst, c.Issuer)
	dst = append(dst, `,"sub":`...)
	dst = AppendJSONString(dst, c.Subject)
	dst = appendAudience(dst, c.Audience)
	dst = append(dst, `,"exp":`...)
	dst = strconv.AppendInt(dst, c.Expiry, 10)
	dst = append(dst, `,"iat":`...)
	dst = strconv.AppendInt(dst, c.IssuedAt, 10)
	dst = append(dst, `,"jti":`...)
	dst = AppendJSONString(dst, c.ID)
	dst = append(dst, `,"client_id":`...)
	dst = AppendJSONString(dst, c.ClientID)
	if len(c.Scopes) > 0 {
		dst = append(dst, `,"scope":`...)
		dst = AppendScope(dst, c.Scopes)
	}
	if c.SessionID != "" {
		dst = append(dst, `,"sid":`...)
		dst = AppendJSONString(dst, c.SessionID)
	}
	return append(dst, '}')
}

func appendAudience(dst []byte, aud []string) []byte {
	switch len(aud) {
	case 0:
		return dst
	case 1:
		dst = append(dst, `,"aud":`...)
		return AppendJSONString(dst, aud[0])
	}
	dst = append(dst, `,"aud":[`...)
	for i, a := range aud {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, a)
	}
	return append(dst, ']')
}

// AppendScope appends scope names as one JSON string, separated by single spaces: the form of
// the scope claim and of the scope member of a token response.
func AppendScope(dst []byte, scopes []string) []byte {
	dst = append(dst, '"')
	for i, s := range scopes {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = appendEscaped(dst, s)
	}
	return append(dst, '"')
}
