package memory

import (
	"context"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/latchkey-dev/latchkey/server/store"
)

// throttle is the failure record of one key: times are Unix nanoseconds.
type throttle struct {
	failures     int64
	windowEnd    int64 // when the count is forgotten (its lease, with blockedUntil)
	blockedUntil int64
	// queued is the key's one deadline in throttlesExp, never after the lease of a live count:
	// a failure that moves the lease later queues nothing (expire queues the deadline anew at
	// the lease's end when it comes due before it), one that moves it earlier queues its end.
	queued int64
}

func (t throttle) expires() int64 { return max(t.windowEnd, t.blockedUntil) }

// limiter is one rate-limit bucket and when it is full again (then it can be forgotten).
type limiter struct {
	l      *rate.Limiter
	full   int64
	queued int64 // the key's deadline in limitersExp, as throttle.queued
}

// throttleRec is a key's record as Throttle read it, and whether it is in the map.
type throttleRec struct {
	throttle
	listed bool
}

// Throttle records an attempt on the keys atomically: the shards of the keys are locked
// together, in index order; see store.Throttles.
func (s *Store) Throttle(ctx context.Context, keys []store.ThrottleKey, outcome store.Outcome) (store.ThrottleResult, error) {
	if err := ctx.Err(); err != nil {
		return store.ThrottleResult{}, err
	}
	var idxBuf [4]uint64 // the usual number of keys, on the stack
	idx, now := s.lockShards(keys, nil, idxBuf[:0])
	defer s.unlockShards(idx)
	return s.throttleLocked(keys, outcome, now.UnixNano()), nil
}

// ThrottleRate is Throttle and, for a Success that was not refused, TakeRate, with the shards of
// the throttle keys and of the bucket locked together; see store.Throttles.
func (s *Store) ThrottleRate(ctx context.Context, keys []store.ThrottleKey, outcome store.Outcome, rt store.RateTake) (store.ThrottleResult, error) {
	if err := ctx.Err(); err != nil {
		return store.ThrottleResult{}, err
	}
	var idxBuf [5]uint64
	idx, now := s.lockShards(keys, &rt.Key, idxBuf[:0])
	defer s.unlockShards(idx)
	res := s.throttleLocked(keys, outcome, now.UnixNano())
	if res.RetryAfter == 0 && outcome == store.Success {
		res.RateWait = s.takeRateLocked(s.shardOf(rt.Key), rt.Key, rt.PerMinute, rt.Burst, now)
	}
	return res, nil
}

// throttleLocked is Throttle with the keys' shards locked.
func (s *Store) throttleLocked(keys []store.ThrottleKey, outcome store.Outcome, now int64) store.ThrottleResult {
	res := store.ThrottleResult{Failures: make([]int64, len(keys))}
	// Every key is read before any is written, as in the Redis script.
	var recBuf [4]throttleRec
	recs := recBuf[:0]
	for i, k := range keys {
		t, listed := s.shardOf(k.Key).throttles[k.Key]
		if t.expires() <= now {
			t = throttle{queued: t.queued} // forgotten; its deadline stays queued
		}
		recs = append(recs, throttleRec{t, listed})
		res.Failures[i] = t.failures
		if k.Limit > 0 && t.blockedUntil > now {
			res.RetryAfter = max(res.RetryAfter, time.Duration(t.blockedUntil-now))
		}
	}
	if res.RetryAfter > 0 {
		return res
	}
	for i, k := range keys {
		r, sh := &recs[i], s.shardOf(k.Key)
		switch {
		case outcome == store.Failure:
			t := &r.throttle
			t.failures++
			if k.Limit > 0 && t.failures >= int64(k.Limit) {
				t.blockedUntil = leaseEnd(now, backoff(k, t.failures))
			}
			// Forgotten a window after the last failure and its block.
			t.windowEnd = leaseEnd(max(now, t.blockedUntil), max(k.Window, time.Millisecond))
			if exp := t.expires(); !r.listed || exp < t.queued {
				t.queued = exp
				sh.throttlesExp.push(exp, k.Key)
			}
			sh.throttles[k.Key] = *t
			notePeak(len(sh.throttles), &sh.throttlesPeak)
			res.Failures[i] = t.failures
		case outcome == store.Success && k.ResetOnSuccess && r.listed:
			// A zero record is no record; it stays, with its deadline, until that comes due.
			sh.throttles[k.Key] = throttle{queued: r.queued}
			res.Failures[i] = 0
		}
	}
	return res
}

