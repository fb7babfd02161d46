package memory

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
)

// key returns a well-spread Hash for i, faster than SHA-256 (splitmix64).
func key(i uint64) store.Hash {
	var h store.Hash
	for j := 0; j < len(h); j += 8 {
		i += 0x9e3779b97f4a7c15
		z := i
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(h[j:], z^(z>>31))
	}
	return h
}

// family returns a canonical family ID for i.
func family(i uint64) string {
	h := key(i ^ 0xfa)
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

func benchToken(now time.Time, i uint64) store.RefreshToken {
	return store.RefreshToken{
		FamilyID:  family(i),
		ClientID:  "client-" + strconv.FormatUint(i%100, 10),
		Subject:   "user-" + strconv.FormatUint(i%10_000, 10),
		Scopes:    []string{"openid", "offline_access", "read:projects"},
		AuthTime:  now.Add(-time.Hour),
		IssuedAt:  now,
		ExpiresAt: now.Add(30 * 24 * time.Hour),
	}
}

func fatal(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTakeCode takes codes from a store holding about 64k live ones (a fake clock moves
// a sixteenth of their lease per batch of 4096, so writes expire the oldest). Putting them is
// not timed.
func BenchmarkTakeCode(b *testing.B) {
	const batch, ttl = 4096, time.Minute
	ctx := context.Background()
	clock := time.Now()
	s := New(WithClock(func() time.Time { return clock }))
	c := store.Code{ClientID: "client", RedirectURI: "https://app.example.com/cb", Subject: "alice",
		Scopes: []string{"openid", "profile"}, FamilyID: family(0), AuthTime: time.Now()}
	b.ReportAllocs()
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		clock = clock.Add(ttl / 16)
		for j := i; j < i+batch; j++ {
			fatal(b, s.PutCode(ctx, key(uint64(j)), c, ttl))
		}
		b.StartTimer()
		for j := i; j < min(i+batch, b.N); j++ {
			_, err := s.TakeCode(ctx, key(uint64(j)), "client")
			fatal(b, err)
		}
	}
}

func BenchmarkRotateRefresh(b *testing.B) {
	for _, shards := range []int{1, 2, 16} {
		b.Run(fmt.Sprint("shards=", shards), func(b *testing.B) {
			ctx := context.Background()
			s := New(withShards(shards))
			now := time.Now()
			fatal(b, s.CreateRefresh(ctx, key(0), benchToken(now, 0)))
			next := benchToken(now, 0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				_, err := s.RotateRefresh(ctx, key(uint64(i)), key(uint64(i+1)), next, nil, time.Minute)
				fatal(b, err)
			}
		})
	}
}

// BenchmarkRotateRefreshParallel rotates one chain per goroutine.
func BenchmarkRotateRefreshParallel(b *testing.B) {
	for _, shards := range []int{1, 2, 16} {
		b.Run(fmt.Sprint("shards=", shards), func(b *testing.B) {
			ctx := context.Background()
			s := New(withShards(shards))
			now := time.Now()
			next := benchToken(now, 0)
			var chains atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				base := chains.Add(1) << 40
				fatal(b, s.CreateRefresh(ctx, key(base), next))
				for i := base; pb.Next(); i++ {
					_, err := s.RotateRefresh(ctx, key(i), key(i+1), next, nil, time.Minute)
					fatal(b, err)
				}
			})
		})
	}
}

const preloaded = 100_000

func preload(b *testing.B, s *Store) {
	now := time.Now()
	for i := range uint64(preloaded) {
		fatal(b, s.CreateRefresh(context.Background(), key(i), benchToken(now, i)))
	}
}

func BenchmarkGetRefresh(b *testing.B) {
	ctx := context.Background()
	s := New()
	preload(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_, err := s.GetRefresh(ctx, key(uint64(i*7919)%preloaded))
		fatal(b, err)
	}
}

