package oauth2

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/netip"
	"strconv"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
)

// ErrTooManyRequests answers an attempt refused by brute-force protection or a rate limit:
// 429 with Retry-After (WithRetryAfter). Its code is RFC 6749's temporarily_unavailable.
var ErrTooManyRequests = &Error{code: "temporarily_unavailable", status: 429,
	description: "Too many requests or failed attempts; retry after the Retry-After delay."}

// BruteForcePolicy says how failed attempts on an identity (a client ID, a username) are
// counted and answered, across every replica (the counts live in the leased store).
//
// Failures are counted per (identity, address) and per address, and forgotten Window after
// the last failure and its block; reaching a limit blocks that key for Backoff, doubled for
// every further failure, at most MaxBackoff, and a blocked key refuses every attempt (429)
// whatever its outcome, so a guess made during a block teaches nothing. An attacker that keeps
// guessing gets one guess per MaxBackoff; one that waits for the counts to be forgotten gets
// the short blocks again after each Window: TestWhatAnAttackerCanGuess measures the best
// strategy. A success drops the (identity, address) count. Failures of the identity from all
// addresses never refuse (an attacker elsewhere must not lock a client or user out): past
// SlowAfter each further failure of it is answered after SlowDelay, doubled per failure, at
// most MaxSlowDelay. An IPv6 address counts by its /64 (one host's usual allocation).
type BruteForcePolicy struct {
	PerIdentityAddress int
	PerAddress         int
	SlowAfter          int
	Window             time.Duration
	Backoff            time.Duration
	MaxBackoff         time.Duration
	SlowDelay          time.Duration
	MaxSlowDelay       time.Duration
}

// DefaultClientBruteForce is the policy of client authentication: a client secret is checked
// in microseconds, so the limits are tight, and failures are remembered for an hour (a
// legitimate client rarely fails; a success from its address forgets its own count).
func DefaultClientBruteForce() BruteForcePolicy {
	return BruteForcePolicy{
		PerIdentityAddress: 5, PerAddress: 20, SlowAfter: 10, Window: time.Hour,
		Backoff: time.Second, MaxBackoff: 15 * time.Minute, SlowDelay: 100 * time.Millisecond, MaxSlowDelay: 2 * time.Second,
	}
}

// WithDefaults fills zero fields from def; a negative field is an error.
func (p BruteForcePolicy) WithDefaults(def BruteForcePolicy) (BruteForcePolicy, error) {
	if p.PerIdentityAddress < 0 || p.PerAddress < 0 || p.SlowAfter < 0 || p.Window < 0 || p.Backoff < 0 ||
		p.MaxBackoff < 0 || p.SlowDelay < 0 || p.MaxSlowDelay < 0 {
		return p, errors.New("oauth2: brute-force limits must not be negative")
	}
	p.PerIdentityAddress = orDefault(p.PerIdentityAddress, def.PerIdentityAddress)
	p.PerAddress = orDefault(p.PerAddress, def.PerAddress)
	p.SlowAfter = orDefault(p.SlowAfter, def.SlowAfter)
	p.Window = orDefault(p.Window, def.Window)
	p.Backoff = orDefault(p.Backoff, def.Backoff)
	p.MaxBackoff = max(orDefault(p.MaxBackoff, def.MaxBackoff), p.Backoff)
	p.SlowDelay = orDefault(p.SlowDelay, def.SlowDelay)
	p.MaxSlowDelay = max(orDefault(p.MaxSlowDelay, def.MaxSlowDelay), p.SlowDelay)
	return p, nil
}

// Guard applies a BruteForcePolicy to the attempts of one kind (client authentication, user
// login) through the store's throttles. A nil *Guard allows everything (a handler without a
// store).
type Guard struct {
	throttles store.Throttles
	// rates is throttles when it also applies a rate limit in the same step; nil otherwise.
	rates  store.ThrottleRates
	policy BruteForcePolicy
	kind   string
}

// NewGuard returns the guard of one kind of attempt ("client", "user": it separates their
// counts) with the policy p as it is (apply BruteForcePolicy.WithDefaults first). When t is
// also a store.ThrottleRates, RecordRate takes from a rate limit in the same step.
func NewGuard(t store.Throttles, kind string, p BruteForcePolicy) *Guard {
	rates, _ := t.(store.ThrottleRates)
	return &Guard{throttles: t, rates: rates, policy: p, kind: kind}
}

// Verdict is what the guard decided about an attempt.
type Verdict struct {
	// RetryAfter is positive when the attempt is refused: answer 429 with it.
	RetryAfter time.Duration
	// IdentityFailures is how many failures the identity has from all addresses in the window
	// (after a recorded failure, including it).
	IdentityFailures int64
	// RateWait is RecordRate's answer from the rate limit: positive when it refused the
	// request.
	RateWait time.Duration
}

