package registry

import (
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// WorkloadIssuer is an issuer of workload identity tokens whose tokens authenticate the clients
// bound to its subjects (Client.WorkloadIssuer, WorkloadSubject).
type WorkloadIssuer struct {
	// Name is the resource's name, what clients refer to.
	Name string
	// Generation changes whenever the value does, so a verifier can tell when to rebuild
	// what it derived from it (key sources, compiled rules).
	Generation int64
	// Issuer is the exact iss claim.
	Issuer string
	// JWKSURI serves the keys; empty with no StaticKeys: OIDC discovery at Issuer.
	JWKSURI string
	// StaticKeys are the keys of a JWK set from a Secret; when set, nothing is fetched.
	StaticKeys []jose.JSONWebKey
	// CABundle (PEM) are the only roots trusted for discovery and JWKS; empty: the system's.
	CABundle []byte
	// Audiences: a token's aud must contain one.
	Audiences []string
	// AllowedNamespaces whose clients may bind to the issuer; "*" allows all.
	AllowedNamespaces []string
	// ClaimRules are CEL expressions over the claims that must all be true.
	ClaimRules []ClaimRule
	// MaxAssertionLifetime bounds exp - iat; zero means 1 h.
	MaxAssertionLifetime time.Duration
	// RefreshPeriod is how often keys are fetched again; zero means 1 h.
	RefreshPeriod time.Duration
}

// ClaimRule is one CEL claim validation rule.
type ClaimRule struct {
	Expression, Message string
}

// AllowsNamespace reports whether clients of the namespace may bind to the issuer.
func (w *WorkloadIssuer) AllowsNamespace(ns string) bool {
	return slices.Contains(w.AllowedNamespaces, "*") || slices.Contains(w.AllowedNamespaces, ns)
}
