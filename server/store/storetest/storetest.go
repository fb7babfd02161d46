package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Options tunes Run to a backend.
type Options struct {
	// Clock, when set, is the clock every store from newStore reads: the suite advances it
	// instead of sleeping, and runs its tests one at a time. Nil means real time.
	Clock *harness.Clock
}

const (
	// lease is the short lease of tests that wait for one to end.
	lease = 250 * time.Millisecond
	// pastLease is how long they wait: the lease and a margin.
	pastLease = lease + 100*time.Millisecond
	// long is a lease no test outlives.
	long = time.Hour
	// racers is how many goroutines race for one code or one token.
	racers = 32
)

// env is what a test gets: its own store, and the suite's clock.
type env struct {
	t     *testing.T
	ctx   context.Context
	s     store.Store
	clock *harness.Clock
}

func (e *env) now() time.Time {
	if e.clock != nil {
		return e.clock.Now()
	}
	return time.Now()
}

// wait lets d pass.
func (e *env) wait(d time.Duration) {
	if e.clock != nil {
		e.clock.Advance(d)
		return
	}
	time.Sleep(d)
}

type test struct {
	name string
	run  func(e *env)
}

// Run runs the conformance suite; newStore returns an empty store for each test.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts Options) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"codes", codeTests()},
		{"code redemptions", redeemTests()},
		{"known records", knownTests()},
		{"refresh tokens", refreshTests()},
		{"refresh token families", familyTests()},
		{"sealed successors", successorTests()},
		{"grant cutoffs", cutoffTests()},
		{"revocations", revocationTests()},
		{"records", recordTests()},
		{"lists", listTests()},
		{"counters", counterTests()},
		{"throttles", throttleTests()},
		{"rate limits", rateTests()},
		{"throttles with a rate limit", throttleRateTests()},
		{"admitted operations", admissionTests()},
		{"credential uses", credentialUseTests()},
		{"back-channel logout deliveries", logoutTests()},
		{"device grants", deviceTests()},
		{"contexts", contextTests()},
		{"ping", []test{{
			name: "Ping answers",
			run:  func(e *env) { require.NoError(e.t, e.s.Ping(e.ctx)) },
		}}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			if opts.Clock == nil {
				t.Parallel()
			}
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					if opts.Clock == nil {
						t.Parallel()
					}
					tc.run(&env{t: t, ctx: t.Context(), s: newStore(t), clock: opts.Clock})
				})
			}
		})
	}
}

// sentinels are the errors of server/store.
func sentinels() []error {
	return []error{store.ErrNotFound, store.ErrConflict, store.ErrAlreadyUsed, store.ErrReused, store.ErrRevoked, store.ErrUnavailable}
}

// requireIs checks that err matches want and no other sentinel.
func requireIs(t *testing.T, err, want error) {
	t.Helper()
	require.ErrorIs(t, err, want)
	for _, other := range sentinels() {
		if !errors.Is(other, want) {
			require.NotErrorIs(t, err, other, "%v must match %v only", err, want)
		}
	}
}

func hash(name string) store.Hash { return store.HashOf("secret-" + name) }

// newFamily returns a family ID as the server makes them: 16 random bytes in base64url.
func newFamily(t *testing.T) string {
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (e *env) code(family string) store.Code {
	return store.Code{
		ClientID:            "client-a",
		RedirectURI:         "https://app.example.com/callback",
		Subject:             "alice",
		Scopes:              []string{"openid", "profile", "read:projects"},
		Nonce:               "n-0S6_WzA2Mj",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		AuthTime:            e.now().Add(-time.Minute),
		FamilyID:            family,
		SessionID:           "op-session-" + family,
		Resources:           []string{"https://api.example.com/", "urn:example:billing"},
		DPoPThumbprint:      "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
	}
}

func (e *env) refresh(family string, ttl time.Duration) store.RefreshToken {
	now := e.now()
	return store.RefreshToken{
		FamilyID:  family,
		ClientID:  "client-a",
		Subject:   "alice",
		Scopes:    []string{"openid", "offline_access", "read:projects"},
		AuthTime:  now.Add(-time.Minute),
		IssuedAt:  now,
		ExpiresAt: now.Add(ttl),
		SessionID: "op-session-" + family,
		Resources: []string{"https://api.example.com/", "urn:example:billing"},
	}
}

func requireTime(t *testing.T, want, got time.Time, field string) {
	t.Helper()
	if want.IsZero() {
		require.True(t, got.IsZero(), "%s: want the zero time, got %v", field, got)
		return
	}
	require.WithinDuration(t, want, got, time.Millisecond, field)
}

func requireScopes(t *testing.T, want, got []string) {
	t.Helper()
	if len(want) == 0 {
		require.Empty(t, got, "scopes")
		return
	}
	require.Equal(t, want, got, "scopes")
}

func requireCode(t *testing.T, want, got store.Code) {
	t.Helper()
	requireScopes(t, want.Scopes, got.Scopes)
	requireTime(t, want.AuthTime, got.AuthTime, "AuthTime")
	want.Scopes, got.Scopes = nil, nil
	want.AuthTime, got.AuthTime = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

func requireRefresh(t *testing.T, want, got store.RefreshToken) {
	t.Helper()
	requireScopes(t, want.Scopes, got.Scopes)
	requireTime(t, want.AuthTime, got.AuthTime, "AuthTime")
	requireTime(t, want.IssuedAt, got.IssuedAt, "IssuedAt")
	requireTime(t, want.ExpiresAt, got.ExpiresAt, "ExpiresAt")
	want.Scopes, got.Scopes = nil, nil
	want.AuthTime, got.AuthTime = time.Time{}, time.Time{}
	want.IssuedAt, got.IssuedAt = time.Time{}, time.Time{}
	want.ExpiresAt, got.ExpiresAt = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

// race runs f from n goroutines released together and returns their errors.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func codeTests() []test {
	return []test{
		{
			name: "a code that was put is taken with every field intact",
			run: func(e *env) {
				want := e.code(newFamily(e.t))
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), want, long))
				got, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				require.NoError(e.t, err)
				requireCode(e.t, want, got)
			},
		},
		{
			name: "a second take is ErrAlreadyUsed and returns the record with its family",
			run: func(e *env) {
				want := e.code(newFamily(e.t))
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), want, long))
				_, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				require.NoError(e.t, err)
				for range 2 {
					got, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
					requireIs(e.t, err, store.ErrAlreadyUsed)
					require.Equal(e.t, want.FamilyID, got.FamilyID)
					requireCode(e.t, want, got)
				}
			},
		},
		{
			name: "another client's take is ErrNotFound and leaves the code as it was, unused or used",
			run: func(e *env) {
				want := e.code(newFamily(e.t))
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), want, long))
				for _, other := range []string{"client-b", "", "client-a\x00", "client-"} {
					_, err := e.s.TakeCode(e.ctx, hash("c"), other)
					requireIs(e.t, err, store.ErrNotFound)
				}
				got, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				require.NoError(e.t, err, "its own client still takes it")
				requireCode(e.t, want, got)
				_, err = e.s.TakeCode(e.ctx, hash("c"), "client-b")
				requireIs(e.t, err, store.ErrNotFound) // a replay by another client reveals nothing
				_, err = e.s.TakeCode(e.ctx, hash("c"), "client-a")
				requireIs(e.t, err, store.ErrAlreadyUsed)
			},
		},
		{
			name: "an unknown code is ErrNotFound",
			run: func(e *env) {
				_, err := e.s.TakeCode(e.ctx, hash("nope"), "client-a")
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "an unused code is ErrNotFound once its lease ends",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(newFamily(e.t)), lease))
				e.wait(pastLease)
				_, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "a used code is ErrAlreadyUsed until its lease ends, then ErrNotFound",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(newFamily(e.t)), lease))
				_, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				require.NoError(e.t, err)
				_, err = e.s.TakeCode(e.ctx, hash("c"), "client-a")
				requireIs(e.t, err, store.ErrAlreadyUsed)
				e.wait(pastLease)
				_, err = e.s.TakeCode(e.ctx, hash("c"), "client-a")
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "of concurrent takes of one code exactly one wins and the others get ErrAlreadyUsed with the record",
			run: func(e *env) {
				want := e.code(newFamily(e.t))
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), want, long))
				codes := make([]store.Code, racers)
				errs := race(racers, func(i int) error {
					var err error
					codes[i], err = e.s.TakeCode(e.ctx, hash("c"), "client-a")
					return err
				})
				winners := 0
				for i, err := range errs {
					if err == nil {
						winners++
					} else {
						requireIs(e.t, err, store.ErrAlreadyUsed)
					}
					requireCode(e.t, want, codes[i])
				}
				require.Equal(e.t, 1, winners)
			},
		},
		{
			name: "putting a code under a hash that holds a live code is ErrConflict and keeps the first",
			run: func(e *env) {
				first := e.code(newFamily(e.t))
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), first, long))
				_, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				require.NoError(e.t, err)
				requireIs(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(newFamily(e.t)), long), store.ErrConflict)
				got, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				requireIs(e.t, err, store.ErrAlreadyUsed)
				require.Equal(e.t, first.FamilyID, got.FamilyID)
			},
		},
		{
			name: "a hash can hold a new code once the old one's lease ended",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(newFamily(e.t)), lease))
				e.wait(pastLease)
				want := e.code(newFamily(e.t))
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), want, long))
				got, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				require.NoError(e.t, err)
				requireCode(e.t, want, got)
			},
		},
		{
			name: "codes are copies: changing the scopes put or taken changes nothing stored",
			run: func(e *env) {
				in := e.code(newFamily(e.t))
				want := e.code(in.FamilyID)
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), in, long))
				in.Scopes[0] = "admin"
				got, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				require.NoError(e.t, err)
				requireCode(e.t, want, got)
				got.Scopes[0] = "admin"
				got, err = e.s.TakeCode(e.ctx, hash("c"), "client-a")
				requireIs(e.t, err, store.ErrAlreadyUsed)
				requireCode(e.t, want, got)
			},
		},
	}
}

