package storetest

import (
	"errors"
	"sync"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/store"
)

func redeemTests() []test {
	return []test{
		{
			name: "a redemption takes the code and stores the refresh token of its grant",
			run: func(e *env) {
				family := newFamily(e.t)
				want := e.code(family)
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), want, long))
				rt := e.refresh(family, long)
				got, err := e.s.RedeemCode(e.ctx, hash("c"), "client-a", hash("r"), rt)
				require.NoError(e.t, err)
				requireCode(e.t, want, got)
				_, err = e.s.TakeCode(e.ctx, hash("c"), "client-a")
				requireIs(e.t, err, store.ErrAlreadyUsed)
				stored, err := e.s.GetRefresh(e.ctx, hash("r"))
				require.NoError(e.t, err)
				requireRefresh(e.t, rt, stored)
			},
		},
		{
			name: "a redemption of a used code is ErrAlreadyUsed with its record and stores no token",
			run: func(e *env) {
				family := newFamily(e.t)
				want := e.code(family)
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), want, long))
				_, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				require.NoError(e.t, err)
				got, err := e.s.RedeemCode(e.ctx, hash("c"), "client-a", hash("r"), e.refresh(family, long))
				requireIs(e.t, err, store.ErrAlreadyUsed)
				requireCode(e.t, want, got)
				_, err = e.s.GetRefresh(e.ctx, hash("r"))
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "a redemption by another client, or of an unknown code, is ErrNotFound and changes nothing",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(family), long))
				for _, c := range []struct{ code, client string }{{"c", "client-b"}, {"c", ""}, {"unknown", "client-a"}} {
					_, err := e.s.RedeemCode(e.ctx, hash(c.code), c.client, hash("r"), e.refresh(family, long))
					requireIs(e.t, err, store.ErrNotFound)
				}
				_, err := e.s.GetRefresh(e.ctx, hash("r"))
				requireIs(e.t, err, store.ErrNotFound)
				_, err = e.s.TakeCode(e.ctx, hash("c"), "client-a")
				require.NoError(e.t, err, "the code was not used")
			},
		},
		{
			name: "a redemption whose token hash holds a live token is ErrConflict and leaves the code unused",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(family), long))
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("r"), e.refresh(newFamily(e.t), long)))
				_, err := e.s.RedeemCode(e.ctx, hash("c"), "client-a", hash("r"), e.refresh(family, long))
				requireIs(e.t, err, store.ErrConflict)
				_, err = e.s.TakeCode(e.ctx, hash("c"), "client-a")
				require.NoError(e.t, err, "the code was not used")
			},
		},
		{
			name: "of concurrent redemptions of one code exactly one wins, and only its token is stored",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(family), long))
				tokenOf := func(i int) store.Hash { return hash("r" + string(rune('A'+i))) }
				errs := race(racers, func(i int) error {
					_, err := e.s.RedeemCode(e.ctx, hash("c"), "client-a", tokenOf(i), e.refresh(family, long))
					return err
				})
				winner := -1
				for i, err := range errs {
					if err == nil {
						require.Equal(e.t, -1, winner, "two redemptions won")
						winner = i
						continue
					}
					requireIs(e.t, err, store.ErrAlreadyUsed)
				}
				require.NotEqual(e.t, -1, winner, "no redemption won")
				for i := range racers {
					_, err := e.s.GetRefresh(e.ctx, tokenOf(i))
					if i == winner {
						require.NoError(e.t, err)
					} else {
						requireIs(e.t, err, store.ErrNotFound)
					}
				}
			},
		},
		{
			name: "the token of a redemption is in its family: revoking the family revokes it, and it rotates",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(family), long))
				_, err := e.s.RedeemCode(e.ctx, hash("c"), "client-a", hash("r"), e.refresh(family, long))
				require.NoError(e.t, err)
				_, err = e.s.RotateRefresh(e.ctx, hash("r"), hash("r2"), e.refresh(family, long), nil, time.Minute)
				require.NoError(e.t, err)
				require.NoError(e.t, e.s.RevokeFamily(e.ctx, family, e.now().Add(long)))
				_, err = e.s.GetRefresh(e.ctx, hash("r2"))
				requireIs(e.t, err, store.ErrRevoked)
			},
		},
	}
}

