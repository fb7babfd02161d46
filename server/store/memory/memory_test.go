package memory

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/storetest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		fake bool
	}{
		{name: "with a fake clock", fake: true},
		{name: "on real time"},
		{name: "with one shard, so rotations stay in one", opts: []Option{withShards(1)}, fake: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o storetest.Options
			if tc.fake {
				o.Clock = harness.NewClock(t0)
			}
			storetest.Run(t, func(*testing.T) store.Store {
				opts := tc.opts
				if o.Clock != nil {
					opts = append(opts[:len(opts):len(opts)], WithClock(o.Clock.Now))
				}
				return New(opts...)
			}, o)
		})
	}
}

// sizes counts what a store holds, deadlines and interned values included.
func (s *Store) sizes() (records, deadlines, interned, families int) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		records += len(sh.codes) + sh.refresh.n + len(sh.records) + len(sh.counters) + len(sh.jtis) +
			len(sh.throttles) + len(sh.limiters)
		deadlines += len(sh.codesExp) + len(sh.refresh.exp) + len(sh.recordsExp) + len(sh.countersExp) + len(sh.jtisExp) +
			len(sh.throttlesExp) + len(sh.limitersExp)
		interned += sh.strs.len() + sh.scopes.len()
		sh.mu.Unlock()
	}
	for i := range s.families {
		f := &s.families[i]
		f.mu.Lock()
		families += len(f.revoked)
		deadlines += len(f.exp)
		f.mu.Unlock()
	}
	return records, deadlines, interned, families
}

func TestExpiry(t *testing.T) {
	ctx := t.Context()
	fill := func(t *testing.T, s *Store, clock *harness.Clock, n int) {
		for i := range n {
			h := store.HashOf(string(rune(i)) + "x")
			rt := store.RefreshToken{
				FamilyID: "family", ClientID: "c", Subject: "alice", Scopes: []string{"a", "b"},
				ExpiresAt: clock.Now().Add(time.Minute),
			}
			require.NoError(t, s.CreateRefresh(ctx, h, rt))
			_, err := s.RotateRefresh(ctx, h, store.HashOf(string(rune(i))+"y"), rt, nil, time.Second)
			require.NoError(t, err)
			require.NoError(t, s.PutCode(ctx, h, store.Code{Scopes: []string{"a"}}, time.Minute))
			require.NoError(t, s.PutRecord(ctx, "kind", h, []byte("v"), time.Minute))
			_, err = s.Incr(ctx, h, time.Minute)
			require.NoError(t, err)
			require.NoError(t, s.RevokeToken(ctx, string(rune(i)), clock.Now().Add(time.Minute)))
		}
		require.NoError(t, s.RevokeFamily(ctx, "family", clock.Now()))
	}
	t.Run("the janitor drops every record whose lease ended and releases what they interned", func(t *testing.T) {
		clock := harness.NewClock(t0)
		s := New(WithClock(clock.Now), withShards(1))
		fill(t, s, clock, 3000)
		records, deadlines, interned, families := s.sizes()
		require.Equal(t, 6*3000, records)
		require.Equal(t, 6*3000+1, deadlines)
		require.Equal(t, 4+1, interned) // c, alice, family (not canonical), kind; one scope set
		require.Equal(t, 1, families)
		clock.Advance(time.Minute)
		s.sweep()
		records, deadlines, interned, families = s.sizes()
		require.Zero(t, records)
		require.Zero(t, deadlines)
		require.Zero(t, interned)
		require.Zero(t, families)
	})
	t.Run("writes drop expired records without the janitor", func(t *testing.T) {
		clock := harness.NewClock(t0)
		s := New(WithClock(clock.Now), withShards(1))
		fill(t, s, clock, 100)
		clock.Advance(time.Minute)
		for i := range 200 {
			require.NoError(t, s.PutRecord(ctx, "other", store.HashOf(string(rune(i))+"z"), nil, time.Hour))
		}
		records, _, _, _ := s.sizes()
		require.Equal(t, 200, records)
	})
	t.Run("a record past its lease is not returned before cleanup", func(t *testing.T) {
		clock := harness.NewClock(t0)
		s := New(WithClock(clock.Now))
		require.NoError(t, s.PutRecord(ctx, "k", store.HashOf("x"), []byte("v"), time.Second))
		clock.Advance(time.Second)
		_, err := s.GetRecord(ctx, "k", store.HashOf("x"))
		require.ErrorIs(t, err, store.ErrNotFound)
		records, _, _, _ := s.sizes()
		require.Equal(t, 1, records)
	})
}