func refreshTests() []test {
	return []test{
		{
			name: "a created token is read back with every field intact",
			run: func(e *env) {
				want := e.refresh(newFamily(e.t), long)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), want))
				got, err := e.s.GetRefresh(e.ctx, hash("a"))
				require.NoError(e.t, err)
				requireRefresh(e.t, want, got)
			},
		},
		{
			name: "a DPoP-bound token keeps its thumbprint, with and without a session, through a rotation",
			run: func(e *env) {
				family := newFamily(e.t)
				want := e.refresh(family, long)
				want.DPoPThumbprint = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), want))
				got, err := e.s.GetRefresh(e.ctx, hash("a"))
				require.NoError(e.t, err)
				requireRefresh(e.t, want, got)
				if known, ok := e.s.KnownRefresh(hash("a")); ok {
					requireRefresh(e.t, want, known)
				}

				next := e.refresh(family, long)
				next.SessionID = ""
				next.DPoPThumbprint = want.DPoPThumbprint
				_, err = e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), next, nil, time.Minute)
				require.NoError(e.t, err)
				got, err = e.s.GetRefresh(e.ctx, hash("b"))
				require.NoError(e.t, err)
				requireRefresh(e.t, next, got)

				unbound := e.refresh(newFamily(e.t), long)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("c"), unbound))
				got, err = e.s.GetRefresh(e.ctx, hash("c"))
				require.NoError(e.t, err)
				require.Empty(e.t, got.DPoPThumbprint, "a token created without a thumbprint is not bound")
			},
		},
		{
			name: "a zero AuthTime and empty scopes come back as such",
			run: func(e *env) {
				want := e.refresh(newFamily(e.t), long)
				want.AuthTime, want.Scopes = time.Time{}, nil
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), want))
				got, err := e.s.GetRefresh(e.ctx, hash("a"))
				require.NoError(e.t, err)
				requireRefresh(e.t, want, got)
			},
		},
		{
			name: "a token without resources comes back without, and resources without scopes keep both apart",
			run: func(e *env) {
				none := e.refresh(newFamily(e.t), long)
				none.Resources = nil
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), none))
				got, err := e.s.GetRefresh(e.ctx, hash("a"))
				require.NoError(e.t, err)
				require.Nil(e.t, got.Resources)
				requireRefresh(e.t, none, got)

				only := e.refresh(newFamily(e.t), long)
				only.Scopes = nil
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("b"), only))
				got, err = e.s.GetRefresh(e.ctx, hash("b"))
				require.NoError(e.t, err)
				require.Empty(e.t, got.Scopes)
				require.Equal(e.t, only.Resources, got.Resources)
			},
		},
		{
			name: "an unknown token is ErrNotFound for Get and Rotate",
			run: func(e *env) {
				_, err := e.s.GetRefresh(e.ctx, hash("nope"))
				requireIs(e.t, err, store.ErrNotFound)
				_, err = e.s.RotateRefresh(e.ctx, hash("nope"), hash("b"), e.refresh(newFamily(e.t), long), nil, time.Minute)
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "creating a token under a hash that holds a live token is ErrConflict and keeps the first",
			run: func(e *env) {
				first := e.refresh(newFamily(e.t), long)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), first))
				requireIs(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(newFamily(e.t), long)), store.ErrConflict)
				got, err := e.s.GetRefresh(e.ctx, hash("a"))
				require.NoError(e.t, err)
				requireRefresh(e.t, first, got)
			},
		},
		{
			name: "a token is ErrNotFound once its ExpiresAt passes, for Get and Rotate",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, lease)))
				_, err := e.s.GetRefresh(e.ctx, hash("a"))
				require.NoError(e.t, err)
				e.wait(pastLease)
				_, err = e.s.GetRefresh(e.ctx, hash("a"))
				requireIs(e.t, err, store.ErrNotFound)
				_, err = e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
				requireIs(e.t, err, store.ErrNotFound)
				_, err = e.s.GetRefresh(e.ctx, hash("b"))
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "rotation returns the old record and the new token becomes active in the same family",
			run: func(e *env) {
				old := e.refresh(newFamily(e.t), long)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), old))
				next := e.refresh(old.FamilyID, 2*long)
				next.Scopes = []string{"read:projects"} // narrowed
				got, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), next, nil, time.Minute)
				require.NoError(e.t, err)
				requireRefresh(e.t, old, got)
				got, err = e.s.GetRefresh(e.ctx, hash("b"))
				require.NoError(e.t, err)
				requireRefresh(e.t, next, got)
				// And the new token rotates in turn.
				last := e.refresh(old.FamilyID, long)
				got, err = e.s.RotateRefresh(e.ctx, hash("b"), hash("c"), last, nil, time.Minute)
				require.NoError(e.t, err)
				requireRefresh(e.t, next, got)
				got, err = e.s.GetRefresh(e.ctx, hash("c"))
				require.NoError(e.t, err)
				requireRefresh(e.t, last, got)
			},
		},
		{
			name: "a rotated token reads as ErrReused without revoking its family",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
				require.NoError(e.t, err)
				for range 2 {
					_, err = e.s.GetRefresh(e.ctx, hash("a"))
					requireIs(e.t, err, store.ErrReused)
				}
				revoked, err := e.s.FamilyRevoked(e.ctx, family)
				require.NoError(e.t, err)
				require.False(e.t, revoked)
				_, err = e.s.GetRefresh(e.ctx, hash("b"))
				require.NoError(e.t, err)
			},
		},
		{
			name: "rotating a rotated token again within grace is ErrConflict and changes nothing",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
				require.NoError(e.t, err)
				_, err = e.s.RotateRefresh(e.ctx, hash("a"), hash("c"), e.refresh(family, long), nil, time.Minute)
				requireIs(e.t, err, store.ErrConflict)
				_, err = e.s.GetRefresh(e.ctx, hash("c"))
				requireIs(e.t, err, store.ErrNotFound)
				_, err = e.s.GetRefresh(e.ctx, hash("b"))
				require.NoError(e.t, err)
				revoked, err := e.s.FamilyRevoked(e.ctx, family)
				require.NoError(e.t, err)
				require.False(e.t, revoked)
			},
		},
		{
			name: "of concurrent rotations of one token exactly one wins and the others get ErrConflict, revoking nothing",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				errs := race(racers, func(i int) error {
					_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash(fmt.Sprint("b", i)), e.refresh(family, long), nil, time.Minute)
					return err
				})
				winner := -1
				for i, err := range errs {
					if err == nil {
						require.Equal(e.t, -1, winner, "two rotations won")
						winner = i
						continue
					}
					requireIs(e.t, err, store.ErrConflict)
				}
				require.NotEqual(e.t, -1, winner, "no rotation won")
				for i := range racers {
					_, err := e.s.GetRefresh(e.ctx, hash(fmt.Sprint("b", i)))
					if i == winner {
						require.NoError(e.t, err)
					} else {
						requireIs(e.t, err, store.ErrNotFound)
					}
				}
				revoked, err := e.s.FamilyRevoked(e.ctx, family)
				require.NoError(e.t, err)
				require.False(e.t, revoked)
			},
		},
		{
			name: "tokens are copies: changing the scopes created, read or returned by rotation changes nothing stored",
			run: func(e *env) {
				in := e.refresh(newFamily(e.t), long)
				want := in
				want.Scopes = append([]string(nil), in.Scopes...)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), in))
				in.Scopes[0] = "admin"
				got, err := e.s.GetRefresh(e.ctx, hash("a"))
				require.NoError(e.t, err)
				requireRefresh(e.t, want, got)
				got.Scopes[0] = "admin"
				got, err = e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), want, nil, time.Minute)
				require.NoError(e.t, err)
				requireRefresh(e.t, want, got)
				got.Scopes[1] = "admin"
				got, err = e.s.GetRefresh(e.ctx, hash("b"))
				require.NoError(e.t, err)
				requireRefresh(e.t, want, got)
			},
		},
	}
}

