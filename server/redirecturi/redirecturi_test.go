package redirecturi

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		want error
	}{
		{"https with a host and a path is accepted", "https://app.example/cb", nil},
		{"https with a port and a query is accepted", "https://app.example:8443/cb?x=1&y=2", nil},
		{"https with an IPv6 host is accepted", "https://[2001:db8::1]/cb", nil},
		{"http on localhost is accepted", "http://localhost/cb", nil},
		{"http on localhost with a port and no path is accepted", "http://localhost:8080", nil},
		{"http on 127.0.0.1 without a path is accepted", "http://127.0.0.1", nil},
		{"http on 127.0.0.1 with a port is accepted", "http://127.0.0.1:53412/cb", nil},
		{"http on [::1] with a port is accepted", "http://[::1]:8080/cb", nil},
		{"http on localhost followed by a query is accepted", "http://localhost?x=1", nil},
		{"a private-use scheme with a path is accepted", "com.example.app:/oauth2redirect", nil},
		{"a private-use scheme with an authority is accepted", "com.example.app://callback", nil},
		{"a private-use scheme with digits and hyphens is accepted", "com.googleusercontent.apps.123-abc:/oauth2redirect", nil},
		{"a URI of exactly 2048 bytes is accepted", "https://app.example/" + strings.Repeat("a", MaxLength-20), nil},
		{"an internationalized domain name in punycode is accepted", "https://xn--mnchen-3ya.example/cb", nil},
		{"non-ASCII characters in the path are accepted", "https://app.example/m\u00fcnchen", nil},
		{"port 1 is accepted", "https://app.example:1/cb", nil},
		{"port 65535 is accepted", "http://127.0.0.1:65535/cb", nil},

		{"a URI longer than 2048 bytes is refused", "https://app.example/" + strings.Repeat("a", MaxLength-19), ErrTooLong},
		{"a fragment is refused", "https://app.example/cb#frag", ErrFragment},
		{"an empty fragment is refused", "https://app.example/cb#", ErrFragment},
		{"a space is refused", "https://example.com/a b", ErrWhiteSpace},
		{"a tab is refused", "https://app.example/a\tb", ErrWhiteSpace},
		{"a newline is refused", "http://localhost\n.evil/cb", ErrWhiteSpace},
		{"a NUL byte is refused", "https://app.example/\x00", ErrWhiteSpace},
		{"DEL is refused", "https://app.example/\x7f", ErrWhiteSpace},
		{"a C1 control character is refused", "https://app.example/\u0080", ErrWhiteSpace},
		{"a no-break space is refused", "https://app.example/\u00a0", ErrWhiteSpace},
		{"a line separator is refused", "https://app.example/\u2028", ErrWhiteSpace},
		{"an ideographic space is refused", "https://app.example/\u3000", ErrWhiteSpace},
		{"a zero-width space is refused", "https://app.example/c\u200bb", ErrFormatCharacter},
		{"a zero-width joiner in the host is refused", "https://app\u200d.example/cb", ErrFormatCharacter},
		{"a right-to-left override is refused", "https://app.example/\u202ebc", ErrFormatCharacter},
		{"a left-to-right isolate is refused", "com.example.app:/\u2066cb\u2069", ErrFormatCharacter},
		{"a byte order mark is refused", "https://app.example/\ufeff", ErrFormatCharacter},
		{"a soft hyphen is refused", "https://app\u00ad.example/cb", ErrFormatCharacter},
		{"a non-ASCII host is refused", "https://m\u00fcnchen.example/cb", ErrHostNotASCII},
		{"a percent-encoded non-ASCII host is refused", "https://m%C3%BCnchen.example/cb", ErrHostNotASCII},
		{"a Cyrillic look-alike host is refused", "https://\u0430pp.example/cb", ErrHostNotASCII},
		{"a non-ASCII host of a private-use URI is refused", "com.example.app://c\u00e4llback/cb", ErrHostNotASCII},
		{"port 0 is refused", "https://app.example:0/cb", ErrPort},
		{"port 99999 is refused", "https://app.example:99999/cb", ErrPort},
		{"port 65536 on a loopback host is refused", "http://localhost:65536/cb", ErrPort},
		{"port 0 on a loopback host is refused", "http://[::1]:0/cb", ErrPort},
		{"a port too long for an integer is refused", "https://app.example:" + strings.Repeat("9", 30) + "/cb", ErrPort},
		{"port 0 of a private-use URI is refused", "com.example.app://callback:0/cb", ErrPort},
		{"an empty string is refused", "", ErrNotAbsolute},
		{"a relative URI is refused", "/relative/cb", ErrNotAbsolute},
		{"a URI without a scheme is refused", "app.example/cb", ErrNotAbsolute},
		{"an upper-case https scheme is refused", "HTTPS://app.example/cb", ErrNotAbsolute},
		{"a mixed-case https scheme is refused", "Https://app.example/cb", ErrNotAbsolute},
		{"an upper-case javascript scheme is refused", "JAVASCRIPT:alert(1)", ErrNotAbsolute},
		{"a URI net/url cannot parse is refused", "https://app.example:port/cb", ErrNotAbsolute},
		{"user information with a password is refused", "https://user:pw@example.com/cb", ErrUserInfo},
		{"a user name is refused", "https://user@app.example/cb", ErrUserInfo},
		{"an empty user name is refused", "https://@app.example/cb", ErrUserInfo},
		{"user information on localhost is refused", "http://user@localhost/cb", ErrUserInfo},
		{"user information that makes localhost look like the host is refused", "http://localhost@evil.example/cb", ErrUserInfo},
		{"user information in a private-use URI is refused", "com.example.app://user@callback", ErrUserInfo},
		{"https without a host is refused", "https:///cb", ErrNoHost},
		{"https without slashes is refused", "https:app.example", ErrNoHost},
		{"https with only a port is refused", "https://:443/cb", ErrNoHost},
		{"https with nothing after the scheme is refused", "https:", ErrNoHost},
		{"http on another host is refused", "http://app.example/cb", ErrNotLoopback},
		{"http on a host merely starting with localhost is refused", "http://localhost.evil.example/cb", ErrNotLoopback},
		{"http on another loopback address is refused", "http://127.0.0.2/cb", ErrNotLoopback},
		{"http without slashes is refused", "http:localhost", ErrNotLoopback},
		{"javascript is refused", "javascript:alert(1)", ErrSchemeNotAllowed},
		{"data is refused", "data:text/html,hi", ErrSchemeNotAllowed},
		{"vbscript is refused", "vbscript:msgbox", ErrSchemeNotAllowed},
		{"file is refused", "file:///etc/passwd", ErrSchemeNotAllowed},
		{"a private-use scheme with nothing after it is refused", "com.example.app:", ErrNothingAfterScheme},
		{"a single-label private-use scheme is refused", "myapp://callback", ErrSchemeNotAllowed},
		{"a single-label private-use scheme with a path is refused", "myapp:/cb", ErrSchemeNotAllowed},
		{"a single-label scheme with nothing after it is refused", "myapp:", ErrSchemeNotAllowed},
		{"ws is refused", "ws://app.example/cb", ErrSchemeNotAllowed},
		{"wss is refused", "wss://app.example/cb", ErrSchemeNotAllowed},
		{"ftp is refused", "ftp://app.example/cb", ErrSchemeNotAllowed},
		{"blob is refused", "blob:https://app.example/0b5f", ErrSchemeNotAllowed},
		{"about:blank is refused", "about:blank", ErrSchemeNotAllowed},
		{"view-source is refused", "view-source:https://app.example/", ErrSchemeNotAllowed},
		{"ms-officecmd is refused", "ms-officecmd:x", ErrSchemeNotAllowed},
		{"a scheme with '+' is refused", "com.example+app:/cb", ErrSchemeNotAllowed},
		{"a scheme with an empty label is refused", "com..example:/cb", ErrSchemeNotAllowed},
		{"a scheme ending in a period is refused", "com.example.:/cb", ErrSchemeNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.uri)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check(%.80q) = %v, want %v", tt.uri, err, tt.want)
			}
		})
	}
}