func knownTests() []test {
	return []test{
		{
			name: "a code and a refresh token this store stored are known exactly as stored, other hashes are not",
			run: func(e *env) {
				family := newFamily(e.t)
				code := e.code(family)
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), code, long))
				rt := e.refresh(family, long)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("r"), rt))
				got, ok := e.s.KnownCode(hash("c"))
				require.True(e.t, ok)
				requireCode(e.t, code, got)
				gotRT, ok := e.s.KnownRefresh(hash("r"))
				require.True(e.t, ok)
				requireRefresh(e.t, rt, gotRT)
				_, ok = e.s.KnownCode(hash("r"))
				require.False(e.t, ok, "a refresh token is no code")
				_, ok = e.s.KnownRefresh(hash("c"))
				require.False(e.t, ok, "a code is no refresh token")
				_, ok = e.s.KnownCode(hash("unknown"))
				require.False(e.t, ok)
				_, ok = e.s.KnownRefresh(hash("unknown"))
				require.False(e.t, ok)
			},
		},
		{
			name: "a known record is a copy: changing it changes nothing stored",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("r"), e.refresh(family, long)))
				got, ok := e.s.KnownRefresh(hash("r"))
				require.True(e.t, ok)
				got.Scopes[0] = "changed"
				again, ok := e.s.KnownRefresh(hash("r"))
				require.True(e.t, ok)
				require.Equal(e.t, e.refresh(family, long).Scopes, again.Scopes)
			},
		},
		{
			name: "the tokens a rotation and a redemption store are known, in their family",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				next := e.refresh("another family", long)
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), next, nil, time.Minute)
				require.NoError(e.t, err)
				got, ok := e.s.KnownRefresh(hash("b"))
				require.True(e.t, ok)
				next.FamilyID = family // stored in a's family
				requireRefresh(e.t, next, got)

				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(family), long))
				rt := e.refresh(family, long)
				_, err = e.s.RedeemCode(e.ctx, hash("c"), "client-a", hash("r"), rt)
				require.NoError(e.t, err)
				got, ok = e.s.KnownRefresh(hash("r"))
				require.True(e.t, ok)
				requireRefresh(e.t, rt, got)
			},
		},
		{
			name: "a record whose lease ended is not known",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(family), lease))
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("r"), e.refresh(family, lease)))
				e.wait(pastLease)
				_, ok := e.s.KnownCode(hash("c"))
				require.False(e.t, ok)
				_, ok = e.s.KnownRefresh(hash("r"))
				require.False(e.t, ok)
			},
		},
	}
}

