package redirecturi

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Origins returns the CORS origins of redirect URIs: the origin (Origin) of each https and http
// one, once each, in order; other schemes, and URIs without such an origin, add none. It is the
// default of a Public client's allowed origins.
func Origins(redirectURIs []string) []string {
	var out []string
	for _, raw := range redirectURIs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			continue
		}
		if o, ok := Origin(u.Scheme + "://" + u.Host); ok && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// Origin returns the serialisation of an http(s) origin, scheme://host[:port], as a browser
// sends it in the Origin header (RFC 6454 6.2, the WHATWG URL serialiser), so that the server
// compares Origin headers byte for byte: scheme and host in lower case, an IPv6 host in its
// canonical form, the port in decimal without leading zeros and left out when it is the
// scheme's default (80, 443). ok is false for anything else: another scheme, user information,
// a path (but a lone "/"), query or fragment, an empty host, a host with characters other than
// letters, digits, '.' and '-' (a browser would punycode or refuse it), an IPv4 address not in
// dotted-decimal form (a browser would rewrite 127.1 as 127.0.0.1) or a port over 65535.
func Origin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	defaultPort := map[string]string{"http": "80", "https": "443"}[scheme]
	if defaultPort == "" {
		return "", false
	}
	host, ok := originHost(u.Hostname(), strings.HasPrefix(u.Host, "["))
	if !ok {
		return "", false
	}
	port := u.Port()
	if port == "" && strings.HasSuffix(u.Host, ":") {
		return "", false // "https://host:" is not an origin anyone sends
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return "", false
		}
		if port = strconv.FormatUint(n, 10); port == defaultPort {
			port = ""
		}
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// originHost is the host of an origin as browsers serialise it, or false (see Origin).
func originHost(host string, bracketed bool) (string, bool) {
	if bracketed {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return "[" + a.String() + "]", true
	}
	host = strings.ToLower(host)
	if host == "" || strings.Trim(host, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
		return "", false
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if last := labels[len(labels)-1]; last != "" && (strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x")) {
		// A browser parses a host ending in a number as an IPv4 address.
		if a, err := netip.ParseAddr(host); err != nil || !a.Is4() || a.String() != host {
			return "", false
		}
	}
	return host, true
}
