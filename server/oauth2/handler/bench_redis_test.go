package handler

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/store"
	redisstore "github.com/latchkey-dev/latchkey/server/store/redis"
)

// benchRedisStore starts a redis-server of its own on a free loopback port (no persistence) and
// returns a Store over a client that counts round trips. A missing redis-server is installed or
// fails the benchmark (harness.Tool).
func benchRedisStore(b testing.TB) (*redisstore.Store, *harness.RoundTrips) {
	s, rt, _ := startRedis(b)
	return s, rt
}

// startRedis is benchRedisStore that also returns the redis-server, to kill it.
func startRedis(b testing.TB) (*redisstore.Store, *harness.RoundTrips, *harness.Redis) {
	b.Helper()
	srv := harness.NewRedis(b)
	c := srv.Client(&goredis.Options{DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second,
		WriteTimeout: 2 * time.Second, MaxRetries: 1})
	s := redisstore.NewFromClient(c, "bench:")
	b.Cleanup(func() { _ = s.Close() })
	require.NoError(b, s.LoadScripts(context.Background()))
	rt := &harness.RoundTrips{}
	c.AddHook(rt)
	return s, rt, srv
}

// withRedis puts the Redis store in the handler's Config, on the wall clock (Redis expires keys
// on its own clock).
func withRedis(s store.Store) func(*Config) {
	return func(c *Config) { c.Store, c.Now = s, time.Now }
}

// BenchmarkCodeExchangeRedis is BenchmarkCodeExchange with the Redis store: the code is stored
// (PutCode) with the timer stopped and outside the round-trip count, so ns/op and redis-rt/op
// are the exchange's alone.
func BenchmarkCodeExchangeRedis(b *testing.B) {
	for _, alg := range []string{keys.ES256, keys.EdDSA} {
		b.Run(alg, func(b *testing.B) {
			rs, rt := benchRedisStore(b)
			e := newUserEnv(b, withRedis(rs))
			id := benchCodeClient(e.reg, alg)
			p := newPoster(e.h, oauth2.TokenPath, basic(id, commonSecret), false)
			var trips int64
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				payload := storeBenchCode(b, rs, id, time.Now())
				before := rt.Count()
				b.StartTimer()
				p.post(b, payload)
				trips += rt.Count() - before
			}
			b.ReportMetric(float64(trips)/float64(b.N), "redis-rt/op")
		})
	}
}

// BenchmarkRefreshRotationRedis is BenchmarkRefreshRotation with the Redis store: each iteration
// presents the refresh token the previous one got.
func BenchmarkRefreshRotationRedis(b *testing.B) {
	for _, alg := range []string{keys.ES256, keys.EdDSA} {
		b.Run(alg, func(b *testing.B) {
			rs, rt := benchRedisStore(b)
			e := newUserEnv(b, withRedis(rs))
			client := map[string]string{keys.ES256: esAppID, keys.EdDSA: edAppID}[alg]
			rt0 := str(e.passwordLogin(b, client, aliceName, alicePassword, projectScope)["refresh_token"])
			p := newPoster(e.h, oauth2.TokenPath, basic(client, secretOf(client)), true)
			start := rt.Count()
			b.ReportAllocs()
			for b.Loop() {
				rt0 = refreshFromBody(p.post(b, []byte("grant_type=refresh_token&refresh_token="+rt0)))
			}
			b.ReportMetric(float64(rt.Count()-start)/float64(b.N), "redis-rt/op")
		})
	}
}
