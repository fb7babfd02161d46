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
}

func (t throttle) expires() int64 { return max(t.windowEnd, t.blockedUntil) }

// limiter is one rate-limit bucket and when it is full again (then it can be forgotten).
type limiter struct {
	l    *rate.Limiter
	full int64
}

// Throttle records an attempt on the keys atomically: the shards of the keys are locked
// together, in index order; see store.Throttles.
func (s *Store) Throttle(ctx context.Context, keys []store.ThrottleKey, outcome store.Outcome) (store.ThrottleResult, error) {
	if err := ctx.Err(); err != nil {
		return store.ThrottleResult{}, err
	}
	now := s.nowNano()
	var idxBuf [4]uint64 // the usual number of keys, on the stack
	idx := s.lockShards(keys, idxBuf[:0])
	defer s.unlockShards(idx)
	res := store.ThrottleResult{Failures: make([]int64, len(keys))}
	var recBuf [4]throttle
	recs := recBuf[:0]
	if len(keys) > len(recBuf) {
		recs = make([]throttle, 0, len(keys))
	}
	recs = recs[:len(keys)]
	for i, k := range keys {
		t, ok := s.shardOf(k.Key).throttles[k.Key]
		if !ok || t.expires() <= now {
			t = throttle{}
		}
		recs[i] = t
		if k.Limit > 0 && t.blockedUntil > now {
			res.RetryAfter = max(res.RetryAfter, time.Duration(t.blockedUntil-now))
		}
	}
	if res.RetryAfter > 0 {
		for i := range recs {
			res.Failures[i] = recs[i].failures
		}
		return res, nil
	}
	for i, k := range keys {
		t := &recs[i]
		sh := s.shardOf(k.Key)
		switch outcome {
		case store.Failure:
			t.failures++
			if k.Limit > 0 && t.failures >= int64(k.Limit) {
				t.blockedUntil = leaseEnd(now, backoff(k, t.failures))
			}
			// Forgotten a window after the last failure and its block.
			t.windowEnd = leaseEnd(max(now, t.blockedUntil), k.Window)
			sh.throttles[k.Key] = *t
			sh.throttlesExp.push(t.expires(), k.Key)
			notePeak(len(sh.throttles), &sh.throttlesPeak)
		case store.Success:
			if k.ResetOnSuccess {
				delete(sh.throttles, k.Key)
				*t = throttle{}
			}
		}
		res.Failures[i] = t.failures
	}
	return res, nil
}

// backoff is the block of a key after its failures-th failure (failures >= k.Limit).
func backoff(k store.ThrottleKey, failures int64) time.Duration {
	d := k.Backoff
	for n := failures - int64(k.Limit); n > 0 && d < k.MaxBackoff; n-- {
		d *= 2
	}
	return min(d, k.MaxBackoff)
}

// lockShards locks the shards of the keys in index order (so two callers cannot deadlock),
// expires their due entries and returns the indexes locked (appended to idx), for unlockShards.
func (s *Store) lockShards(keys []store.ThrottleKey, idx []uint64) []uint64 {
	for _, k := range keys {
		idx = append(idx, s.shardIndex(k.Key))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		s.shards[i].mu.Lock()
	}
	now := s.nowNano()
	for _, i := range idx {
		s.shards[i].expire(now, lazyBatch)
	}
	return idx
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
	every := rate.Limit(float64(perMinute) / 60)
	sh := s.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.expire(now.UnixNano(), lazyBatch)
	lim, ok := sh.limiters[key]
	if !ok {
		lim = limiter{l: rate.NewLimiter(every, burst)}
	} else if lim.l.Limit() != every || lim.l.Burst() != burst {
		lim.l.SetLimitAt(now, every)
		lim.l.SetBurstAt(now, burst)
	}
	r := lim.l.ReserveN(now, 1)
	if !r.OK() {
		return time.Minute, nil // a burst below 1 cannot happen (callers pass positive ones)
	}
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		sh.limiters[key] = lim
		return wait, nil
	}
	// The bucket is full again once every token taken has come back.
	missing := float64(burst) - lim.l.TokensAt(now)
	lim.full = leaseEnd(now.UnixNano(), time.Duration(missing/float64(every)*float64(time.Second)))
	sh.limiters[key] = lim
	sh.limitersExp.push(lim.full, key)
	notePeak(len(sh.limiters), &sh.limitersPeak)
	return 0, nil
}
