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

// startRedis starts a redis-server of its own on a free loopback port (no persistence) and
// returns a Store over a client that counts round trips, and the server. A missing
// redis-server is installed or fails the benchmark (harness.Tool).
func startRedis(b testing.TB) (*redisstore.Store, *harness.RoundTrips, *harness.Redis) {
	b.Helper()
	srv := harness.NewRedis(b)
	s, rt := redisReplica(b, srv)
	return s, rt, srv
}

// redisReplica returns a Store over a new client of srv, as another replica of the server
// would have (its own connections and its own cache of the records it stored), with a hook
// that counts its round trips.
func redisReplica(b testing.TB, srv *harness.Redis) (*redisstore.Store, *harness.RoundTrips) {
	b.Helper()
	c := srv.Client(&goredis.Options{DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second,
		WriteTimeout: 2 * time.Second, MaxRetries: -1})
	s := redisstore.NewFromClient(c, "bench:")
	b.Cleanup(func() { _ = s.Close() })
	require.NoError(b, s.LoadScripts(context.Background()))
	rt := &harness.RoundTrips{}
	c.AddHook(rt)
	return s, rt
}

// withRedis puts the Redis store in the handler's Config, on the wall clock (Redis expires keys
// on its own clock).
func withRedis(s store.Store) func(*Config) {
	return func(c *Config) { c.Store, c.Now = s, time.Now }
}

// redisCounts adds up what a redis-server itself counted (INFO stats and commandstats) over
// the parts of a benchmark between start and stop, read over a connection of its own.
type redisCounts struct {
	srv        *harness.Redis
	c          *goredis.Client
	mark, sum  harness.RedisStats
	started    bool
	operations int
}

func newRedisCounts(b testing.TB, srv *harness.Redis) *redisCounts {
	c := srv.Client(&goredis.Options{MaxRetries: -1})
	b.Cleanup(func() { _ = c.Close() })
	return &redisCounts{srv: srv, c: c}
}

func (r *redisCounts) read(b testing.TB) harness.RedisStats {
	st, err := r.srv.Stats(context.Background(), r.c)
	require.NoError(b, err)
	return st
}

// start marks the counts; call it with the benchmark's timer stopped.
func (r *redisCounts) start(b testing.TB) { r.mark, r.started = r.read(b), true }

// stop adds the counts since start to the sum, as n operations; call it with the timer stopped.
func (r *redisCounts) stop(b testing.TB, n int) {
	require.True(b, r.started, "redisCounts.stop without start")
	r.sum, r.started = r.sum.Add(r.read(b).Sub(r.mark)), false
	r.operations += n
}

// report reports per operation: redis-rt/op, the round trips as Redis counted them (its
// writes of replies), evalsha/op (scripts run) and redis-cmds/op (every command it executed,
// those that scripts call included).
func (r *redisCounts) report(b *testing.B) {
	if r.operations == 0 {
		return
	}
	n := float64(r.operations)
	var cmds int64
	for _, calls := range r.sum.Calls {
		cmds += calls
	}
	b.ReportMetric(float64(r.sum.Writes)/n, "redis-rt/op")
	b.ReportMetric(float64(r.sum.Calls["evalsha"])/n, "evalsha/op")
	b.ReportMetric(float64(cmds)/n, "redis-cmds/op")
}

// BenchmarkCodeExchangeRedis is BenchmarkCodeExchange with the Redis store: the code is stored
// (PutCode) with the timer stopped and outside the counts, so ns/op and the counts are the
// exchange's alone: client-rt/op from a go-redis hook, redis-rt/op, evalsha/op and
// redis-cmds/op from the redis-server's INFO. "this replica" stores the code through the
// handler's store (as when the replica that answered the authorization request also answers
// its token request); "another replica" through another Store over the same server, whose
// records this replica has not seen.
func BenchmarkCodeExchangeRedis(b *testing.B) {
	for _, alg := range []string{keys.ES256, keys.EdDSA} {
		for _, replica := range []string{"this replica", "another replica"} {
			b.Run(alg+"/"+replica, func(b *testing.B) {
				rs, rt, srv := startRedis(b)
				codes := store.Codes(rs)
				if replica == "another replica" {
					codes, _ = redisReplica(b, srv)
				}
				counts := newRedisCounts(b, srv)
				e := newUserEnv(b, withRedis(rs))
				id := benchCodeClient(e.reg, alg)
				p := newPoster(e.h, oauth2.TokenPath, basic(id, commonSecret), false)
				var trips int64
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					payload := storeBenchCode(b, codes, id, time.Now())
					counts.start(b)
					before := rt.Count()
					b.StartTimer()
					p.post(b, payload)
					b.StopTimer()
					trips += rt.Count() - before
					counts.stop(b, 1)
					b.StartTimer()
				}
				b.ReportMetric(float64(trips)/float64(b.N), "client-rt/op")
				counts.report(b)
			})
		}
	}
}

// BenchmarkRefreshRotationRedis is BenchmarkRefreshRotation with the Redis store: each iteration
// presents the refresh token the previous one got. "this replica" sends every rotation to one
// handler; "another replica" alternates between two handlers over two Stores of the same
// server, so every token is presented to the replica that did not store it.
func BenchmarkRefreshRotationRedis(b *testing.B) {
	for _, alg := range []string{keys.ES256, keys.EdDSA} {
		for _, replica := range []string{"this replica", "another replica"} {
			b.Run(alg+"/"+replica, func(b *testing.B) {
				rs, rt, srv := startRedis(b)
				e := newUserEnv(b, withRedis(rs))
				client := map[string]string{keys.ES256: esAppID, keys.EdDSA: edAppID}[alg]
				rt0 := str(e.passwordLogin(b, client, aliceName, alicePassword, projectScope)["refresh_token"])
				posters := []*poster{newPoster(e.h, oauth2.TokenPath, basic(client, secretOf(client)), true)}
				counters := []*harness.RoundTrips{rt}
				if replica == "another replica" {
					rs2, rt2 := redisReplica(b, srv)
					e2 := newUserEnv(b, withRedis(rs2))
					// The first rotation goes to the second replica: the first token was stored
					// by the first.
					posters = append([]*poster{newPoster(e2.h, oauth2.TokenPath, basic(client, secretOf(client)), true)}, posters...)
					counters = append(counters, rt2)
				}
				counts := newRedisCounts(b, srv)
				count := func() (n int64) {
					for _, c := range counters {
						n += c.Count()
					}
					return n
				}
				start := count()
				counts.start(b)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					rt0 = refreshFromBody(posters[i%len(posters)].post(b, []byte("grant_type=refresh_token&refresh_token="+rt0)))
					i++
				}
				b.StopTimer()
				counts.stop(b, b.N)
				b.ReportMetric(float64(count()-start)/float64(b.N), "client-rt/op")
				counts.report(b)
			})
		}
	}
}
