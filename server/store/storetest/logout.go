package storetest

import (
	"fmt"
	"sync"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/store"
)

func delivery(id string) store.LogoutDelivery {
	return store.LogoutDelivery{ID: id, ClientID: "client:" + id, SessionID: "sid-" + id, Subject: "user-ü-" + id}
}

// claimAll claims until nothing is due and returns the deliveries by ID.
func claimAll(e *env, limit int, claim time.Duration) map[string]store.LogoutDelivery {
	e.t.Helper()
	got := map[string]store.LogoutDelivery{}
	for range 1000 {
		batch, err := e.s.ClaimLogoutDeliveries(e.ctx, limit, claim)
		require.NoError(e.t, err)
		require.LessOrEqual(e.t, len(batch), limit)
		if len(batch) == 0 {
			return got
		}
		for _, d := range batch {
			_, dup := got[d.ID]
			require.False(e.t, dup, "%s claimed twice", d.ID)
			got[d.ID] = d
		}
	}
	require.FailNow(e.t, "the deliveries never ran out")
	return nil
}

func logoutTests() []test {
	return []test{
		{
			name: "a queued delivery is claimed once, with its client, session and subject",
			run: func(e *env) {
				d := delivery("a")
				d.Attempts, d.Claim = 7, "ignored"
				require.NoError(e.t, e.s.EnqueueLogoutDeliveries(e.ctx, []store.LogoutDelivery{d}, long))
				got := claimAll(e, 10, long)
				require.Len(e.t, got, 1)
				g := got["a"]
				require.Equal(e.t, d.ClientID, g.ClientID)
				require.Equal(e.t, d.SessionID, g.SessionID)
				require.Equal(e.t, d.Subject, g.Subject)
				require.Zero(e.t, g.Attempts, "a new delivery has no attempts")
				require.NotEmpty(e.t, g.Claim)
				require.NotEqual(e.t, "ignored", g.Claim)
				require.Empty(e.t, claimAll(e, 10, long), "a claimed delivery is not due while claimed")
			},
		},
		{
			name: "a finished delivery is gone, and finishing it again is not found",
			run: func(e *env) {
				require.NoError(e.t, e.s.EnqueueLogoutDeliveries(e.ctx, []store.LogoutDelivery{delivery("a")}, long))
				g := claimAll(e, 1, lease)["a"]
				require.NoError(e.t, e.s.FinishLogoutDelivery(e.ctx, "a", g.Claim))
				requireIs(e.t, e.s.FinishLogoutDelivery(e.ctx, "a", g.Claim), store.ErrNotFound)
				requireIs(e.t, e.s.RetryLogoutDelivery(e.ctx, "a", g.Claim, 1, 0), store.ErrNotFound)
				e.wait(pastLease)
				require.Empty(e.t, claimAll(e, 10, long), "a finished delivery never comes back")
			},
		},
		{
			name: "only the current claim finishes or retries a delivery",
			run: func(e *env) {
				require.NoError(e.t, e.s.EnqueueLogoutDeliveries(e.ctx, []store.LogoutDelivery{delivery("a")}, long))
				requireIs(e.t, e.s.FinishLogoutDelivery(e.ctx, "a", "forged"), store.ErrConflict)
				first := claimAll(e, 1, lease)["a"]
				requireIs(e.t, e.s.FinishLogoutDelivery(e.ctx, "a", "forged"), store.ErrConflict)
				e.wait(pastLease)
				second := claimAll(e, 1, long)
				require.Len(e.t, second, 1, "a delivery whose claim passed is handed out again")
				require.NotEqual(e.t, first.Claim, second["a"].Claim)
				requireIs(e.t, e.s.FinishLogoutDelivery(e.ctx, "a", first.Claim), store.ErrConflict)
				requireIs(e.t, e.s.RetryLogoutDelivery(e.ctx, "a", first.Claim, 1, 0), store.ErrConflict)
				require.NoError(e.t, e.s.FinishLogoutDelivery(e.ctx, "a", second["a"].Claim))
			},
		},
		{
			name: "a retried delivery comes back after its delay with its attempts",
			run: func(e *env) {
				require.NoError(e.t, e.s.EnqueueLogoutDeliveries(e.ctx, []store.LogoutDelivery{delivery("a")}, long))
				g := claimAll(e, 1, long)["a"]
				require.NoError(e.t, e.s.RetryLogoutDelivery(e.ctx, "a", g.Claim, 3, lease))
				require.Empty(e.t, claimAll(e, 10, long), "not due before its delay")
				requireIs(e.t, e.s.FinishLogoutDelivery(e.ctx, "a", g.Claim), store.ErrConflict) // a retry releases the claim
				e.wait(pastLease)
				again := claimAll(e, 10, long)
				require.Len(e.t, again, 1)
				require.Equal(e.t, 3, again["a"].Attempts)
				require.Equal(e.t, "client:a", again["a"].ClientID)
			},
		},
		{
			name: "a delivery whose lease ends is dropped, claimed or not",
			run: func(e *env) {
				require.NoError(e.t, e.s.EnqueueLogoutDeliveries(e.ctx, []store.LogoutDelivery{delivery("a"), delivery("b")}, lease))
				g, err := e.s.ClaimLogoutDeliveries(e.ctx, 1, long)
				require.NoError(e.t, err)
				require.Len(e.t, g, 1)
				e.wait(pastLease)
				require.Empty(e.t, claimAll(e, 10, long))
				requireIs(e.t, e.s.FinishLogoutDelivery(e.ctx, g[0].ID, g[0].Claim), store.ErrNotFound)
			},
		},
		{
			name: "queuing an ID again replaces the delivery",
			run: func(e *env) {
				require.NoError(e.t, e.s.EnqueueLogoutDeliveries(e.ctx, []store.LogoutDelivery{delivery("a")}, long))
				d := delivery("a")
				d.ClientID = "other"
				require.NoError(e.t, e.s.EnqueueLogoutDeliveries(e.ctx, []store.LogoutDelivery{d}, long))
				got := claimAll(e, 10, long)
				require.Len(e.t, got, 1)
				require.Equal(e.t, "other", got["a"].ClientID)
			},
		},
		{
			name: "a claim returns at most its limit, nothing or a limit of zero is an empty answer",
			run: func(e *env) {
				got, err := e.s.ClaimLogoutDeliveries(e.ctx, 10, long)
				require.NoError(e.t, err)
				require.Empty(e.t, got)
				require.NoError(e.t, e.s.EnqueueLogoutDeliveries(e.ctx, nil, long))
				var ds []store.LogoutDelivery
				for i := range 7 {
					ds = append(ds, delivery(fmt.Sprint(i)))
				}
				require.NoError(e.t, e.s.EnqueueLogoutDeliveries(e.ctx, ds, long))
				got, err = e.s.ClaimLogoutDeliveries(e.ctx, 0, long)
				require.NoError(e.t, err)
				require.Empty(e.t, got)
				first, err := e.s.ClaimLogoutDeliveries(e.ctx, 3, long)
				require.NoError(e.t, err)
				require.Len(e.t, first, 3)
				rest := claimAll(e, 100, long)
				require.Len(e.t, rest, 4)
				for _, d := range first {
					require.NotContains(e.t, rest, d.ID)
				}
			},
		},
		{
			name: "concurrent claims hand out every delivery exactly once",
			run: func(e *env) {
				const n = 200
				ds := make([]store.LogoutDelivery, 0, n)
				for i := range n {
					ds = append(ds, delivery(fmt.Sprint(i)))
				}
				require.NoError(e.t, e.s.EnqueueLogoutDeliveries(e.ctx, ds, long))
				var mu sync.Mutex
				seen := map[string]int{}
				errs := race(racers, func(int) error {
					for {
						batch, err := e.s.ClaimLogoutDeliveries(e.ctx, 3, long)
						if err != nil || len(batch) == 0 {
							return err
						}
						mu.Lock()
						for _, d := range batch {
							seen[d.ID]++
						}
						mu.Unlock()
						for _, d := range batch {
							if err := e.s.FinishLogoutDelivery(e.ctx, d.ID, d.Claim); err != nil {
								return err
							}
						}
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
