package assertion

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// Errors of Parse and Verify. Each is wrapped with a short description that is safe to return to
// the client (it never contains the token; a claim value is quoted and cut to 64 bytes); match
// them with errors.Is.
var (
	ErrMalformed            = errors.New("assertion: malformed token")
	ErrUnsupportedAlgorithm = errors.New("assertion: unsupported signing algorithm")
	ErrNoKey                = errors.New("assertion: no key matches the token")
	ErrSignature            = errors.New("assertion: invalid signature")
	ErrExpired              = errors.New("assertion: token expired")
	ErrNotYetValid          = errors.New("assertion: token not yet valid")
	ErrIssuer               = errors.New("assertion: issuer not accepted")
	ErrAudience             = errors.New("assertion: audience not accepted")
	ErrSubject              = errors.New("assertion: subject not accepted")
	ErrLifetime             = errors.New("assertion: token lifetime not accepted")
	ErrClaims               = errors.New("assertion: claims not accepted")
	// ErrKeysUnavailable: the key source could not be reached and has no keys (a 503, not the
	// client's fault).
	ErrKeysUnavailable = errors.New("assertion: verification keys unavailable")
	// ErrPolicy: a Policy the caller built is invalid (a programming or configuration error).
	ErrPolicy = errors.New("assertion: invalid policy")
	// ErrInvalidJWKS: ParseJWKS or NewStaticKeys refused a key set.
	ErrInvalidJWKS = errors.New("assertion: invalid JWK set")
	// ErrInvalidRule: CompileClaimRules refused a rule.
	ErrInvalidRule = errors.New("assertion: invalid claim validation rule")
	// ErrDiscovery wraps a Remote's failed OIDC discovery (Refresh, RemoteStatus.LastError): the
	// document unreachable, not JSON, of another issuer, or without an https jwks_uri. A failure
	// of the JWK set itself does not wrap it.
	ErrDiscovery = errors.New("assertion: OIDC discovery failed")
)

// maxEcho bounds a claim value echoed in an error.
const maxEcho = 64

// quote returns s quoted, cut to maxEcho bytes (at a rune boundary, marked with "...").
func quote(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