func familyTests() []test {
	return []test{
		{
			name: "rotating a rotated token after grace is ErrReused and revokes the whole family",
			run: func(e *env) {
				family, other := newFamily(e.t), newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("x"), e.refresh(other, long)))
				grace := lease
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, grace)
				require.NoError(e.t, err)
				_, err = e.s.RotateRefresh(e.ctx, hash("b"), hash("c"), e.refresh(family, long), nil, grace)
				require.NoError(e.t, err)
				e.wait(pastLease)
				_, err = e.s.RotateRefresh(e.ctx, hash("a"), hash("d"), e.refresh(family, long), nil, grace)
				requireIs(e.t, err, store.ErrReused)

				revoked, err := e.s.FamilyRevoked(e.ctx, family)
				require.NoError(e.t, err)
				require.True(e.t, revoked)
				for _, name := range []string{"a", "b", "c"} {
					_, err = e.s.GetRefresh(e.ctx, hash(name))
					requireIs(e.t, err, store.ErrRevoked)
				}
				_, err = e.s.RotateRefresh(e.ctx, hash("c"), hash("e"), e.refresh(family, long), nil, grace)
				requireIs(e.t, err, store.ErrRevoked)
				for _, name := range []string{"d", "e"} {
					_, err = e.s.GetRefresh(e.ctx, hash(name))
					requireIs(e.t, err, store.ErrNotFound)
				}
				// Another family is untouched.
				revoked, err = e.s.FamilyRevoked(e.ctx, other)
				require.NoError(e.t, err)
				require.False(e.t, revoked)
				_, err = e.s.GetRefresh(e.ctx, hash("x"))
				require.NoError(e.t, err)
			},
		},
		{
			name: "a zero grace makes any second rotation ErrReused",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, 0)
				require.NoError(e.t, err)
				e.wait(time.Millisecond)
				_, err = e.s.RotateRefresh(e.ctx, hash("a"), hash("c"), e.refresh(family, long), nil, 0)
				requireIs(e.t, err, store.ErrReused)
				_, err = e.s.GetRefresh(e.ctx, hash("b"))
				requireIs(e.t, err, store.ErrRevoked)
			},
		},
		{
			name: "reporting the reuse of a rotated token after grace is ErrReused and revokes the whole family",
			run: func(e *env) {
				family, other := newFamily(e.t), newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("x"), e.refresh(other, long)))
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, lease)
				require.NoError(e.t, err)
				e.wait(pastLease)
				requireIs(e.t, e.s.ReportRefreshReuse(e.ctx, hash("a"), lease), store.ErrReused)
				revoked, err := e.s.FamilyRevoked(e.ctx, family)
				require.NoError(e.t, err)
				require.True(e.t, revoked)
				for _, name := range []string{"a", "b"} {
					_, err = e.s.GetRefresh(e.ctx, hash(name))
					requireIs(e.t, err, store.ErrRevoked)
				}
				requireIs(e.t, e.s.ReportRefreshReuse(e.ctx, hash("a"), lease), store.ErrRevoked)
				// Another family is untouched.
				_, err = e.s.GetRefresh(e.ctx, hash("x"))
				require.NoError(e.t, err)
			},
		},
		{
			name: "reporting the reuse of a rotated token within grace is ErrConflict and changes nothing",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
				require.NoError(e.t, err)
				for range 2 {
					requireIs(e.t, e.s.ReportRefreshReuse(e.ctx, hash("a"), time.Minute), store.ErrConflict)
				}
				revoked, err := e.s.FamilyRevoked(e.ctx, family)
				require.NoError(e.t, err)
				require.False(e.t, revoked)
				_, err = e.s.GetRefresh(e.ctx, hash("b"))
				require.NoError(e.t, err)
				_, err = e.s.GetRefresh(e.ctx, hash("a"))
				requireIs(e.t, err, store.ErrReused)
			},
		},
		{
			name: "reporting the reuse of a token never rotated changes nothing, of an unknown or expired one is ErrNotFound",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				require.NoError(e.t, e.s.ReportRefreshReuse(e.ctx, hash("a"), 0))
				got, err := e.s.GetRefresh(e.ctx, hash("a"))
				require.NoError(e.t, err)
				require.Equal(e.t, family, got.FamilyID)
				revoked, err := e.s.FamilyRevoked(e.ctx, family)
				require.NoError(e.t, err)
				require.False(e.t, revoked)
				requireIs(e.t, e.s.ReportRefreshReuse(e.ctx, hash("nope"), 0), store.ErrNotFound)

				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("short"), e.refresh(newFamily(e.t), lease)))
				_, err = e.s.RotateRefresh(e.ctx, hash("short"), hash("next"), e.refresh(family, long), nil, 0)
				require.NoError(e.t, err)
				e.wait(pastLease)
				requireIs(e.t, e.s.ReportRefreshReuse(e.ctx, hash("short"), 0), store.ErrNotFound)
			},
		},
		{
			name: "a revoked family's tokens are ErrRevoked for Get and Rotate, rotated or not",
			run: func(e *env) {
				family, other := newFamily(e.t), newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
				require.NoError(e.t, err)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("x"), e.refresh(other, long)))
				require.NoError(e.t, e.s.RevokeFamily(e.ctx, family, e.now().Add(long)))

				for _, name := range []string{"a", "b"} {
					_, err = e.s.GetRefresh(e.ctx, hash(name))
					requireIs(e.t, err, store.ErrRevoked)
					_, err = e.s.RotateRefresh(e.ctx, hash(name), hash("c"), e.refresh(family, long), nil, time.Minute)
					requireIs(e.t, err, store.ErrRevoked)
				}
				_, err = e.s.GetRefresh(e.ctx, hash("c"))
				requireIs(e.t, err, store.ErrNotFound)
				revoked, err := e.s.FamilyRevoked(e.ctx, family)
				require.NoError(e.t, err)
				require.True(e.t, revoked)
				_, err = e.s.GetRefresh(e.ctx, hash("x"))
				require.NoError(e.t, err)
			},
		},
		{
			name: "FamilyRevoked is false for an unknown family and for an active one",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				for _, f := range []string{family, newFamily(e.t), "unknown"} {
					revoked, err := e.s.FamilyRevoked(e.ctx, f)
					require.NoError(e.t, err)
					require.False(e.t, revoked, f)
				}
			},
		},
		{
			name: "a family revocation with no tokens is forgotten after until",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.RevokeFamily(e.ctx, family, e.now().Add(lease)))
				revoked, err := e.s.FamilyRevoked(e.ctx, family)
				require.NoError(e.t, err)
				require.True(e.t, revoked)
				e.wait(pastLease)
				revoked, err = e.s.FamilyRevoked(e.ctx, family)
				require.NoError(e.t, err)
				require.False(e.t, revoked)
			},
		},
		{
			name: "a family revoked until before its tokens expire stays revoked for them",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				require.NoError(e.t, e.s.RevokeFamily(e.ctx, family, e.now().Add(lease)))
				e.wait(pastLease)
				_, err := e.s.GetRefresh(e.ctx, hash("a"))
				requireIs(e.t, err, store.ErrRevoked)
				_, err = e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
				requireIs(e.t, err, store.ErrRevoked)
			},
		},
		{
			name: "a token created in a revoked family is ErrRevoked, even after the revocation's until",
			run: func(e *env) {
				// A replayed code revokes its family before the first exchange stores its token.
				family := newFamily(e.t)
				require.NoError(e.t, e.s.RevokeFamily(e.ctx, family, e.now().Add(lease)))
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				_, err := e.s.GetRefresh(e.ctx, hash("a"))
				requireIs(e.t, err, store.ErrRevoked)
				e.wait(pastLease)
				_, err = e.s.GetRefresh(e.ctx, hash("a"))
				requireIs(e.t, err, store.ErrRevoked)
			},
		},
		{
			name: "family IDs come back exactly as given, canonical or not, and revoke only themselves",
			run: func(e *env) {
				ids := []string{
					newFamily(e.t),
					"AAAAAAAAAAAAAAAAAAAAAA", // 16 zero bytes, canonical
					"AAAAAAAAAAAAAAAAAAAAAB", // the same bytes to a lax decoder, not canonical
					"AAAAAAAAAAAAAAAAAAAA==", // padded
					"family-1",
					"a family ID with spaces and ünïcode, longer than the others",
					"",
				}
				for i, id := range ids {
					a, b := hash(fmt.Sprint("a", i)), hash(fmt.Sprint("b", i))
					require.NoError(e.t, e.s.CreateRefresh(e.ctx, a, e.refresh(id, long)))
					got, err := e.s.GetRefresh(e.ctx, a)
					require.NoError(e.t, err)
					require.Equal(e.t, id, got.FamilyID)
					got, err = e.s.RotateRefresh(e.ctx, a, b, e.refresh(id, long), nil, time.Minute)
					require.NoError(e.t, err)
					require.Equal(e.t, id, got.FamilyID)
					got, err = e.s.GetRefresh(e.ctx, b)
					require.NoError(e.t, err)
					require.Equal(e.t, id, got.FamilyID)
				}
				for i, id := range ids {
					require.NoError(e.t, e.s.RevokeFamily(e.ctx, id, e.now().Add(long)), id)
					for j, other := range ids {
						_, err := e.s.GetRefresh(e.ctx, hash(fmt.Sprint("b", j)))
						revoked, ferr := e.s.FamilyRevoked(e.ctx, other)
						require.NoError(e.t, ferr)
						if j <= i {
							requireIs(e.t, err, store.ErrRevoked)
							require.True(e.t, revoked, other)
						} else {
							require.NoError(e.t, err, "revoking %q revoked %q", id, other)
							require.False(e.t, revoked, "revoking %q revoked %q", id, other)
						}
					}
				}
			},
		},
	}
}

