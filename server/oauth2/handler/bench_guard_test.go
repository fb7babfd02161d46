package handler

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

// BenchmarkClientCredentialsProtection measures what brute-force protection and a declared
// rate limit add to a successful client_credentials request (EdDSA, client_secret_basic):
// without a store the handler has neither (the baseline); with one, every confidential client's
// authentication records its outcome (one Throttle, one Redis round trip), and a client with
// spec.rateLimit takes from its bucket (one TakeRate, one more round trip). The limit is far
// above what the benchmark sends, so no request is refused.
func BenchmarkClientCredentialsProtection(b *testing.B) {
	kr, err := testKeyring()
	require.NoError(b, err)
	payload := []byte("grant_type=client_credentials&scope=read%3Aprojects+admin%3Aread")
	for _, tc := range []struct {
		name      string
		store     func(b *testing.B) (store.Store, func() int64, *harness.Redis)
		rateLimit bool
	}{
		{"no store (no protection)", nil, false},
		{"memory", memoryBenchStore, false},
		{"memory, declared rate limit", memoryBenchStore, true},
		{"redis", redisBenchStore, false},
		{"redis, declared rate limit", redisBenchStore, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			reg := testRegistry()
			c := registry.Client{
				Source: "bench/cc", Namespace: "bench", ID: "bench-cc", Type: registry.Confidential,
				GrantTypes: []string{"client_credentials"}, Scopes: []string{"read:projects", "admin:read"},
				Audiences: []string{"https://api.example.com"}, SigningAlgorithm: keys.EdDSA,
				SecretHash: registry.HashSecret([]byte(commonSecret)), HasSecret: true,
			}
			if tc.rateLimit {
				c.RateLimit = registry.RateLimit{PerMinute: 1 << 30, Burst: 1 << 20}
			}
			reg.PutClient(c)
			cfg := Config{Issuer: testIssuer, Registry: reg, Keys: kr, Now: time.Now}
			trips := func() int64 { return 0 }
			var srv *harness.Redis
			if tc.store != nil {
				cfg.Store, trips, srv = tc.store(b)
			}
			h, err := New(cfg)
			require.NoError(b, err)
			p := newPoster(h, oauth2.TokenPath, basic(c.ID, commonSecret), false)
			p.req.RemoteAddr = "192.0.2.10:40000"
			var counts *redisCounts
			if srv != nil {
				counts = newRedisCounts(b, srv)
				counts.start(b)
			}
			before := trips()
			b.ReportAllocs()
			for b.Loop() {
				p.post(b, payload)
			}
			b.StopTimer()
			if tc.store != nil {
				b.ReportMetric(float64(trips()-before)/float64(b.N), "client-rt/op")
			}
			if counts != nil {
				counts.stop(b, b.N)
				counts.report(b)
			}
		})
	}
}

func memoryBenchStore(*testing.B) (store.Store, func() int64, *harness.Redis) {
	return memory.New(), func() int64 { return 0 }, nil
}

func redisBenchStore(b *testing.B) (store.Store, func() int64, *harness.Redis) {
	s, rt, srv := startRedis(b)
	return s, rt.Count, srv
}
