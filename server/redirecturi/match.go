package redirecturi

import (
	"slices"
	"strconv"
	"strings"
)

// Registered returns the registered redirect URI that requested stands for, and whether there is
// one. A requested URI stands for a registered one when the two are equal byte for byte, or (RFC
// 8252 7.3) when the registered one is an http URI on a loopback host and the requested one
// differs from it only in the port: a native app listens on whatever port the operating system
// gives it. Nothing is normalised: the host, the path and the query must still be the same bytes,
// so "http://127.0.0.1:5000/cb" stands for a registered "http://127.0.0.1/cb" but
// "http://localhost:5000/cb" and "http://127.0.0.1:5000/cb/" do not.
func Registered(registered []string, requested string) (string, bool) {
	if slices.Contains(registered, requested) {
		return requested, true
	}
	host, rest, ok := loopbackParts(requested)
	if !ok {
		return "", false
	}
	for _, r := range registered {
		if h, rr, ok := loopbackParts(r); ok && h == host && rr == rest {
			return requested, true
		}
	}
	return "", false
}

// loopbackParts splits an http URI on a loopback host into its host (without the port) and what
// follows the authority, and reports whether u is such a URI with a valid (or no) port.
func loopbackParts(u string) (host, rest string, ok bool) {
	const scheme = "http://"
	if !strings.HasPrefix(u, scheme) {
		return "", "", false
	}
	authority := u[len(scheme):]
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority, rest = authority[:i], authority[i:]
	}
	if strings.Contains(rest, "#") {
		return "", "", false
	}
	host = authority
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.HasSuffix(authority, "]") {
		host = authority[:i]
		port := authority[i+1:]
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || port[0] == '0' {
			return "", "", false
		}
	}
	switch host {
	case "localhost", "127.0.0.1", "[::1]":
		return host, rest, true
	}
	return "", "", false
}
