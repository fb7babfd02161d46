package oauth2_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/store/memory"
	"github.com/latchkey-dev/latchkey/server/userauth"
)

// guesses counts the failed attempts an attacker gets checked within horizon from one address,
// with the identity of the n-th guess from identity(n), by the best of two kinds of strategy:
// guessing again as soon as the guard lets it (after each Retry-After), or, once a block reaches
// some length, waiting until the counts are forgotten (the block and a window) to start afresh
// with the short blocks. The progressive delay is left out (the policy's SlowDelay is a
// nanosecond), so the count is an upper bound: each delay only slows the attacker down.
func guesses(t *testing.T, p oauth2.BruteForcePolicy, identity func(n int) string, horizon time.Duration) int {
	t.Helper()
	best := 0
	for pause := p.Backoff; ; pause *= 2 {
		best = max(best, guessesPausing(t, p, identity, horizon, pause))
		if pause > p.MaxBackoff { // the last one never pauses
			return best
		}
	}
}

// guessesPausing is one strategy of guesses: a block of at least pause is waited out with the
// window, so the next guess finds the counts forgotten.
func guessesPausing(t *testing.T, p oauth2.BruteForcePolicy, identity func(n int) string, horizon, pause time.Duration) int {
	t.Helper()
	p.SlowDelay, p.MaxSlowDelay = time.Nanosecond, time.Nanosecond
	clock := harness.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	g := oauth2.NewGuard(memory.New(memory.WithClock(clock.Now)), "budget", p)
	end := clock.Now().Add(horizon)
	checked := 0
	for clock.Now().Before(end) {
		v, err := g.Record(context.Background(), identity(checked), "203.0.113.9", true)
		require.NoError(t, err)
		switch {
		case v.RetryAfter >= pause:
			clock.Advance(v.RetryAfter + p.Window + time.Millisecond)
		case v.RetryAfter > 0:
			clock.Advance(v.RetryAfter)
		default:
			checked++
			clock.Advance(time.Millisecond) // a request's round trip
		}
	}
	return checked
}

// TestWhatAnAttackerCanGuess measures the guesses one address gets checked under the default
// policies: of one client's secret, of secrets spread over many clients, of one user's password
// and of passwords spread over many users. The bounds are the policies' (see
// BruteForcePolicy); without protection the first was 13,772 a second.
func TestWhatAnAttackerCanGuess(t *testing.T) {
	user, err := userauth.Config{}.BruteForcePolicy()
	require.NoError(t, err)
	one := func(int) string { return "victim" }
	spread := func(n int) string { return "victim-" + strconv.Itoa(n) }
	for _, tc := range []struct {
		name              string
		policy            oauth2.BruteForcePolicy
		identity          func(int) string
		perMinute, perDay int
	}{
		// 5, then one after each back-off of 1, 2, 4, 8, 16 s; then 32 s ... 15 min, and one per
		// 15 min for as long as the attacker keeps failing (the count outlives the block). The
		// best strategy over a day pauses once a block is a few minutes long, waits the hour
		// the counts are remembered, and starts again with short blocks.
		{"One address gets at most 10 guesses of a client's secret in a minute", oauth2.DefaultClientBruteForce(), one, 10, 0},
		{"One address gets at most 290 guesses of a client's secret in a day", oauth2.DefaultClientBruteForce(), one, 0, 290},
		{"One address gets at most 25 guesses over many clients in a minute", oauth2.DefaultClientBruteForce(), spread, 25, 0},
		{"One address gets at most 630 guesses over many clients in a day", oauth2.DefaultClientBruteForce(), spread, 0, 630},
		{"One address gets at most 10 guesses of a user's password in a minute", user, one, 10, 0},
		{"One address gets at most 890 guesses of a user's password in a day", user, one, 0, 890},
		{"One address gets at most 50 guesses over many users in a minute", user, spread, 50, 0},
		{"One address gets at most 4100 guesses over many users in a day", user, spread, 0, 4100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			horizon, bound := time.Minute, tc.perMinute
			if tc.perDay > 0 {
				horizon, bound = 24*time.Hour, tc.perDay
			}
			n := guesses(t, tc.policy, tc.identity, horizon)
			t.Logf("%d guesses in %s", n, horizon)
			assert.LessOrEqual(t, n, bound)
			assert.Positive(t, n)
		})
	}
}
