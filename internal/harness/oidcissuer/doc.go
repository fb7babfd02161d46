// Package oidcissuer is the test harness's remote issuer of workload identity tokens (another
// cluster, a CI system, SPIFFE): an httptest TLS server that serves an OIDC discovery document
// and a JWK set, whose answers a test changes at will (keys published, a discovery document of
// another issuer, failures), and that signs tokens with its keys. Tests trust it through its CA
// bundle (a WorkloadIssuer's spec.caBundle), as a real issuer is trusted.
//
// It imports the standard library, go-jose and testify, nothing of Latchkey; it is kept apart
// from package harness so that package stays free of go-jose. Nothing under server/ imports it.
package oidcissuer