// Check reports, before an expensive check (a password hash), whether the identity may be
// tried from the address; it records nothing.
func (g *Guard) Check(ctx context.Context, identity, address string) (Verdict, error) {
	return g.throttle(ctx, identity, address, store.Check)
}

// Record records the outcome of an attempt. A refused attempt (RetryAfter > 0) recorded
// nothing; a failure that was recorded is answered after the policy's progressive delay,
// which Record waits (or until ctx ends).
func (g *Guard) Record(ctx context.Context, identity, address string, failed bool) (Verdict, error) {
	if g == nil {
		return Verdict{}, nil
	}
	o := store.Success
	if failed {
		o = store.Failure
	}
	v, err := g.throttle(ctx, identity, address, o)
	if err == nil && failed && v.RetryAfter == 0 {
		wait(ctx, g.slowDelay(v.IdentityFailures))
	}
	return v, err
}

// CanRate reports whether RecordRate can take from a rate limit in the same step.
func (g *Guard) CanRate() bool { return g != nil && g.rates != nil }

// RecordRate records a successful attempt and, unless the attempt is refused, takes one
// request from the bucket rate, in one store step (one round trip): Verdict.RateWait is the
// bucket's answer. Only when CanRate.
func (g *Guard) RecordRate(ctx context.Context, identity, address string, rate store.RateTake) (Verdict, error) {
	if !g.CanRate() {
		return Verdict{}, errors.New("oauth2: the guard's store applies no rate limit")
	}
	res, err := g.rates.ThrottleRate(ctx, g.keys(identity, address), store.Success, rate)
	if err != nil {
		return Verdict{}, err
	}
	return Verdict{RetryAfter: res.RetryAfter, IdentityFailures: res.Failures[2], RateWait: res.RateWait}, nil
}

func (g *Guard) throttle(ctx context.Context, identity, address string, o store.Outcome) (Verdict, error) {
	if g == nil {
		return Verdict{}, nil
	}
	res, err := g.throttles.Throttle(ctx, g.keys(identity, address), o)
	if err != nil {
		return Verdict{}, err
	}
	return Verdict{RetryAfter: res.RetryAfter, IdentityFailures: res.Failures[2]}, nil
}

// keys are the counts of an attempt: (identity, address), address, and identity (the third,
// whose count Verdict.IdentityFailures reports).
func (g *Guard) keys(identity, address string) []store.ThrottleKey {
	p := g.policy
	addr := AddressKey(address)
	return []store.ThrottleKey{
		{Key: g.key("identity-address", identity, addr), Limit: p.PerIdentityAddress, Window: p.Window,
			Backoff: p.Backoff, MaxBackoff: p.MaxBackoff, ResetOnSuccess: true},
		{Key: g.key("address", "", addr), Limit: p.PerAddress, Window: p.Window, Backoff: p.Backoff, MaxBackoff: p.MaxBackoff},
		{Key: g.key("identity", identity, ""), Window: p.Window},
	}
}

// slowDelay is the progressive delay after the identity's n-th failure from all addresses.
func (g *Guard) slowDelay(n int64) time.Duration {
	p := g.policy
	if n <= int64(p.SlowAfter) {
		return 0
	}
	d := p.SlowDelay
	for i := n - int64(p.SlowAfter) - 1; i > 0 && d < p.MaxSlowDelay; i-- {
		d *= 2
	}
	return min(d, p.MaxSlowDelay)
}

// key names one count; its parts are length-prefixed so no two tuples share a key.
func (g *Guard) key(what, identity, address string) store.Hash {
	// The fields, each after its length, in a buffer on the stack for the usual sizes.
	var buf [256]byte
	b := append(buf[:0], "bruteforce\x00"...)
	b = append(append(b, g.kind...), 0)
	b = append(append(b, what...), 0)
	b = append(append(append(strconv.AppendInt(b, int64(len(identity)), 10), ':'), identity...), 0)
	b = append(append(strconv.AppendInt(b, int64(len(address)), 10), ':'), address...)
	return sha256.Sum256(b)
}

// AddressKey is the address that limits per client address count under: an IPv4 address as
// it is, an IPv6 address by its /64 (one host's usual allocation), anything else as it is.
func AddressKey(address string) string {
	ip, err := netip.ParseAddr(address)
	if err != nil || !ip.Is6() || ip.Is4In6() {
		return address
	}
	return netip.PrefixFrom(ip, 64).Masked().String()
}

// wait waits d, or until ctx ends.
func wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