func TestStart(t *testing.T) {
	clock := harness.NewClock(t0)
	s := New(WithClock(clock.Now), WithJanitorInterval(time.Millisecond))
	require.NoError(t, s.PutRecord(t.Context(), "k", store.HashOf("x"), []byte("v"), time.Second))
	clock.Advance(time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	require.Eventually(t, func() bool {
		records, _, _, _ := s.sizes()
		return records == 0
	}, 5*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.False(t, s.NeedLeaderElection())
}

func TestDeadlines(t *testing.T) {
	var h deadlines[int]
	for i, at := range []int64{5, 3, 9, 1, 7, 3, 8, 2, 6, 4, 0} {
		h.push(at, i)
	}
	var got []int64
	for len(h) > 0 {
		got = append(got, h.pop().at)
	}
	require.Equal(t, []int64{0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9}, got)
}

func TestRefreshRecordIsSmallAndPointerFree(t *testing.T) {
	require.Equal(t, uintptr(64), unsafe.Sizeof(refreshRecord{}))
	var pointers func(t reflect.Type) bool
	pointers = func(t reflect.Type) bool {
		switch t.Kind() {
		case reflect.Array:
			return pointers(t.Elem())
		case reflect.Struct:
			for f := range t.Fields() {
				if pointers(f.Type) {
					return true
				}
			}
			return false
		default:
			return t.Kind() > reflect.Complex128 // pointers, strings, slices, maps...
		}
	}
	for _, v := range []any{refreshRecord{}, store.Hash{}, deadline[store.Hash]{}, familyKey{}, deadline[familyKey]{}} {
		require.False(t, pointers(reflect.TypeOf(v)), "%T holds a pointer", v)
	}
}

func TestRefreshTable(t *testing.T) {
	tests := []struct {
		name      string
		key       func(i int) store.Hash
		n, keepAt int // then n more keys, compacted when keepAt are left
	}{
		{name: "uniform keys", n: 5000, keepAt: 1000, key: func(i int) store.Hash { return store.HashOf(fmt.Sprint(i)) }},
		{name: "keys crowding a few buckets, so runs are long and wrap around", n: 2000, keepAt: 400, key: func(i int) store.Hash {
			h := store.HashOf(fmt.Sprint(i))
			// The last bucket (all ones), the first two, and one in the middle.
			binary.LittleEndian.PutUint64(h[8:16], []uint64{^uint64(0), ^uint64(0) - 1, 0, 1, 100}[i%5])
			return h
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tab refreshTable
			want := map[store.Hash]int64{}
			rng := rand.New(rand.NewPCG(1, 2))
			check := func() {
				require.Equal(t, len(want), tab.n)
				for k, v := range want {
					r, ok := tab.get(&k)
					require.True(t, ok)
					require.Equal(t, v, r.expires)
				}
			}
			for step := range 20000 {
				k := tc.key(rng.IntN(600))
				_, known := want[k]
				if p, ok := tab.find(&k); ok {
					require.True(t, known)
					if rng.IntN(2) == 0 {
						r := tab.remove(p)
						require.Equal(t, want[k], r.expires)
						delete(want, k)
					}
				} else {
					require.False(t, known)
					tab.insert(&k, refreshRecord{expires: int64(step + 1)})
					want[k] = int64(step + 1)
				}
				if step%1000 == 0 {
					check()
				}
			}
			check()
			for i := range tc.n {
				k := tc.key(1000 + i)
				tab.insert(&k, refreshRecord{expires: int64(i + 1)})
				want[k] = int64(i + 1)
			}
			for k := range want {
				p, _ := tab.find(&k)
				tab.remove(p)
				delete(want, k)
				if len(want) == tc.keepAt {
					tab.compact()
					require.Len(t, tab.slab, tc.keepAt)
					require.Len(t, tab.exp, tc.keepAt)
					check()
				}
			}
			check()
		})
	}
}

func TestGetRefreshOfARotatedTokenReturnsItsRecord(t *testing.T) {
	ctx := t.Context()
	s := New()
	rt := store.RefreshToken{FamilyID: "family", ClientID: "client-a", Subject: "alice", ExpiresAt: time.Now().Add(time.Hour)}
	require.NoError(t, s.CreateRefresh(ctx, store.HashOf("a"), rt))
	_, err := s.RotateRefresh(ctx, store.HashOf("a"), store.HashOf("b"), rt, nil, time.Minute)
	require.NoError(t, err)
	got, err := s.GetRefresh(ctx, store.HashOf("a"))
	require.ErrorIs(t, err, store.ErrReused)
	require.Equal(t, "client-a", got.ClientID)
	require.Equal(t, "family", got.FamilyID)
}

// TestThrottlesAndLimitersQueueOneDeadlinePerKey: traffic on a key moves its lease on without
// growing the shard's heap, and the key still goes when its lease ends.
func TestThrottlesAndLimitersQueueOneDeadlinePerKey(t *testing.T) {
	ctx := t.Context()
	// heaps returns the shard's throttle and limiter deadlines (one shard).
	heaps := func(s *Store) (throttles, limiters int) {
		sh := &s.shards[0]
		sh.mu.Lock()
		defer sh.mu.Unlock()
		return len(sh.throttlesExp), len(sh.limitersExp)
	}
	t.Run("many failures on one key queue one deadline, and the count goes a window after the last", func(t *testing.T) {
		clock := harness.NewClock(t0)
		s := New(WithClock(clock.Now), withShards(1))
		k := []store.ThrottleKey{{Key: store.HashOf("k"), Limit: 3, Window: time.Minute, Backoff: time.Second, MaxBackoff: time.Second}}
		for i := range 1000 {
			res, err := s.Throttle(ctx, k, store.Failure)
			require.NoError(t, err)
			require.Equal(t, []int64{int64(i + 1)}, res.Failures)
			clock.Advance(time.Second) // past the block
		}
		throttles, _ := heaps(s)
		require.Equal(t, 1, throttles)
		s.sweep() // the first deadline came due long ago: queued again at the lease's end
		res, err := s.Throttle(ctx, k, store.Check)
		require.NoError(t, err)
		require.Equal(t, []int64{1000}, res.Failures)
		throttles, _ = heaps(s)
		require.Equal(t, 1, throttles)
		clock.Advance(time.Minute)
		s.sweep()
		records, deadlines, _, _ := s.sizes()
		require.Zero(t, records)
		require.Zero(t, deadlines)
	})
	t.Run("a success drops the count and its key comes back without another deadline", func(t *testing.T) {
		clock := harness.NewClock(t0)
		s := New(WithClock(clock.Now), withShards(1))
		k := []store.ThrottleKey{{Key: store.HashOf("k"), Window: time.Minute, ResetOnSuccess: true}}
		for range 100 {
			_, err := s.Throttle(ctx, k, store.Failure)
			require.NoError(t, err)
			res, err := s.Throttle(ctx, k, store.Success)
			require.NoError(t, err)
			require.Equal(t, []int64{0}, res.Failures)
		}
		throttles, _ := heaps(s)
		require.Equal(t, 1, throttles)
		clock.Advance(time.Minute)
		s.sweep()
		records, deadlines, _, _ := s.sizes()
		require.Zero(t, records)
		require.Zero(t, deadlines)
	})
	t.Run("a lease that moves earlier is queued at its new end", func(t *testing.T) {
		clock := harness.NewClock(t0)
		s := New(WithClock(clock.Now), withShards(1))
		k := store.ThrottleKey{Key: store.HashOf("k"), Window: time.Hour}
		_, err := s.Throttle(ctx, []store.ThrottleKey{k}, store.Failure)
		require.NoError(t, err)
		k.Window = time.Minute
		_, err = s.Throttle(ctx, []store.ThrottleKey{k}, store.Failure)
		require.NoError(t, err)
		clock.Advance(time.Minute)
		s.sweep()
		records, _, _, _ := s.sizes()
		require.Zero(t, records, "dropped at the new end, not an hour later")
	})
	t.Run("many requests on one bucket queue one deadline, and the bucket goes once it is full again", func(t *testing.T) {
		clock := harness.NewClock(t0)
		s := New(WithClock(clock.Now), withShards(1))
		for range 500 { // each moves the time the bucket is full again on by 100 ms
			wait, err := s.TakeRate(ctx, store.HashOf("k"), 600, 1000)
			require.NoError(t, err)
			require.Zero(t, wait)
		}
		_, limiters := heaps(s)
		require.Equal(t, 1, limiters)
		clock.Advance(time.Second) // the first deadline comes due: queued again when full, 49 s on
		wait, err := s.TakeRate(ctx, store.HashOf("k"), 600, 1000)
		require.NoError(t, err)
		require.Zero(t, wait)
		_, limiters = heaps(s)
		require.Equal(t, 1, limiters)
		wait, err = s.TakeRate(ctx, store.HashOf("k"), 60000, 1000) // a faster refill: full sooner
		require.NoError(t, err)
		require.Zero(t, wait)
		_, limiters = heaps(s)
		require.Equal(t, 2, limiters)
		clock.Advance(time.Second)
		s.sweep()
		records, _, _, _ := s.sizes()
		require.Zero(t, records)
	})
}

func TestBackoffDoublesUpToTheMaximumInAFewSteps(t *testing.T) {
	k := store.ThrottleKey{Limit: 2, Backoff: time.Second, MaxBackoff: 5 * time.Second}
	for failures, want := range map[int64]time.Duration{2: time.Second, 3: 2 * time.Second, 4: 4 * time.Second, 5: 5 * time.Second, math.MaxInt64: 5 * time.Second} {
		require.Equal(t, want, backoff(k, failures), "failure %d", failures)
	}
	k = store.ThrottleKey{Limit: 1, MaxBackoff: time.Hour} // no back-off: the loop must not count to MaxInt64
	require.Zero(t, backoff(k, math.MaxInt64))
	k = store.ThrottleKey{Limit: 1, Backoff: 3, MaxBackoff: math.MaxInt64} // doubling never overflows
	require.Equal(t, time.Duration(math.MaxInt64), backoff(k, math.MaxInt64))
}
