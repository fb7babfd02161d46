package handler

import (
	"testing"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// BenchmarkCodeExchange measures an authorization_code exchange with PKCE (S256) through the
// handler's ServeHTTP: the one-time take of the code, the verifier check and the issue of an
// access, refresh and ID token. Each iteration makes and stores a fresh code first (about 1 µs).
func BenchmarkCodeExchange(b *testing.B) {
	for _, alg := range keys.SupportedAlgorithms() {
		b.Run(alg, func(b *testing.B) {
			e := newUserEnv(b)
			id := benchCodeClient(e.reg, alg)
			p := newPoster(e.h, oauth2.TokenPath, basic(id, commonSecret), false)
			b.ReportAllocs()
			for b.Loop() {
				p.post(b, storeBenchCode(b, e.store, id, testNow))
			}
		})
	}
}