func revocationTests() []test {
	return []test{
		{
			name: "a revoked token ID is revoked until until, then not",
			run: func(e *env) {
				require.NoError(e.t, e.s.RevokeToken(e.ctx, "jti-1", e.now().Add(lease)))
				revoked, err := e.s.TokenRevoked(e.ctx, "jti-1")
				require.NoError(e.t, err)
				require.True(e.t, revoked)
				e.wait(pastLease)
				revoked, err = e.s.TokenRevoked(e.ctx, "jti-1")
				require.NoError(e.t, err)
				require.False(e.t, revoked)
			},
		},
		{
			name: "an unknown token ID is not revoked, nor is one revoked until a past time",
			run: func(e *env) {
				require.NoError(e.t, e.s.RevokeToken(e.ctx, "jti-old", e.now().Add(-time.Second)))
				for _, jti := range []string{"jti-unknown", "jti-old", ""} {
					revoked, err := e.s.TokenRevoked(e.ctx, jti)
					require.NoError(e.t, err)
					require.False(e.t, revoked, jti)
				}
			},
		},
		{
			name: "revoking a token ID again never shortens its revocation",
			run: func(e *env) {
				require.NoError(e.t, e.s.RevokeToken(e.ctx, "jti-1", e.now().Add(lease)))
				require.NoError(e.t, e.s.RevokeToken(e.ctx, "jti-1", e.now().Add(long)))
				require.NoError(e.t, e.s.RevokeToken(e.ctx, "jti-2", e.now().Add(long)))
				require.NoError(e.t, e.s.RevokeToken(e.ctx, "jti-2", e.now().Add(lease)))
				e.wait(pastLease)
				for _, jti := range []string{"jti-1", "jti-2"} {
					revoked, err := e.s.TokenRevoked(e.ctx, jti)
					require.NoError(e.t, err)
					require.True(e.t, revoked, jti)
				}
			},
		},
	}
}