// backoff is the block of a key after its failures-th failure (failures >= k.Limit): Backoff
// doubled for every failure past Limit, at most MaxBackoff.
func backoff(k store.ThrottleKey, failures int64) time.Duration {
	d := k.Backoff
	for n := failures - int64(k.Limit); n > 0 && d > 0 && d < k.MaxBackoff; n-- {
		if d > k.MaxBackoff/2 {
			return k.MaxBackoff // doubling would pass it (or overflow)
		}
		d *= 2
	}
	return min(d, k.MaxBackoff)
}

// lockShards locks the shards of the keys (and of extra, when not nil) in index order (so two
// callers cannot deadlock), reads the clock, expires the shards' due entries and returns the
// indexes locked (appended to idx, for unlockShards) and the time read.
func (s *Store) lockShards(keys []store.ThrottleKey, extra *store.Hash, idx []uint64) ([]uint64, time.Time) {
	for _, k := range keys {
		idx = append(idx, s.shardIndex(k.Key))
	}
	if extra != nil {
		idx = append(idx, s.shardIndex(*extra))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		s.shards[i].mu.Lock()
	}
	now := s.now()
	for _, i := range idx {
		s.shards[i].expire(now.UnixNano(), lazyBatch)
	}
	return idx, now
}

// unlockShards unlocks what lockShards locked.
func (s *Store) unlockShards(idx []uint64) {
	for _, i := range idx {
		s.shards[i].mu.Unlock()
	}
}

// TakeRate takes one request from the key's token bucket (golang.org/x/time/rate on the
// store's clock); see store.RateLimits.
func (s *Store) TakeRate(ctx context.Context, key store.Hash, perMinute, burst int) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := s.now()
	sh := s.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.expire(now.UnixNano(), lazyBatch)
	return s.takeRateLocked(sh, key, perMinute, burst, now), nil
}

// takeRateLocked is TakeRate with the key's shard sh locked.
func (s *Store) takeRateLocked(sh *shard, key store.Hash, perMinute, burst int, now time.Time) time.Duration {
	every := rate.Limit(float64(perMinute) / 60)
	lim, listed := sh.limiters[key]
	changed := false
	if !listed {
		lim = limiter{l: rate.NewLimiter(every, burst)}
	} else if lim.l.Limit() != every || lim.l.Burst() != burst {
		lim.l.SetLimitAt(now, every)
		lim.l.SetBurstAt(now, burst)
		changed = true
	}
	r := lim.l.ReserveN(now, 1)
	if !r.OK() {
		return time.Minute // a burst below 1 cannot happen (callers pass positive ones)
	}
	wait := r.DelayFrom(now)
	if wait > 0 {
		r.CancelAt(now)
	}
	// A refused request changes nothing in the bucket (the limiter is shared by pointer); a
	// taken one, or new parameters, move the time it is full again.
	if wait == 0 || changed || !listed {
		missing := float64(burst) - lim.l.TokensAt(now)
		lim.full = leaseEnd(now.UnixNano(), time.Duration(missing/float64(every)*float64(time.Second)))
		if !listed || lim.full < lim.queued {
			lim.queued = lim.full
			sh.limitersExp.push(lim.full, key)
		}
		sh.limiters[key] = lim
		notePeak(len(sh.limiters), &sh.limitersPeak)
	}
	return wait
}
