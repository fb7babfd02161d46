package oauth2

import (
	"net/http"
)

// CORS is a route's cross-origin policy (the Fetch standard's CORS protocol). Credentials are
// never allowed: no policy sends Access-Control-Allow-Credentials, so a browser sends no
// cookies or HTTP authentication of its own, and reads no answer to a request that has them.
type CORS int

// The CORS policies of the route table.
const (
	// CORSNone answers no CORS: the browser pages, introspection, registration.
	CORSNone CORS = iota
	// CORSClientOrigins allows the origins that a Public client allows (Mux.AllowOrigins),
	// each by name, never "*": the token, revocation and userinfo endpoints.
	CORSClientOrigins
	// CORSAnyOrigin allows every origin with "*": the public documents (discovery, JWKS),
	// which browsers' OpenID Connect libraries fetch from the relying party's origin.
	CORSAnyOrigin
)

// CORS answers: the headers a preflight allows besides the CORS-safelisted ones (Authorization
// for Bearer and DPoP tokens and Basic client credentials, Content-Type for JSON bodies, DPoP
// for proofs, X-Request-Id), how long a browser may cache a preflight answer, and the answer
// headers a page may read besides the safelisted ones (WWW-Authenticate and X-Request-Id,
// which a page can report with an error, and DPoP-Nonce, which a DPoP client must resend).
const (
	CORSAllowHeaders  = "Authorization, Content-Type, DPoP, X-Request-Id"
	CORSMaxAgeSeconds = "600"
	CORSExposeHeaders = "WWW-Authenticate, DPoP-Nonce, X-Request-Id"
)

// corsVary is the Vary of a preflight's answer: whether it allows anything depends on both.
const corsVary = "Origin, Access-Control-Request-Method"

// corsRoute answers CORS for one route of the table: the actual requests (wrap) and the
// preflights (preflight).
type corsRoute struct {
	policy  CORS
	allowed func(origin string) bool // CORSClientOrigins; nil allows none
	methods string                   // Access-Control-Allow-Methods: the mounted methods
}

// allows reports whether the route allows origin: every origin under CORSAnyOrigin, one a
// Public client allows under CORSClientOrigins.
func (c corsRoute) allows(origin string) bool {
	switch c.policy {
	case CORSAnyOrigin:
		return true
	case CORSClientOrigins:
		return c.allowed != nil && c.allowed(origin)
	}
	return false
}

// allowOrigin is the Access-Control-Allow-Origin of an allowed origin.
func (c corsRoute) allowOrigin(origin string) string {
	if c.policy == CORSAnyOrigin {
		return "*"
	}
	return origin
}

// wrap adds CORS to the answers of a mounted method. CORSAnyOrigin answers "*" to every
// request, so caches need no Vary. CORSClientOrigins looks at the Origin header only: a
// request without one (not from a browser's fetch, the token endpoint's usual caller) costs
// this one map lookup and gets no CORS headers; one with it gets Vary: Origin and, when the
// origin is allowed, the origin itself in Access-Control-Allow-Origin.
func (c corsRoute) wrap(next http.Handler) http.Handler {
	switch c.policy {
	case CORSAnyOrigin:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			next.ServeHTTP(w, r)
		})
	case CORSClientOrigins:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if origin, ok := r.Header["Origin"]; ok {
				h := w.Header()
				h.Add("Vary", "Origin")
				if len(origin) == 1 && c.allows(origin[0]) {
					h.Set("Access-Control-Allow-Origin", origin[0])
					h.Set("Access-Control-Expose-Headers", CORSExposeHeaders)
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	return next
}

// preflight answers OPTIONS at the route. A CORS preflight (an Origin and an
// Access-Control-Request-Method) from an allowed origin is 204 with the route's methods, the
// allowed headers and the cache lifetime, whatever method and headers it asks for (the browser
// refuses what the answer does not list). Any other OPTIONS request, a preflight from an origin
// that is not allowed among them, is the route's 405 (refuse) without a CORS header: it never
// reaches the endpoint.
func (c corsRoute) preflight(refuse http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Vary", corsVary)
		origin := r.Header.Values("Origin")
		if len(origin) != 1 || r.Header.Get("Access-Control-Request-Method") == "" || !c.allows(origin[0]) {
			refuse.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", c.allowOrigin(origin[0]))
		h.Set("Access-Control-Allow-Methods", c.methods)
		h.Set("Access-Control-Allow-Headers", CORSAllowHeaders)
		h.Set("Access-Control-Max-Age", CORSMaxAgeSeconds)
		w.WriteHeader(http.StatusNoContent)
	})
}
