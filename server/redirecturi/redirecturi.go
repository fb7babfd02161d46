package redirecturi

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLength is the most bytes a redirect URI may have (the CRD's items:MaxLength).
const MaxLength = 2048

// The reasons Check gives. Each reads after the URI: "<uri> must not contain a fragment".
var (
	ErrTooLong            = fmt.Errorf("is longer than %d bytes", MaxLength)
	ErrFragment           = errors.New("must not contain a fragment")
	ErrWhiteSpace         = errors.New("must not contain white space or control characters")
	ErrFormatCharacter    = errors.New("must not contain invisible format characters (zero-width or bidirectional controls)")
	ErrNotAbsolute        = errors.New("must be an absolute URI with a lower-case scheme")
	ErrUserInfo           = errors.New("must not contain user information")
	ErrNoHost             = errors.New("must name a host after https://")
	ErrHostNotASCII       = errors.New("must write its host in ASCII (an internationalized domain name in punycode, xn--)")
	ErrPort               = errors.New("must have a port from 1 to 65535, if any")
	ErrNotLoopback        = errors.New("may use http only on a loopback host (localhost, 127.0.0.1, [::1])")
	ErrSchemeNotAllowed   = errors.New("must use https, http on a loopback host, or a private-use scheme in reverse-domain form (e.g. com.example.app:/cb)")
	ErrNothingAfterScheme = errors.New("has nothing after its scheme")
)

var (
	// schemePrefix is a lower-case scheme and its colon (RFC 3986 3.1, lower case only).
	schemePrefix = regexp.MustCompile(`^[a-z][a-z0-9+.-]*:`)
	// loopbackHTTP is http on exactly a loopback host, an optional port, then '/', '?' or the end.
	loopbackHTTP = regexp.MustCompile(`^http://(localhost|127[.]0[.]0[.]1|[[]::1[]])(:[0-9]+)?([/?].*)?$`)
	// privateUseScheme is a private-use scheme in reverse-domain form and its colon (RFC 8252
	// 7.1): labels of [a-z0-9-] joined by single periods, at least two, the first starting with a
	// letter. The CRD's CEL rule has the same expression.
	privateUseScheme = regexp.MustCompile(`^[a-z][a-z0-9-]*([.][a-z0-9-]+)+:`)
)

// Check returns nil when u is an acceptable redirect URI, else one of the Err values above
// (see the package documentation for the rule).
func Check(u string) error {
	if len(u) > MaxLength {
		return ErrTooLong
	}
	if strings.Contains(u, "#") {
		return ErrFragment
	}
	if strings.IndexFunc(u, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return ErrWhiteSpace
	}
	if strings.IndexFunc(u, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) >= 0 {
		return ErrFormatCharacter
	}
	parsed, err := url.Parse(u)
	if err != nil || !schemePrefix.MatchString(u) {
		return ErrNotAbsolute
	}
	if parsed.User != nil {
		return ErrUserInfo
	}
	// Host is percent-decoded, so an escaped non-ASCII host is refused too.
	if strings.IndexFunc(parsed.Host, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0 {
		return ErrHostNotASCII
	}
	if p := parsed.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return ErrPort
		}
	}
	switch parsed.Scheme {
	case "https":
		if !strings.HasPrefix(u, "https://") || parsed.Hostname() == "" {
			return ErrNoHost
		}
	case "http":
		if !loopbackHTTP.MatchString(u) || !isLoopbackHost(parsed.Hostname()) {
			return ErrNotLoopback
		}
	default:
		if !privateUseScheme.MatchString(u) {
			return ErrSchemeNotAllowed
		}
		if len(u) == len(parsed.Scheme)+1 {
			return ErrNothingAfterScheme
		}
	}
	return nil
}

// isLoopbackHost reports whether host (a url.URL Hostname, without brackets or port) is one of the
// loopback hosts on which http redirect URIs are allowed.
func isLoopbackHost(host string) bool {
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}
