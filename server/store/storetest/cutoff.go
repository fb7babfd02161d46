package storetest

import (
	"fmt"
	"sync"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/store"
)

// userCutoff cuts off client-a's grants for alice (e.refresh's) now.
func (e *env) userCutoff() {
	e.t.Helper()
	require.NoError(e.t, e.s.CutOffGrants(e.ctx, store.Cutoff{ClientID: "client-a", Subject: "alice", At: e.now()}, e.now().Add(long)))
}

// requireCutOff checks that rotating token name is refused as revoked and its family revoked.
func (e *env) requireCutOff(name, family string) {
	e.t.Helper()
	_, err := e.s.RotateRefresh(e.ctx, hash(name), hash(name+"-next"), e.refresh(family, long), nil, time.Minute)
	requireIs(e.t, err, store.ErrRevoked)
	revoked, err := e.s.FamilyRevoked(e.ctx, family)
	require.NoError(e.t, err)
	require.True(e.t, revoked, "the family a cutoff ends is revoked")
	_, err = e.s.GetRefresh(e.ctx, hash(name))
	requireIs(e.t, err, store.ErrRevoked)
}

func cutoffTests() []test {
	return []test{
		{
			name: "a cutoff ends a family of the client and user that kept rotating since before it",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				e.wait(10 * time.Millisecond)
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
				require.NoError(e.t, err)
				e.wait(10 * time.Millisecond)
				_, err = e.s.RotateRefresh(e.ctx, hash("b"), hash("c"), e.refresh(family, long), nil, time.Minute)
				require.NoError(e.t, err)
				e.userCutoff()
				e.requireCutOff("c", family)
			},
		},
		{
			name: "a family started after the cutoff keeps rotating",
			run: func(e *env) {
				e.userCutoff()
				e.wait(10 * time.Millisecond)
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
				require.NoError(e.t, err)
				e.requireActive("b", family)
			},
		},
		{
			name: "a family whose first token was issued before the cutoff but stored after it is ended",
			run: func(e *env) {
				e.userCutoff()
				family := newFamily(e.t)
				first := e.refresh(family, long)
				first.IssuedAt = e.now().Add(-time.Minute)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), first))
				e.requireCutOff("a", family)
			},
		},
		{
			name: "a family redeemed from a code before the cutoff is ended",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.PutCode(e.ctx, hash("code"), e.code(family), long))
				_, err := e.s.RedeemCode(e.ctx, hash("code"), "client-a", hash("a"), e.refresh(family, long))
				require.NoError(e.t, err)
				e.userCutoff()
				e.requireCutOff("a", family)
			},
		},
		{
			name: "a cutoff of another client or another user ends nothing",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				require.NoError(e.t, e.s.CutOffGrants(e.ctx, store.Cutoff{ClientID: "client-b", Subject: "alice", At: e.now()}, e.now().Add(long)))
				require.NoError(e.t, e.s.CutOffGrants(e.ctx, store.Cutoff{ClientID: "client-a", Subject: "bob", At: e.now()}, e.now().Add(long)))
				require.NoError(e.t, e.s.CutOffGrants(e.ctx, store.Cutoff{ClientID: "client-a", SessionID: "another session", At: e.now()}, e.now().Add(long)))
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
				require.NoError(e.t, err)
				e.requireActive("b", family)
			},
		},
		{
			name: "a session cutoff ends the client's families started in that session only",
			run: func(e *env) {
				inSession, other := newFamily(e.t), newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(inSession, long)))
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("x"), e.refresh(other, long)))
				sid := e.refresh(inSession, long).SessionID
				require.NoError(e.t, e.s.CutOffGrants(e.ctx, store.Cutoff{ClientID: "client-a", SessionID: sid, At: e.now()}, e.now().Add(long)))
				e.requireCutOff("a", inSession)
				_, err := e.s.RotateRefresh(e.ctx, hash("x"), hash("y"), e.refresh(other, long), nil, time.Minute)
				require.NoError(e.t, err)
				e.requireActive("y", other)
			},
		},
		{
			name: "a retry within grace after a cutoff gets no kept successor",
			run: func(e *env) {
				family, _ := e.rotateKeeping(time.Minute)
				e.userCutoff()
				requireIs(e.t, e.s.ReportRefreshReuse(e.ctx, hash("a"), time.Minute), store.ErrRevoked)
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("c"), e.refresh(family, long), e.sealed(), time.Minute)
				requireIs(e.t, err, store.ErrRevoked)
				revoked, err := e.s.FamilyRevoked(e.ctx, family)
				require.NoError(e.t, err)
				require.True(e.t, revoked)
			},
		},
		{
			name: "a cutoff is checked before the reuse rule answers a retry within grace",
			run: func(e *env) {
				family, _ := e.rotateKeeping(time.Minute)
				e.userCutoff()
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("c"), e.refresh(family, long), e.sealed(), time.Minute)
				requireIs(e.t, err, store.ErrRevoked)
				_, err = e.s.GetRefresh(e.ctx, hash("b"))
				requireIs(e.t, err, store.ErrRevoked)
			},
		},
		{
			name: "an admitted rotation after a cutoff is refused and revokes the family",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				e.userCutoff()
				adm := store.Admission{Keys: []store.ThrottleKey{{Key: hash("t"), Window: long, ResetOnSuccess: true}}}
				res, _, err := e.s.RotateRefreshAdmitted(e.ctx, adm, hash("a"), hash("b"), e.refresh(family, long), nil, time.Minute)
				require.False(e.t, res.Refused())
				requireIs(e.t, err, store.ErrRevoked)
				revoked, err := e.s.FamilyRevoked(e.ctx, family)
				require.NoError(e.t, err)
				require.True(e.t, revoked)
			},
		},
		{
			name: "the cutoffs checked are the rotated token's, whatever the new record says",
			run: func(e *env) {
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				e.userCutoff()
				next := e.refresh(family, long)
				next.Subject, next.SessionID = "bob", "another session"
				_, err := e.s.RotateRefresh(e.ctx, hash("a"), hash("b"), next, nil, time.Minute)
				requireIs(e.t, err, store.ErrRevoked)
				adm := store.Admission{Keys: []store.ThrottleKey{{Key: hash("t"), Window: long, ResetOnSuccess: true}}}
				_, _, err = e.s.RotateRefreshAdmitted(e.ctx, adm, hash("a"), hash("c"), next, nil, time.Minute)
				requireIs(e.t, err, store.ErrRevoked)
			},
		},
		{
			name: "families stored while a cutoff is recorded are ended when they started before it",
			run: func(e *env) {
				started := e.now()
				e.wait(10 * time.Millisecond)
				families := make([]string, racers)
				var wg sync.WaitGroup
				for i := range families {
					families[i] = newFamily(e.t)
					wg.Go(func() {
						first := e.refresh(families[i], long)
						first.IssuedAt = started
						assert.NoError(e.t, e.s.CreateRefresh(e.ctx, hash(fmt.Sprint("t", i)), first))
					})
				}
				e.userCutoff()
				wg.Wait()
				for i, family := range families {
					e.requireCutOff(fmt.Sprint("t", i), family)
				}
			},
		},
		{
			name: "a later cutoff of the same key keeps the later time",
			run: func(e *env) {
				first := e.now()
				e.wait(10 * time.Millisecond)
				family := newFamily(e.t)
				require.NoError(e.t, e.s.CreateRefresh(e.ctx, hash("a"), e.refresh(family, long)))
				e.wait(10 * time.Millisecond)
				e.userCutoff()
				require.NoError(e.t, e.s.CutOffGrants(e.ctx, store.Cutoff{ClientID: "client-a", Subject: "alice", At: first}, first.Add(long)))
				e.requireCutOff("a", family)
			},
		},
	}
}