func recordTests() []test {
	return []test{
		{
			name: "a record that was put is read back",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutRecord(e.ctx, "session", hash("s"), []byte(`{"sub":"alice"}`), long))
				got, err := e.s.GetRecord(e.ctx, "session", hash("s"))
				require.NoError(e.t, err)
				require.Equal(e.t, `{"sub":"alice"}`, string(got))
			},
		},
		{
			name: "an unknown record is ErrNotFound",
			run: func(e *env) {
				_, err := e.s.GetRecord(e.ctx, "session", hash("nope"))
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "a record is ErrNotFound once its lease ends",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutRecord(e.ctx, "session", hash("s"), []byte("v"), lease))
				e.wait(pastLease)
				_, err := e.s.GetRecord(e.ctx, "session", hash("s"))
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "putting a record again replaces its value and its lease",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutRecord(e.ctx, "session", hash("s"), []byte("v1"), lease))
				require.NoError(e.t, e.s.PutRecord(e.ctx, "session", hash("s"), []byte("v2"), long))
				e.wait(pastLease)
				got, err := e.s.GetRecord(e.ctx, "session", hash("s"))
				require.NoError(e.t, err)
				require.Equal(e.t, "v2", string(got))
				require.NoError(e.t, e.s.PutRecord(e.ctx, "session", hash("s"), []byte("v3"), lease))
				e.wait(pastLease)
				_, err = e.s.GetRecord(e.ctx, "session", hash("s"))
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "a deleted record is ErrNotFound, and deleting a missing record is not an error",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutRecord(e.ctx, "session", hash("s"), []byte("v"), long))
				require.NoError(e.t, e.s.DeleteRecord(e.ctx, "session", hash("s")))
				_, err := e.s.GetRecord(e.ctx, "session", hash("s"))
				requireIs(e.t, err, store.ErrNotFound)
				require.NoError(e.t, e.s.DeleteRecord(e.ctx, "session", hash("s")))
				require.NoError(e.t, e.s.DeleteRecord(e.ctx, "never-used", hash("s")))
			},
		},
		{
			name: "a taken record is returned once, then ErrNotFound, and an expired one is never taken",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutRecord(e.ctx, "par", hash("r"), []byte("pushed"), long))
				_, err := e.s.TakeRecord(e.ctx, "session", hash("r"))
				requireIs(e.t, err, store.ErrNotFound)
				got, err := e.s.TakeRecord(e.ctx, "par", hash("r"))
				require.NoError(e.t, err)
				require.Equal(e.t, "pushed", string(got))
				_, err = e.s.TakeRecord(e.ctx, "par", hash("r"))
				requireIs(e.t, err, store.ErrNotFound)
				_, err = e.s.GetRecord(e.ctx, "par", hash("r"))
				requireIs(e.t, err, store.ErrNotFound)
				require.NoError(e.t, e.s.PutRecord(e.ctx, "par", hash("x"), []byte("v"), lease))
				e.wait(pastLease)
				_, err = e.s.TakeRecord(e.ctx, "par", hash("x"))
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "of concurrent takes of one record exactly one gets it",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutRecord(e.ctx, "par", hash("c"), []byte("v"), long))
				const n = 8
				var wg sync.WaitGroup
				var got atomic.Int32
				for range n {
					wg.Go(func() {
						if _, err := e.s.TakeRecord(e.ctx, "par", hash("c")); err == nil {
							got.Add(1)
						} else if !errors.Is(err, store.ErrNotFound) {
							e.t.Errorf("TakeRecord: %v", err)
						}
					})
				}
				wg.Wait()
				require.EqualValues(e.t, 1, got.Load())
			},
		},
		{
			name: "kinds are separate namespaces",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutRecord(e.ctx, "session", hash("k"), []byte("session"), long))
				_, err := e.s.GetRecord(e.ctx, "consent", hash("k"))
				requireIs(e.t, err, store.ErrNotFound)
				require.NoError(e.t, e.s.PutRecord(e.ctx, "consent", hash("k"), []byte("consent"), long))
				require.NoError(e.t, e.s.DeleteRecord(e.ctx, "session", hash("k")))
				got, err := e.s.GetRecord(e.ctx, "consent", hash("k"))
				require.NoError(e.t, err)
				require.Equal(e.t, "consent", string(got))
				_, err = e.s.GetRecord(e.ctx, "session", hash("k"))
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "values are copies: changing the bytes put or read changes nothing stored",
			run: func(e *env) {
				in := []byte("value")
				require.NoError(e.t, e.s.PutRecord(e.ctx, "session", hash("s"), in, long))
				in[0] = 'X'
				got, err := e.s.GetRecord(e.ctx, "session", hash("s"))
				require.NoError(e.t, err)
				require.Equal(e.t, "value", string(got))
				got[0] = 'X'
				got, err = e.s.GetRecord(e.ctx, "session", hash("s"))
				require.NoError(e.t, err)
				require.Equal(e.t, "value", string(got))
			},
		},
	}
}

func counterTests() []test {
	incr := func(e *env, key string, window time.Duration, want int64) {
		e.t.Helper()
		n, err := e.s.Incr(e.ctx, hash(key), window)
		require.NoError(e.t, err)
		require.Equal(e.t, want, n, key)
	}
	return []test{
		{
			name: "Incr counts 1, 2, 3, and each key on its own",
			run: func(e *env) {
				incr(e, "alice", long, 1)
				incr(e, "alice", long, 2)
				incr(e, "bob", long, 1)
				incr(e, "alice", long, 3)
			},
		},
		{
			name: "a counter starts over after its window",
			run: func(e *env) {
				incr(e, "alice", lease, 1)
				incr(e, "alice", lease, 2)
				e.wait(pastLease)
				incr(e, "alice", lease, 1)
			},
		},
		{
			name: "the window runs from the first increment, not the last",
			run: func(e *env) {
				window := 400 * time.Millisecond
				incr(e, "alice", window, 1)
				e.wait(100 * time.Millisecond)
				incr(e, "alice", window, 2)
				e.wait(window - 50*time.Millisecond) // past the first's window, not the second's
				incr(e, "alice", window, 1)
			},
		},
		{
			name: "Reset starts the counter over, and resetting a missing counter is not an error",
			run: func(e *env) {
				incr(e, "alice", long, 1)
				incr(e, "alice", long, 2)
				require.NoError(e.t, e.s.Reset(e.ctx, hash("alice")))
				incr(e, "alice", long, 1)
				require.NoError(e.t, e.s.Reset(e.ctx, hash("nobody")))
			},
		},
	}
}