func TestCheckErrorsDoNotRepeatTheURI(t *testing.T) {
	const uri = "https://secret-looking-user:pw@example.com/cb"
	err := Check(uri)
	if err == nil {
		t.Fatal("user information was accepted")
	}
	if strings.Contains(err.Error(), "secret-looking-user") || strings.Contains(err.Error(), "example.com") {
		t.Fatalf("error %q repeats the URI", err)
	}
}

var (
	lowerScheme = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
	reasons     = []error{ErrTooLong, ErrFragment, ErrWhiteSpace, ErrFormatCharacter, ErrNotAbsolute, ErrUserInfo,
		ErrHostNotASCII, ErrPort, ErrNoHost, ErrNotLoopback, ErrSchemeNotAllowed, ErrNothingAfterScheme}
)

func FuzzCheck(f *testing.F) {
	for _, u := range []string{
		"https://app.example/cb", "http://localhost:8080/cb", "http://[::1]/", "http://127.0.0.1",
		"com.example.app:/cb", "com.example.app:", "javascript:alert(1)", "vbscript:x", "file:///etc/passwd",
		"data:,x", "http://localhost.evil/cb", "https://a/#f", "HTTP://localhost/", "http://localhost\n.evil",
		"https://user:pw@example.com/cb", "https://example.com/a b", "https://:1/", "http://[::1]@x/",
		"myapp://cb", "https://a\u00a0b/", "ws://a/", "blob:https://a/x", "about:blank", "a.b:/c", "a+b.c:/d",
		"https://a/\u200b", "https://\u00e9.example/", "https://%C3%A9/", "https://a:0/", "http://localhost:99999/", "a.b://h:65535/",
	} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, u string) {
		err := Check(u)
		if err != nil {
			for _, r := range reasons {
				if err == r { //nolint:errorlint // identity is the point: one of the fixed reasons, unwrapped
					return
				}
			}
			t.Fatalf("Check(%q) = %v, which is not one of the fixed reasons", u, err)
		}
		// What is accepted is safe to store, to compare and to redirect a browser to.
		if len(u) > MaxLength {
			t.Fatalf("accepted %d bytes", len(u))
		}
		if strings.ContainsRune(u, '#') {
			t.Fatalf("accepted %q with a fragment", u)
		}
		if strings.ContainsFunc(u, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) {
			t.Fatalf("accepted %q with white space, a control or a format character", u)
		}
		parsed, perr := url.Parse(u)
		if perr != nil {
			t.Fatalf("accepted %q, which net/url cannot parse: %v", u, perr)
		}
		scheme, rest, _ := strings.Cut(u, ":")
		if !lowerScheme.MatchString(scheme) || parsed.Scheme != scheme {
			t.Fatalf("accepted %q without a lower-case scheme", u)
		}
		if parsed.User != nil {
			t.Fatalf("accepted %q with user information", u)
		}
		for i := range len(parsed.Host) {
			if parsed.Host[i] >= 0x80 {
				t.Fatalf("accepted %q with a host that is not ASCII", u)
			}
		}
		if p := parsed.Port(); p != "" {
			if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
				t.Fatalf("accepted %q with port %q", u, p)
			}
		}
		switch scheme {
		case "https":
			if !strings.HasPrefix(u, "https://") || parsed.Hostname() == "" {
				t.Fatalf("accepted https %q without a host", u)
			}
		case "http":
			if h := parsed.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
				t.Fatalf("accepted http to %q, not a loopback host", h)
			}
		default:
			if rest == "" {
				t.Fatalf("accepted %q with nothing after its scheme", u)
			}
			labels := strings.Split(scheme, ".")
			if len(labels) < 2 || strings.Contains(scheme, "+") || slices.Contains(labels, "") {
				t.Fatalf("accepted %q, whose scheme is not in reverse-domain form", u)
			}
		}
	})
}
