package dpop

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// NormalizeURI returns the form in which htu and the request URI are compared (RFC 9449 4.3,
// RFC 3986 6.2.2 and 6.2.3): an absolute http(s) URI without query and fragment, scheme and host
// lowercased, the default port dropped, an empty path made "/", and percent-encoding
// normalised (unreserved characters decoded, hex digits uppercased).
func NormalizeURI(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && scheme != "http") || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", errors.New("not an absolute http(s) URI with a host")
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := normalizePercent(u.EscapedPath())
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// normalizePercent decodes percent-encoded unreserved characters and uppercases the hex digits
// of the others (RFC 3986 6.2.2.1, 6.2.2.2); the path came from url.URL, so every % starts a
// valid triplet.
func normalizePercent(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+2 >= len(p) {
			b.WriteByte(p[i])
			continue
		}
		c, err := strconv.ParseUint(p[i+1:i+3], 16, 8)
		if err != nil {
			b.WriteByte(p[i])
			continue
		}
		if unreserved(byte(c)) {
			b.WriteByte(byte(c))
		} else {
			b.WriteString(strings.ToUpper(p[i : i+3]))
		}
		i += 2
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