func throttleTests() []test {
	// block is the first back-off of blocking keys. Their blocks are checked against the time
	// that passed since the failure, so a stall only loosens the check, and it can stay short.
	const block = 250 * time.Millisecond
	// blocking counts failures of one key, blocks from the second, the block doubled per
	// failure up to four blocks.
	blocking := func(name string) store.ThrottleKey {
		return store.ThrottleKey{Key: hash(name), Limit: 2, Window: long, Backoff: block, MaxBackoff: 4 * block, ResetOnSuccess: true}
	}
	// counting never blocks; its count is reported.
	counting := func(name string, window time.Duration) store.ThrottleKey {
		return store.ThrottleKey{Key: hash(name), Window: window}
	}
	try := func(e *env, o store.Outcome, keys ...store.ThrottleKey) store.ThrottleResult {
		e.t.Helper()
		res, err := e.s.Throttle(e.ctx, keys, o)
		require.NoError(e.t, err)
		require.Len(e.t, res.Failures, len(keys))
		return res
	}
	// blockedFor checks that key is blocked for d, less what passed since the failure that
	// blocked it (a millisecond more for the rounding of a backend that counts in them).
	blockedFor := func(e *env, key store.ThrottleKey, d time.Duration, since time.Time) {
		e.t.Helper()
		res := try(e, store.Check, key)
		passed := e.now().Sub(since)
		require.LessOrEqual(e.t, res.RetryAfter, d)
		require.GreaterOrEqual(e.t, res.RetryAfter, d-passed-time.Millisecond, "%v passed since the failure", passed)
	}
	return []test{
		{
			name: "failures below the limit are free; from the limit on each blocks, the block doubling up to the maximum",
			run: func(e *env) {
				k := blocking("a")
				require.Zero(e.t, try(e, store.Failure, k).RetryAfter)
				since := e.now()
				res := try(e, store.Failure, k)
				require.Zero(e.t, res.RetryAfter, "the failure that reaches the limit is answered")
				require.Equal(e.t, []int64{2}, res.Failures)
				blockedFor(e, k, block, since)
				e.wait(block + 100*time.Millisecond)
				require.Zero(e.t, try(e, store.Check, k).RetryAfter, "the block ended")
				since = e.now()
				require.Equal(e.t, []int64{3}, try(e, store.Failure, k).Failures)
				blockedFor(e, k, 2*block, since)
				e.wait(2*block + 100*time.Millisecond)
				since = e.now()
				try(e, store.Failure, k)
				blockedFor(e, k, 4*block, since)
				e.wait(4*block + 100*time.Millisecond)
				since = e.now()
				try(e, store.Failure, k)
				blockedFor(e, k, 4*block, since) // at the maximum, not 8 blocks
			},
		},
		{
			name: "while a key is blocked every outcome is refused and nothing is recorded on any key",
			run: func(e *env) {
				k, other := blocking("a"), counting("other", long)
				k.Backoff, k.MaxBackoff = long, long
				try(e, store.Failure, k)
				try(e, store.Failure, k)
				for _, o := range []store.Outcome{store.Failure, store.Success, store.Check} {
					res := try(e, o, k, other)
					require.Positive(e.t, res.RetryAfter, "outcome %d", o)
					require.Equal(e.t, []int64{2, 0}, res.Failures, "outcome %d", o)
				}
				require.Equal(e.t, []int64{0}, try(e, store.Check, other).Failures)
			},
		},
		{
			name: "while several keys are blocked RetryAfter is the longest remaining block",
			run: func(e *env) {
				short := store.ThrottleKey{Key: hash("short"), Limit: 1, Window: long, Backoff: time.Minute, MaxBackoff: time.Minute}
				longer := store.ThrottleKey{Key: hash("longer"), Limit: 1, Window: long, Backoff: 3 * time.Minute, MaxBackoff: 3 * time.Minute}
				since := e.now()
				try(e, store.Failure, longer)
				try(e, store.Failure, short)
				for _, keys := range [][]store.ThrottleKey{{short, longer}, {longer, short}, {counting("c", long), short, longer}} {
					res := try(e, store.Check, keys...)
					require.LessOrEqual(e.t, res.RetryAfter, 3*time.Minute)
					require.GreaterOrEqual(e.t, res.RetryAfter, 3*time.Minute-e.now().Sub(since)-time.Millisecond)
				}
			},
		},
		{
			name: "a key with limit zero never blocks and reports its count",
			run: func(e *env) {
				k := counting("c", long)
				for i := int64(1); i <= 5; i++ {
					res := try(e, store.Failure, k)
					require.Zero(e.t, res.RetryAfter)
					require.Equal(e.t, []int64{i}, res.Failures)
				}
			},
		},
		{
			name: "a key with a limit but no back-off never blocks and reports its count",
			run: func(e *env) {
				k := store.ThrottleKey{Key: hash("c"), Limit: 1, Window: long, MaxBackoff: long}
				for i := int64(1); i <= 5; i++ {
					res := try(e, store.Failure, k)
					require.Zero(e.t, res.RetryAfter)
					require.Equal(e.t, []int64{i}, res.Failures)
				}
				require.Zero(e.t, try(e, store.Check, k).RetryAfter)
			},
		},
		{
			name: "a success drops only the keys marked ResetOnSuccess",
			run: func(e *env) {
				k, other := blocking("a"), counting("c", long)
				try(e, store.Failure, k, other)
				res := try(e, store.Success, k, other)
				require.Equal(e.t, []int64{0, 1}, res.Failures)
				require.Equal(e.t, []int64{0, 1}, try(e, store.Check, k, other).Failures)
			},
		},
		{
			name: "a count is forgotten when a window passes without a failure, and each failure restarts the window",
			run: func(e *env) {
				// Failures 0.9 s apart in a window of 1.7 s: two waits pass the first failure's
				// window, and a stall of up to 0.8 s changes nothing.
				const window, apart = 1700 * time.Millisecond, 900 * time.Millisecond
				k, once := counting("c", window), counting("once", window)
				require.Equal(e.t, []int64{1, 1}, try(e, store.Failure, k, once).Failures)
				e.wait(apart)
				require.Equal(e.t, []int64{2}, try(e, store.Failure, k).Failures)
				e.wait(apart) // past the first failure's window, not the second's
				require.Equal(e.t, []int64{3}, try(e, store.Failure, k).Failures)
				require.Equal(e.t, []int64{3, 0}, try(e, store.Check, k, once).Failures, "a key without a failure for a window is forgotten")
			},
		},
		{
			name: "a block outlives the window, and a failure past the window keeps the back-off",
			run: func(e *env) {
				// The first failure blocks for 1.8 s, and its count lives 0.9 s more. Each step
				// lands 0.8 s before the edge it must not cross, so a stall up to that changes
				// nothing.
				const window, backoff = 900 * time.Millisecond, 1800 * time.Millisecond
				k := store.ThrottleKey{Key: hash("persistent"), Limit: 1, Window: window, Backoff: backoff, MaxBackoff: 4 * backoff}
				require.Zero(e.t, try(e, store.Failure, k).RetryAfter)
				failed := e.now()
				e.wait(window + 100*time.Millisecond) // past a window, inside the block
				res := try(e, store.Check, k)
				require.Positive(e.t, res.RetryAfter, "still blocked")
				require.Equal(e.t, []int64{1}, res.Failures)
				// Past the block, inside the window that follows it (whatever the check took).
				e.wait(max(backoff+100*time.Millisecond-e.now().Sub(failed), 0))
				since := e.now()
				res = try(e, store.Failure, k)
				require.Zero(e.t, res.RetryAfter, "a failure after the block is checked")
				require.Equal(e.t, []int64{2}, res.Failures, "and counted on top of the first")
				blockedFor(e, k, 2*backoff, since) // the back-off doubled
			},
		},
		{
			name: "keys are independent, and concurrent failures are all counted",
			run: func(e *env) {
				k := counting("race", long)
				for _, err := range race(racers, func(int) error {
					_, err := e.s.Throttle(e.ctx, []store.ThrottleKey{k}, store.Failure)
					return err
				}) {
					require.NoError(e.t, err)
				}
				require.Equal(e.t, []int64{racers, 0}, try(e, store.Check, k, counting("other", long)).Failures)
			},
		},
	}
}

func rateTests() []test {
	// slow refills one request every 10 s: none comes back during a test.
	const slow, slowEvery = 6, 10 * time.Second
	// fast refills one request a lease.
	fast := int(time.Minute / lease)
	take := func(e *env, key string, perMinute, burst int) time.Duration {
		e.t.Helper()
		wait, err := e.s.TakeRate(e.ctx, hash(key), perMinute, burst)
		require.NoError(e.t, err)
		return wait
	}
	return []test{
		{
			name: "a bucket allows burst requests at once, then refuses with the wait for one, and a refused request takes nothing",
			run: func(e *env) {
				start := e.now()
				for i := range 3 {
					require.Zero(e.t, take(e, "b", slow, 3), "request %d", i)
				}
				wait := take(e, "b", slow, 3)
				require.Positive(e.t, wait)
				require.LessOrEqual(e.t, wait, slowEvery)
				require.GreaterOrEqual(e.t, wait, slowEvery-e.now().Sub(start)-time.Millisecond, "one comes back 10 s after the first")
				again := take(e, "b", slow, 3)
				require.Positive(e.t, again)
				require.LessOrEqual(e.t, again, wait, "a refused request takes nothing")
			},
		},
		{
			name: "a refused request is allowed once the wait it was given has passed",
			run: func(e *env) {
				require.Zero(e.t, take(e, "b", fast, 1))
				wait := take(e, "b", fast, 1)
				for i := 0; wait == 0 && i < 10; i++ { // a stall of a lease lets one come back first
					wait = take(e, "b", fast, 1)
				}
				require.Positive(e.t, wait)
				require.LessOrEqual(e.t, wait, lease)
				e.wait(wait + time.Millisecond) // and the rounding of the backend's clock
				require.Zero(e.t, take(e, "b", fast, 1), "one request came back")
			},
		},
		{
			name: "buckets of different keys are independent",
			run: func(e *env) {
				require.Zero(e.t, take(e, "x", slow, 1))
				require.Positive(e.t, take(e, "x", slow, 1))
				require.Zero(e.t, take(e, "y", slow, 1))
			},
		},
		{
			name: "of concurrent requests exactly burst are allowed",
			run: func(e *env) {
				allowed := 0
				var mu sync.Mutex
				for _, err := range race(racers, func(int) error {
					wait, err := e.s.TakeRate(e.ctx, hash("race"), 1, 5)
					if err == nil && wait == 0 {
						mu.Lock()
						allowed++
						mu.Unlock()
					}
					return err
				}) {
					require.NoError(e.t, err)
				}
				require.Equal(e.t, 5, allowed)
			},
		},
	}
}

// promptly is how long a call with a cancelled context may take.
// takeAllUses takes every noted credential use, in batches of limit, and checks that none
// comes twice.
func takeAllUses(e *env, limit int) map[store.CredentialUse]bool {
	e.t.Helper()
	got := map[store.CredentialUse]bool{}
	for range 1000 {
		batch, err := e.s.TakeCredentialUses(e.ctx, limit)
		require.NoError(e.t, err)
		require.LessOrEqual(e.t, len(batch), limit)
		if len(batch) == 0 {
			return got
		}
		for _, u := range batch {
			u.At = u.At.Truncate(time.Millisecond)
			require.False(e.t, got[u], "%+v taken twice", u)
			got[u] = true
		}
	}
	require.FailNow(e.t, "the credential uses never ran out")
	return nil
}

