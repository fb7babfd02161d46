package handler

import (
	"net/http"
	"net/url"
)

// hstsValue is the Strict-Transport-Security header of an https issuer: one year, for the
// issuer's host only. includeSubDomains and preload are left to the operator (an ingress can add
// them): the issuer's domain may serve other sites that this server knows nothing of.
const hstsValue = "max-age=31536000"

// withHSTS sets Strict-Transport-Security on every answer when the issuer is an https URL, even
// when TLS ends at a proxy in front of the server: the browser only ever sees the issuer's
// scheme. An http issuer (development on loopback) gets no header, which browsers would ignore.
func withHSTS(issuer string, next http.Handler) http.Handler {
	if u, err := url.Parse(issuer); err != nil || u.Scheme != "https" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", hstsValue)
		next.ServeHTTP(w, r)
	})
}