func throttleRateTests() []test {
	// slow refills one request every 10 s: none comes back during a test.
	const slow = 6
	blocking := store.ThrottleKey{Key: hash("t"), Limit: 2, Window: long, Backoff: long, MaxBackoff: long, ResetOnSuccess: true}
	bucket := func(burst int) store.RateTake { return store.RateTake{Key: hash("b"), PerMinute: slow, Burst: burst} }
	return []test{
		{
			name: "a success takes from the bucket, which TakeRate shares, and is refused by it once it is empty",
			run: func(e *env) {
				for i := range 2 {
					res, err := e.s.ThrottleRate(e.ctx, []store.ThrottleKey{blocking}, store.Success, bucket(2))
					require.NoError(e.t, err)
					require.Zero(e.t, res.RetryAfter)
					require.Zero(e.t, res.RateWait, "request %d", i)
					require.Equal(e.t, []int64{0}, res.Failures)
				}
				res, err := e.s.ThrottleRate(e.ctx, []store.ThrottleKey{blocking}, store.Success, bucket(2))
				require.NoError(e.t, err)
				require.Zero(e.t, res.RetryAfter)
				require.Positive(e.t, res.RateWait)
				wait, err := e.s.TakeRate(e.ctx, hash("b"), slow, 2)
				require.NoError(e.t, err)
				require.Positive(e.t, wait, "the same bucket")
			},
		},
		{
			name: "a check, a failure and a refused attempt take nothing from the bucket, and are throttled as by Throttle",
			run: func(e *env) {
				for _, o := range []store.Outcome{store.Check, store.Failure, store.Failure, store.Success} {
					res, err := e.s.ThrottleRate(e.ctx, []store.ThrottleKey{blocking}, o, bucket(1))
					require.NoError(e.t, err)
					require.Zero(e.t, res.RateWait)
					if o == store.Success {
						require.Positive(e.t, res.RetryAfter, "blocked since the second failure")
					}
				}
				res, err := e.s.Throttle(e.ctx, []store.ThrottleKey{blocking}, store.Check)
				require.NoError(e.t, err)
				require.Positive(e.t, res.RetryAfter)
				require.Equal(e.t, []int64{2}, res.Failures, "the refused success reset nothing")
				wait, err := e.s.TakeRate(e.ctx, hash("b"), slow, 1)
				require.NoError(e.t, err)
				require.Zero(e.t, wait, "the bucket is still full")
			},
		},
		{
			name: "a success resets the keys marked so, as Throttle does",
			run: func(e *env) {
				_, err := e.s.Throttle(e.ctx, []store.ThrottleKey{blocking}, store.Failure)
				require.NoError(e.t, err)
				res, err := e.s.ThrottleRate(e.ctx, []store.ThrottleKey{blocking, {Key: hash("n"), Window: long}}, store.Success, bucket(1))
				require.NoError(e.t, err)
				require.Equal(e.t, []int64{0, 0}, res.Failures)
				res, err = e.s.Throttle(e.ctx, []store.ThrottleKey{blocking}, store.Check)
				require.NoError(e.t, err)
				require.Equal(e.t, []int64{0}, res.Failures)
			},
		},
		{
			name: "of concurrent successes exactly burst are allowed",
			run: func(e *env) {
				allowed := 0
				var mu sync.Mutex
				for _, err := range race(racers, func(int) error {
					res, err := e.s.ThrottleRate(e.ctx, []store.ThrottleKey{blocking}, store.Success, store.RateTake{Key: hash("b"), PerMinute: 1, Burst: 5})
					if err == nil && res.RateWait == 0 {
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

func admissionTests() []test {
	// slow refills one request every 10 s: none comes back during a test.
	const slow = 6
	blocking := store.ThrottleKey{Key: hash("t"), Limit: 1, Window: long, Backoff: long, MaxBackoff: long, ResetOnSuccess: true}
	counting := store.ThrottleKey{Key: hash("n"), Window: long}
	admission := func(burst int) store.Admission {
		return store.Admission{Keys: []store.ThrottleKey{blocking, counting}, Rate: &store.RateTake{Key: hash("b"), PerMinute: slow, Burst: burst}}
	}
	block := func(e *env) {
		e.t.Helper()
		_, err := e.s.Throttle(e.ctx, []store.ThrottleKey{blocking}, store.Failure)
		require.NoError(e.t, err)
	}
	type op struct {
		name string
		// prepare stores what run needs; run runs the admitted operation; ran reports whether it
		// changed the store.
		prepare func(e *env, family string)
		run     func(e *env, adm store.Admission, family string) (store.ThrottleResult, error)
		ran     func(e *env) bool
	}
	ops := []op{
		{
			name: "TakeCodeAdmitted",
			prepare: func(e *env, family string) {
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(family), long))
			},
			run: func(e *env, adm store.Admission, family string) (store.ThrottleResult, error) {
				res, c, err := e.s.TakeCodeAdmitted(e.ctx, adm, hash("c"), "client-a")
				if err == nil && !res.Refused() {
					require.Equal(e.t, family, c.FamilyID)
				}
				return res, err
			},
			ran: func(e *env) bool {
				_, err := e.s.TakeCode(e.ctx, hash("c"), "client-a")
				return errors.Is(err, store.ErrAlreadyUsed)
			},
		},
		{
			name: "RedeemCodeAdmitted",
			prepare: func(e *env, family string) {
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("c"), e.code(family), long))
			},
			run: func(e *env, adm store.Admission, family string) (store.ThrottleResult, error) {
				res, c, err := e.s.RedeemCodeAdmitted(e.ctx, adm, hash("c"), "client-a", hash("r"), e.refresh(family, long))
				if err == nil && !res.Refused() {
					require.Equal(e.t, family, c.FamilyID)
					require.Equal(e.t, "client-a", c.ClientID)
				}
				return res, err
			},
			ran: func(e *env) bool {
				_, err := e.s.GetRefresh(e.ctx, hash("r"))
				return err == nil
			},
		},
		{
			name: "RotateRefreshAdmitted",
			prepare: func(e *env, family string) {
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
			},
			run: func(e *env, adm store.Admission, family string) (store.ThrottleResult, error) {
				res, rt, err := e.s.RotateRefreshAdmitted(e.ctx, adm, hash("a"), hash("r"), e.refresh(family, long), nil, time.Minute)
				if err == nil && !res.Refused() {
					require.Equal(e.t, family, rt.FamilyID)
				}
				return res, err
			},
			ran: func(e *env) bool {
				_, err := e.s.GetRefresh(e.ctx, hash("r"))
				return err == nil
			},
		},
	}
	var tests []test
	for _, o := range ops {
		tests = append(tests,
			test{
				name: o.name + " admits, records the success, takes from the bucket and runs the operation",
				run: func(e *env) {
					family := newFamily(e.t)
					o.prepare(e, family)
					_, err := e.s.Throttle(e.ctx, []store.ThrottleKey{counting}, store.Failure)
					require.NoError(e.t, err)
					res, err := o.run(e, admission(1), family)
					require.NoError(e.t, err)
					require.False(e.t, res.Refused())
					require.True(e.t, o.ran(e))
					wait, err := e.s.TakeRate(e.ctx, hash("b"), slow, 1)
					require.NoError(e.t, err)
					require.Positive(e.t, wait, "the admission took the bucket's one request")
					got, err := e.s.Throttle(e.ctx, []store.ThrottleKey{counting}, store.Check)
					require.NoError(e.t, err)
					require.Equal(e.t, []int64{1}, got.Failures, "a success resets only the keys marked so")
				},
			},
			test{
				name: o.name + " refused by a block runs nothing and takes nothing",
				run: func(e *env) {
					family := newFamily(e.t)
					o.prepare(e, family)
					block(e)
					res, err := o.run(e, admission(1), family)
					require.NoError(e.t, err)
					require.Positive(e.t, res.RetryAfter)
					require.False(e.t, o.ran(e))
					wait, err := e.s.TakeRate(e.ctx, hash("b"), slow, 1)
					require.NoError(e.t, err)
					require.Zero(e.t, wait, "the bucket is still full")
				},
			},
			test{
				name: o.name + " refused by the bucket runs nothing",
				run: func(e *env) {
					family := newFamily(e.t)
					o.prepare(e, family)
					wait, err := e.s.TakeRate(e.ctx, hash("b"), slow, 1)
					require.NoError(e.t, err)
					require.Zero(e.t, wait)
					res, err := o.run(e, admission(1), family)
					require.NoError(e.t, err)
					require.Zero(e.t, res.RetryAfter)
					require.Positive(e.t, res.RateWait)
					require.False(e.t, o.ran(e))
				},
			},
			test{
				name: o.name + " with a bucket and no throttle keys takes from the bucket and runs the operation",
				run: func(e *env) {
					family := newFamily(e.t)
					o.prepare(e, family)
					res, err := o.run(e, store.Admission{Rate: admission(1).Rate}, family)
					require.NoError(e.t, err)
					require.False(e.t, res.Refused())
					require.True(e.t, o.ran(e))
					wait, err := e.s.TakeRate(e.ctx, hash("b"), slow, 1)
					require.NoError(e.t, err)
					require.Positive(e.t, wait, "the admission took the bucket's one request")
				},
			},
			test{
				name: o.name + " without a bucket only records the success",
				run: func(e *env) {
					family := newFamily(e.t)
					o.prepare(e, family)
					res, err := o.run(e, store.Admission{Keys: []store.ThrottleKey{blocking}}, family)
					require.NoError(e.t, err)
					require.False(e.t, res.Refused())
					require.True(e.t, o.ran(e))
				},
			},
		)
	}
	return tests
}