func credentialUseTests() []test {
	use := func(id string, previous bool, at time.Time) store.CredentialUse {
		return store.CredentialUse{ClientID: id, Previous: previous, At: at}
	}
	return []test{
		{
			name: "a noted use is taken once, with its client, credential and time",
			run: func(e *env) {
				at := e.now().Add(-time.Second)
				require.NoError(e.t, e.s.NoteCredentialUses(e.ctx, []store.CredentialUse{use("client-a", false, at)}))
				got, err := e.s.TakeCredentialUses(e.ctx, 10)
				require.NoError(e.t, err)
				require.Len(e.t, got, 1)
				require.Equal(e.t, "client-a", got[0].ClientID)
				require.False(e.t, got[0].Previous)
				requireTime(e.t, at, got[0].At, "At")
				got, err = e.s.TakeCredentialUses(e.ctx, 10)
				require.NoError(e.t, err)
				require.Empty(e.t, got, "taken uses are gone")
			},
		},
		{
			name: "noting keeps the latest time of each client and credential, whatever the order",
			run: func(e *env) {
				t0 := e.now().Add(-time.Hour)
				require.NoError(e.t, e.s.NoteCredentialUses(e.ctx, []store.CredentialUse{
					use("client-a", false, t0.Add(2*time.Minute)), use("client-a", true, t0),
				}))
				require.NoError(e.t, e.s.NoteCredentialUses(e.ctx, []store.CredentialUse{
					use("client-a", false, t0.Add(time.Minute)), use("client-a", true, t0.Add(3*time.Minute)),
					use("client:b", false, t0), use("client:b", false, t0.Add(5*time.Second)),
				}))
				got := takeAllUses(e, 10)
				require.Len(e.t, got, 3)
				require.True(e.t, got[use("client-a", false, t0.Add(2*time.Minute).UTC().Truncate(time.Millisecond))], "%v", got)
				require.True(e.t, got[use("client-a", true, t0.Add(3*time.Minute).UTC().Truncate(time.Millisecond))], "%v", got)
				require.True(e.t, got[use("client:b", false, t0.Add(5*time.Second).UTC().Truncate(time.Millisecond))], "%v", got)
			},
		},
		{
			name: "a take returns at most its limit and leaves the rest for the next",
			run: func(e *env) {
				at := e.now().Truncate(time.Second)
				var uses []store.CredentialUse
				for i := range 7 {
					uses = append(uses, use(fmt.Sprintf("client-%d", i), i%2 == 1, at))
				}
				require.NoError(e.t, e.s.NoteCredentialUses(e.ctx, uses))
				first, err := e.s.TakeCredentialUses(e.ctx, 3)
				require.NoError(e.t, err)
				require.Len(e.t, first, 3)
				rest := takeAllUses(e, 100)
				require.Len(e.t, rest, 4)
				for _, u := range first {
					u.At = u.At.Truncate(time.Millisecond)
					require.False(e.t, rest[u], "%+v taken twice", u)
					rest[u] = true
				}
				for _, u := range uses {
					require.True(e.t, rest[use(u.ClientID, u.Previous, u.At.UTC())], "%+v taken", u)
				}
			},
		},
		{
			name: "nothing to take, or a limit of zero, is an empty answer",
			run: func(e *env) {
				got, err := e.s.TakeCredentialUses(e.ctx, 10)
				require.NoError(e.t, err)
				require.Empty(e.t, got)
				require.NoError(e.t, e.s.NoteCredentialUses(e.ctx, nil))
				require.NoError(e.t, e.s.NoteCredentialUses(e.ctx, []store.CredentialUse{use("client-a", false, e.now())}))
				got, err = e.s.TakeCredentialUses(e.ctx, 0)
				require.NoError(e.t, err)
				require.Empty(e.t, got)
				require.Len(e.t, takeAllUses(e, 10), 1, "a take of zero takes nothing")
			},
		},
		{
			name: "concurrent takes hand out every use exactly once",
			run: func(e *env) {
				at := e.now().Truncate(time.Second)
				const n = 200
				uses := make([]store.CredentialUse, 0, n)
				for i := range n {
					uses = append(uses, use(fmt.Sprintf("client-%d", i), false, at))
				}
				require.NoError(e.t, e.s.NoteCredentialUses(e.ctx, uses))
				var mu sync.Mutex
				seen := map[string]int{}
				errs := race(racers, func(int) error {
					for {
						batch, err := e.s.TakeCredentialUses(e.ctx, 3)
						if err != nil || len(batch) == 0 {
							return err
						}
						mu.Lock()
						for _, u := range batch {
							seen[u.ClientID]++
						}
						mu.Unlock()
					}
				})
				for _, err := range errs {
					require.NoError(e.t, err)
				}
				require.Len(e.t, seen, n)
				for id, count := range seen {
					require.Equal(e.t, 1, count, id)
				}
			},
		},
	}
}

const promptly = 5 * time.Second

// cancelled runs f with a cancelled context and checks it returns promptly with nil or the
// context's error; it reports whether f failed.
func cancelled(t *testing.T, name string, f func(ctx context.Context) error) bool {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			require.ErrorIs(t, err, context.Canceled, name)
			return true
		}
		return false
	case <-time.After(promptly):
		require.FailNow(t, "a call with a cancelled context did not return", name)
		return false
	}
}

