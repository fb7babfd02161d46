package storetest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/store"
)

// sealed returns what a caller would keep beside a rotation: opaque bytes, any byte value.
func (e *env) sealed() []byte {
	b := make([]byte, 94)
	_, err := rand.Read(b)
	require.NoError(e.t, err)
	b[0], b[1] = 0, 0xff
	return b
}

// requireSuccessor checks that err is ErrConflict (only) carrying the kept successor want.
func (e *env) requireSuccessor(err error, want []byte) {
	e.t.Helper()
	requireIs(e.t, err, store.ErrConflict)
	var se *store.SuccessorError
	require.ErrorAs(e.t, err, &se)
	require.Equal(e.t, want, se.Sealed)
}

// requireActive checks that token name is active and its family not revoked.
func (e *env) requireActive(name, family string) {
	e.t.Helper()
	_, err := e.s.GetRefresh(e.ctx, hash(name))
	require.NoError(e.t, err)
	revoked, err := e.s.FamilyRevoked(e.ctx, family)
	require.NoError(e.t, err)
	require.False(e.t, revoked)
}

// rotateKeeping creates token a of a new family and rotates it to b keeping a sealed
// successor for grace; it returns the family and what was kept.
func (e *env) rotateKeeping(grace time.Duration) (string, []byte) {
	e.t.Helper()
	family, kept := newFamily(e.t), e.sealed()
	require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
	_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), kept, grace)
	require.NoError(e.t, err)
	return family, kept
}

func successorTests() []test {
	var tests []test
	for _, report := range []bool{false, true} {
		op := "rotating"
		if report {
			op = "reporting"
		}
		tests = append(tests, test{
			name: op + " the old token once its successor was rotated is reuse and revokes the family, even within grace",
			run: func(e *env) {
				family, _ := e.rotateKeeping(time.Minute)
				_, err := e.s.RotateRefresh(e.ctx, hash("b"), hash("c"), e.refresh(family, long), e.sealed(), time.Minute)
				require.NoError(e.t, err)
				if report {
					err = e.s.ReportRefreshReuse(e.ctx, hash("a"), time.Minute)
				} else {
					_, err = e.s.RotateRefresh(e.ctx, hash("a"), hash("d"), e.refresh(family, long), e.sealed(), time.Minute)
				}
				requireIs(e.t, err, store.ErrReused)
				for _, name := range []string{"a", "b", "c"} {
					_, err = e.s.GetRefresh(e.ctx, hash(name))
					requireIs(e.t, err, store.ErrRevoked)
				}
			},
		})
	}
	return append(tests, []test{
		{
			name: "presenting a rotated token again within grace answers the successor its rotation kept and changes nothing",
			run: func(e *env) {
				family, kept := e.rotateKeeping(time.Minute)
				for range 2 {
					_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("c"), e.refresh(family, long), e.sealed(), time.Minute)
					e.requireSuccessor(err, kept)
					e.requireSuccessor(e.s.ReportRefreshReuse(e.ctx, hash("a"), time.Minute), kept)
				}
				e.requireActive("b", family)
				_, err := e.s.GetRefresh(e.ctx, hash("c"))
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "the chain goes on from the kept successor after a retry",
			run: func(e *env) {
				family, kept := e.rotateKeeping(time.Minute)
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("x"), e.refresh(family, long), nil, time.Minute)
				e.requireSuccessor(err, kept)
				got, err := e.s.RotateRefresh(e.ctx, hash("b"), hash("c"), e.refresh(family, long), e.sealed(), time.Minute)
				require.NoError(e.t, err)
				require.Equal(e.t, family, got.FamilyID)
				e.requireActive("c", family)
			},
		},
		{
			name: "a kept successor is kept for the rotation's grace only",
			run: func(e *env) {
				family, _ := e.rotateKeeping(lease)
				e.wait(pastLease)
				// A longer grace on the retry does not bring back what the rotation dropped.
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("c"), e.refresh(family, long), nil, time.Minute)
				requireIs(e.t, err, store.ErrConflict)
				require.False(e.t, errors.As(err, new(*store.SuccessorError)), "%v", err)
				requireIs(e.t, e.s.ReportRefreshReuse(e.ctx, hash("a"), time.Minute), store.ErrConflict)
				e.requireActive("b", family)
				// With the grace it was rotated with, it is reuse.
				_, err = e.s.RotateRefresh(e.ctx, hash("a"), hash("c"), e.refresh(family, long), nil, lease)
				requireIs(e.t, err, store.ErrReused)
				_, err = e.s.GetRefresh(e.ctx, hash("b"))
				requireIs(e.t, err, store.ErrRevoked)
			},
		},
		{
			name: "a rotation that keeps nothing answers a retry within grace with a bare ErrConflict",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
				require.NoError(e.t, err)
				_, err = e.s.RotateRefresh(e.ctx, hash("a"), hash("c"), e.refresh(family, long), e.sealed(), time.Minute)
				requireIs(e.t, err, store.ErrConflict)
				require.False(e.t, errors.As(err, new(*store.SuccessorError)), "%v", err)
				e.requireActive("b", family)
			},
		},
		{
			name: "a revoked family answers ErrRevoked, not the kept successor",
			run: func(e *env) {
				family, _ := e.rotateKeeping(time.Minute)
				require.NoError(e.t, e.s.RevokeFamily(e.ctx, family, e.now().Add(long)))
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("c"), e.refresh(family, long), nil, time.Minute)
				requireIs(e.t, err, store.ErrRevoked)
				requireIs(e.t, e.s.ReportRefreshReuse(e.ctx, hash("a"), time.Minute), store.ErrRevoked)
			},
		},
		{
			name: "an admitted rotation keeps the successor and an admitted retry gets it",
			run: func(e *env) {
				family, kept := newFamily(e.t), e.sealed()
				adm := store.Admission{Keys: []store.ThrottleKey{{Key: hash("t"), Window: long, ResetOnSuccess: true}}}
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				_, _, err := e.s.RotateRefreshAdmitted(e.ctx, adm, hash("a"), hash("b"), e.refresh(family, long), kept, time.Minute)
				require.NoError(e.t, err)
				res, _, err := e.s.RotateRefreshAdmitted(e.ctx, adm, hash("a"), hash("c"), e.refresh(family, long), e.sealed(), time.Minute)
				require.False(e.t, res.Refused())
				e.requireSuccessor(err, kept)
				e.requireActive("b", family)
			},
		},
		{
			name: "concurrent retries within grace all get the same kept successor",
			run: func(e *env) {
				family, kept := e.rotateKeeping(time.Minute)
				var wg sync.WaitGroup
				errs := make([]error, racers)
				for i := range racers {
					next, sealed := e.refresh(family, long), e.sealed()
					wg.Go(func() {
						_, errs[i] = e.s.RotateRefresh(e.ctx, hash("a"), hash(fmt.Sprint("c", i)), next, sealed, time.Minute)
					})
				}
				wg.Wait()
				for _, err := range errs {
					e.requireSuccessor(err, kept)
				}
				e.requireActive("b", family)
			},
		},
	}...)
}