func BenchmarkGetRefreshParallel(b *testing.B) {
	for _, shards := range []int{1, 2, 16} {
		b.Run(fmt.Sprint("shards=", shards), func(b *testing.B) {
			ctx := context.Background()
			s := New(withShards(shards))
			preload(b, s)
			var seeds atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for i := seeds.Add(1) * 1000; pb.Next(); i++ {
					_, err := s.GetRefresh(ctx, key((i*7919)%preloaded))
					fatal(b, err)
				}
			})
		})
	}
}

func BenchmarkRevokeToken(b *testing.B) {
	ctx := context.Background()
	s := New()
	jtis := make([]string, b.N)
	for i := range jtis {
		jtis[i] = base64.RawURLEncoding.EncodeToString(func() []byte { h := key(uint64(i)); return h[:16] }())
	}
	until := time.Now().Add(time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		fatal(b, s.RevokeToken(ctx, jtis[i], until))
	}
}

func BenchmarkTokenRevoked(b *testing.B) {
	ctx := context.Background()
	s := New()
	jtis := make([]string, 1024)
	for i := range jtis {
		jtis[i] = "jti-" + strconv.Itoa(i)
		if i%2 == 0 {
			fatal(b, s.RevokeToken(ctx, jtis[i], time.Now().Add(time.Hour)))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_, err := s.TokenRevoked(ctx, jtis[i%len(jtis)])
		fatal(b, err)
	}
}

// BenchmarkMemoryPerMillionRefreshTokens stores 1,000,000 refresh tokens (10,000 subjects,
// 100 clients, 3 scope sets, one family each) and reports the live heap they take
// (bytes/token) and what a full garbage collection costs with them live: gc-cpu-ms (CPU time
// of the collector, runtime/metrics), gc-wall-ms (runtime.GC's wall time) and gc-pause-µs
// (its stop-the-world pauses), the best of five. "map-of-structs" is the naive layout, for
// comparison. Run with -benchtime=1x.
func BenchmarkMemoryPerMillionRefreshTokens(b *testing.B) {
	const n = 1_000_000
	now := time.Now()
	scopeSets := [][]string{{"openid"}, {"openid", "offline_access"}, {"openid", "offline_access", "read:projects"}}
	token := func(i uint64) store.RefreshToken {
		rt := benchToken(now, i)
		rt.Scopes = scopeSets[i%3]
		return rt
	}
	fillStore := func(opts ...Option) func() any {
		return func() any {
			s := New(opts...)
			for i := range uint64(n) {
				fatal(b, s.CreateRefresh(context.Background(), key(i), token(i)))
			}
			return s
		}
	}
	layouts := []struct {
		name string
		fill func() any
	}{
		{"shards=1", fillStore(withShards(1))},
		{"shards=2", fillStore(withShards(2))},
		{"shards=16", fillStore(withShards(16))},
		{"map-of-structs", func() any {
			m := map[store.Hash]store.RefreshToken{}
			for i := range uint64(n) {
				m[key(i)] = token(i)
			}
			return m
		}},
	}
	for _, l := range layouts {
		b.Run(l.name, func(b *testing.B) {
			for range b.N {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				kept := l.fill()
				runtime.GC()
				runtime.ReadMemStats(&after)
				cpu, wall, pause := gcCost()
				runtime.KeepAlive(kept)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/token")
				b.ReportMetric(cpu.Seconds()*1e3, "gc-cpu-ms")
				b.ReportMetric(wall.Seconds()*1e3, "gc-wall-ms")
				b.ReportMetric(pause.Seconds()*1e6, "gc-pause-µs")
			}
		})
	}
}

// gcCost runs five full collections and returns the cheapest one's collector CPU time, wall
// time and stop-the-world pauses.
func gcCost() (cpu, wall, pause time.Duration) {
	sample := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	cpu, wall, pause = time.Hour, time.Hour, time.Hour
	for range 5 {
		metrics.Read(sample)
		c0 := sample[0].Value.Float64()
		start := time.Now()
		runtime.GC()
		w := time.Since(start)
		metrics.Read(sample)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		cpu = min(cpu, time.Duration((sample[0].Value.Float64()-c0)*1e9))
		wall = min(wall, w)
		pause = min(pause, time.Duration(ms.PauseNs[(ms.NumGC+255)%256]))
	}
	return cpu, wall, pause
}