func contextTests() []test {
	return []test{
		{
			name: "every call with a cancelled context returns promptly, succeeding or with the context's error",
			run: func(e *env) {
				family := newFamily(e.t)
				calls := map[string]func(ctx context.Context) error{
					"PutCode": func(ctx context.Context) error {
						return e.s.PutCode(ctx, hash("c"), e.code(family), long)
					},
					"TakeCode": func(ctx context.Context) error {
						_, err := e.s.TakeCode(ctx, hash("c"), "client-a")
						return ignore(err, store.ErrNotFound, store.ErrAlreadyUsed)
					},
					"CreateRefresh": func(ctx context.Context) error {
						return ignore(e.s.CreateRefresh(ctx, hash("a"), e.refresh(family, long)), store.ErrConflict)
					},
					"GetRefresh": func(ctx context.Context) error {
						_, err := e.s.GetRefresh(ctx, hash("a"))
						return ignore(err, store.ErrNotFound, store.ErrReused)
					},
					"RotateRefresh": func(ctx context.Context) error {
						_, err := e.s.RotateRefresh(ctx, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
						return ignore(err, store.ErrNotFound, store.ErrConflict)
					},
					"ReportRefreshReuse": func(ctx context.Context) error {
						return e.s.ReportRefreshReuse(ctx, hash("a"), time.Minute)
					},
					"FamilyRevoked": func(ctx context.Context) error {
						_, err := e.s.FamilyRevoked(ctx, family)
						return err
					},
					"RevokeToken": func(ctx context.Context) error { return e.s.RevokeToken(ctx, "jti", e.now().Add(long)) },
					"TokenRevoked": func(ctx context.Context) error {
						_, err := e.s.TokenRevoked(ctx, "jti")
						return err
					},
					"PutRecord": func(ctx context.Context) error {
						return e.s.PutRecord(ctx, "session", hash("s"), []byte("v"), long)
					},
					"GetRecord": func(ctx context.Context) error {
						_, err := e.s.GetRecord(ctx, "session", hash("s"))
						return ignore(err, store.ErrNotFound)
					},
					"DeleteRecord": func(ctx context.Context) error { return e.s.DeleteRecord(ctx, "session", hash("s")) },
					"TakeRecord": func(ctx context.Context) error {
						_, err := e.s.TakeRecord(ctx, "session", hash("s"))
						return ignore(err, store.ErrNotFound)
					},
					"Incr": func(ctx context.Context) error {
						_, err := e.s.Incr(ctx, hash("n"), long)
						return err
					},
					"Reset": func(ctx context.Context) error { return e.s.Reset(ctx, hash("n")) },
					"Throttle": func(ctx context.Context) error {
						_, err := e.s.Throttle(ctx, []store.ThrottleKey{{Key: hash("t"), Window: long}}, store.Failure)
						return err
					},
					"TakeRate": func(ctx context.Context) error {
						_, err := e.s.TakeRate(ctx, hash("r"), 60, 1)
						return err
					},
					"RedeemCode": func(ctx context.Context) error {
						_, err := e.s.RedeemCode(ctx, hash("c"), "client-a", hash("r"), e.refresh(family, long))
						return ignore(err, store.ErrNotFound, store.ErrAlreadyUsed)
					},
					"TakeCodeAdmitted": func(ctx context.Context) error {
						_, _, err := e.s.TakeCodeAdmitted(ctx, store.Admission{Keys: []store.ThrottleKey{{Key: hash("t"), Window: long}}}, hash("c"), "client-a")
						return ignore(err, store.ErrNotFound, store.ErrAlreadyUsed)
					},
					"RedeemCodeAdmitted": func(ctx context.Context) error {
						_, _, err := e.s.RedeemCodeAdmitted(ctx, store.Admission{Keys: []store.ThrottleKey{{Key: hash("t"), Window: long}}},
							hash("c"), "client-a", hash("r2"), e.refresh(family, long))
						return ignore(err, store.ErrNotFound, store.ErrAlreadyUsed)
					},
					"RotateRefreshAdmitted": func(ctx context.Context) error {
						_, _, err := e.s.RotateRefreshAdmitted(ctx, store.Admission{Keys: []store.ThrottleKey{{Key: hash("t"), Window: long}}},
							hash("a"), hash("b2"), e.refresh(family, long), nil, time.Minute)
						return ignore(err, store.ErrNotFound, store.ErrConflict, store.ErrReused)
					},
					"PutDeviceGrant": func(ctx context.Context) error {
						return ignore(e.s.PutDeviceGrant(ctx, hash("d"), e.deviceGrant("d", long)), store.ErrConflict)
					},
					"DeviceGrantByUserCode": func(ctx context.Context) error {
						_, _, err := e.s.DeviceGrantByUserCode(ctx, hash("user-d"))
						return ignore(err, store.ErrNotFound)
					},
					"DecideDeviceGrant": func(ctx context.Context) error {
						_, err := e.s.DecideDeviceGrant(ctx, hash("user-d"), true, "sub-alice", e.now())
						return ignore(err, store.ErrNotFound)
					},
					"PollDeviceGrant": func(ctx context.Context) error {
						_, err := e.s.PollDeviceGrant(ctx, hash("d"), "client-a", time.Second)
						return ignore(err, store.ErrNotFound, store.ErrAlreadyUsed)
					},
					"ThrottleRate": func(ctx context.Context) error {
						_, err := e.s.ThrottleRate(ctx, []store.ThrottleKey{{Key: hash("t"), Window: long}}, store.Success,
							store.RateTake{Key: hash("r"), PerMinute: 60, Burst: 1})
						return err
					},
					"NoteCredentialUses": func(ctx context.Context) error {
						return e.s.NoteCredentialUses(ctx, []store.CredentialUse{{ClientID: "client-a", At: e.now()}})
					},
					"TakeCredentialUses": func(ctx context.Context) error {
						_, err := e.s.TakeCredentialUses(ctx, 10)
						return err
					},
					"EnqueueLogoutDeliveries": func(ctx context.Context) error {
						return e.s.EnqueueLogoutDeliveries(ctx, []store.LogoutDelivery{delivery("ctx")}, long)
					},
					"ClaimLogoutDeliveries": func(ctx context.Context) error {
						_, err := e.s.ClaimLogoutDeliveries(ctx, 10, long)
						return err
					},
					"RetryLogoutDelivery": func(ctx context.Context) error {
						return ignore(e.s.RetryLogoutDelivery(ctx, "ctx", "claim", 1, 0), store.ErrNotFound, store.ErrConflict)
					},
					"FinishLogoutDelivery": func(ctx context.Context) error {
						return ignore(e.s.FinishLogoutDelivery(ctx, "ctx", "claim"), store.ErrNotFound, store.ErrConflict)
					},
					"Ping": func(ctx context.Context) error { return e.s.Ping(ctx) },
					// Last, so the family's token was used before.
					"RevokeFamily": func(ctx context.Context) error { return e.s.RevokeFamily(ctx, family, e.now().Add(long)) },
				}
				order := []string{"PutCode", "TakeCode", "CreateRefresh", "GetRefresh", "RotateRefresh", "ReportRefreshReuse", "FamilyRevoked",
					"RevokeToken", "TokenRevoked", "PutRecord", "GetRecord", "DeleteRecord", "TakeRecord", "Incr", "Reset", "Throttle", "TakeRate", "RedeemCode", "ThrottleRate", "TakeCodeAdmitted", "RedeemCodeAdmitted", "RotateRefreshAdmitted", "NoteCredentialUses", "TakeCredentialUses",
					"EnqueueLogoutDeliveries", "ClaimLogoutDeliveries", "RetryLogoutDelivery", "FinishLogoutDelivery",
					"PutDeviceGrant", "DeviceGrantByUserCode", "DecideDeviceGrant", "PollDeviceGrant", "Ping", "RevokeFamily"}
				require.Len(e.t, order, len(calls))
				for _, name := range order {
					cancelled(e.t, name, calls[name])
				}
			},
		},
		{
			name: "a take that fails for its cancelled context does not use the code",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(newFamily(e.t)), long))
				failed := cancelled(e.t, "TakeCode", func(ctx context.Context) error {
					_, err := e.s.TakeCode(ctx, hash("c"), "client-a")
					return err
				})
				_, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				if failed {
					require.NoError(e.t, err)
				} else {
					requireIs(e.t, err, store.ErrAlreadyUsed)
				}
			},
		},
		{
			name: "a rotation that fails for its cancelled context rotates nothing",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				failed := cancelled(e.t, "RotateRefresh", func(ctx context.Context) error {
					_, err := e.s.RotateRefresh(ctx, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
					return err
				})
				_, errA := e.s.GetRefresh(e.ctx, hash("a"))
				_, errB := e.s.GetRefresh(e.ctx, hash("b"))
				if failed {
					require.NoError(e.t, errA)
					requireIs(e.t, errB, store.ErrNotFound)
				} else {
					requireIs(e.t, errA, store.ErrReused)
					require.NoError(e.t, errB)
				}
			},
		},
		{
			name: "a redemption that fails for its cancelled context neither uses the code nor stores the token",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(family), long))
				failed := cancelled(e.t, "RedeemCode", func(ctx context.Context) error {
					_, err := e.s.RedeemCode(ctx, hash("c"), "client-a", hash("r"), e.refresh(family, long))
					return err
				})
				_, errCode := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				_, errToken := e.s.GetRefresh(e.ctx, hash("r"))
				if failed {
					require.NoError(e.t, errCode)
					requireIs(e.t, errToken, store.ErrNotFound)
				} else {
					requireIs(e.t, errCode, store.ErrAlreadyUsed)
					require.NoError(e.t, errToken)
				}
			},
		},
		{
			name: "a put that fails for its cancelled context stores nothing",
			run: func(e *env) {
				failed := cancelled(e.t, "PutCode", func(ctx context.Context) error {
					return e.s.PutCode(ctx, hash("c"), e.code(newFamily(e.t)), long)
				})
				_, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				if failed {
					requireIs(e.t, err, store.ErrNotFound)
				} else {
					require.NoError(e.t, err)
				}
			},
		},
	}
}

// ignore turns the store errors a call may expect into nil, leaving a context's error.
func ignore(err error, expected ...error) error {
	for _, x := range expected {
		if errors.Is(err, x) {
			return nil
		}
	}
	return err
}
