package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/store"
)

// deviceGrant returns a pending device grant of client-a with the user code hash of name.
func (e *env) deviceGrant(name string, ttl time.Duration) store.DeviceGrant {
	return store.DeviceGrant{
		ClientID: "client-a", Scopes: []string{"openid", "read:projects"}, UserCode: hash("user-" + name),
		Interval: lease, ExpiresAt: e.now().Add(ttl),
	}
}

func requireDeviceGrant(t *testing.T, want, got store.DeviceGrant) {
	t.Helper()
	require.Equal(t, want.ClientID, got.ClientID)
	require.Equal(t, want.UserCode, got.UserCode)
	requireScopes(t, want.Scopes, got.Scopes)
	requireTime(t, want.ExpiresAt, got.ExpiresAt, "ExpiresAt")
}

func deviceTests() []test {
	return []test{
		{
			name: "a device grant that was put is found by its user code, pending, with every field intact",
			run: func(e *env) {
				want := e.deviceGrant("g", long)
				require.NoError(e.t, e.s.PutDeviceGrant(e.ctx, hash("g"), want))
				h, got, err := e.s.DeviceGrantByUserCode(e.ctx, want.UserCode)
				require.NoError(e.t, err)
				require.Equal(e.t, hash("g"), h)
				requireDeviceGrant(e.t, want, got)
				require.Equal(e.t, store.DevicePending, got.Status)
				require.Equal(e.t, lease, got.Interval)
				_, _, err = e.s.DeviceGrantByUserCode(e.ctx, hash("user-other"))
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "a device code or user code that holds a live grant is ErrConflict",
			run: func(e *env) {
				g := e.deviceGrant("g", long)
				require.NoError(e.t, e.s.PutDeviceGrant(e.ctx, hash("g"), g))
				requireIs(e.t, e.s.PutDeviceGrant(e.ctx, hash("g"), e.deviceGrant("other", long)), store.ErrConflict)
				requireIs(e.t, e.s.PutDeviceGrant(e.ctx, hash("other"), g), store.ErrConflict)
				_, _, err := e.s.DeviceGrantByUserCode(e.ctx, hash("user-other"))
				requireIs(e.t, err, store.ErrNotFound)
			},
		},
		{
			name: "a pending grant's polls answer pending, and a poll sooner than the interval slows down by the step",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutDeviceGrant(e.ctx, hash("g"), e.deviceGrant("g", long)))
				p, err := e.s.PollDeviceGrant(e.ctx, hash("g"), "client-a", time.Second)
				require.NoError(e.t, err)
				require.False(e.t, p.SlowDown, "the first poll")
				require.Equal(e.t, store.DevicePending, p.Grant.Status)
				p, err = e.s.PollDeviceGrant(e.ctx, hash("g"), "client-a", time.Second)
				require.NoError(e.t, err)
				require.True(e.t, p.SlowDown, "a poll right after")
				require.Equal(e.t, lease+time.Second, p.Grant.Interval)
				e.wait(lease + time.Second + 100*time.Millisecond)
				p, err = e.s.PollDeviceGrant(e.ctx, hash("g"), "client-a", time.Second)
				require.NoError(e.t, err)
				require.False(e.t, p.SlowDown, "a poll after the grown interval")
				require.Equal(e.t, lease+time.Second, p.Grant.Interval)
			},
		},
		{
			name: "another client's poll and an unknown device code are ErrNotFound and change nothing",
			run: func(e *env) {
				require.NoError(e.t, e.s.PutDeviceGrant(e.ctx, hash("g"), e.deviceGrant("g", long)))
				for _, other := range []string{"client-b", "", "client-a\x00"} {
					_, err := e.s.PollDeviceGrant(e.ctx, hash("g"), other, time.Second)
					requireIs(e.t, err, store.ErrNotFound)
				}
				_, err := e.s.PollDeviceGrant(e.ctx, hash("unknown"), "client-a", time.Second)
				requireIs(e.t, err, store.ErrNotFound)
				p, err := e.s.PollDeviceGrant(e.ctx, hash("g"), "client-a", time.Second)
				require.NoError(e.t, err)
				require.False(e.t, p.SlowDown, "the other client's polls did not count")
			},
		},
		{
			name: "an approved grant is taken by exactly one of concurrent polls, with who approved it",
			run: func(e *env) {
				g := e.deviceGrant("g", long)
				require.NoError(e.t, e.s.PutDeviceGrant(e.ctx, hash("g"), g))
				authTime := e.now().Add(-time.Minute).Truncate(time.Second)
				got, err := e.s.DecideDeviceGrant(e.ctx, g.UserCode, true, "sub-alice", authTime)
				require.NoError(e.t, err)
				require.Equal(e.t, store.DeviceApproved, got.Status)
				var mu sync.Mutex
				var won []store.DevicePoll
				errs := race(racers, func(int) error {
					p, err := e.s.PollDeviceGrant(e.ctx, hash("g"), "client-a", 0)
					if err == nil {
						mu.Lock()
						won = append(won, p)
						mu.Unlock()
					}
					return err
				})
				n := 0
				for _, err := range errs {
					if err == nil {
						n++
						continue
					}
					requireIs(e.t, err, store.ErrAlreadyUsed)
				}
				require.Equal(e.t, 1, n)
				require.Len(e.t, won, 1)
				p := won[0]
				require.Equal(e.t, store.DeviceApproved, p.Grant.Status)
				require.Equal(e.t, "sub-alice", p.Grant.Subject)
				requireTime(e.t, authTime, p.Grant.AuthTime, "AuthTime")
				requireDeviceGrant(e.t, g, p.Grant)
			},
		},
		{
			name: "a decision is made once: the user code stops working and a second decision is ErrNotFound",
			run: func(e *env) {
				g := e.deviceGrant("g", long)
				require.NoError(e.t, e.s.PutDeviceGrant(e.ctx, hash("g"), g))
				got, err := e.s.DecideDeviceGrant(e.ctx, g.UserCode, false, "sub-alice", e.now())
				require.NoError(e.t, err)
				require.Equal(e.t, store.DeviceDenied, got.Status)
				_, err = e.s.DecideDeviceGrant(e.ctx, g.UserCode, true, "sub-mallory", e.now())
				requireIs(e.t, err, store.ErrNotFound)
				_, _, err = e.s.DeviceGrantByUserCode(e.ctx, g.UserCode)
				requireIs(e.t, err, store.ErrNotFound)
				for range 2 {
					p, err := e.s.PollDeviceGrant(e.ctx, hash("g"), "client-a", time.Second)
					require.NoError(e.t, err)
					require.Equal(e.t, store.DeviceDenied, p.Grant.Status, "denied stays denied")
					require.Empty(e.t, p.Grant.Subject)
				}
			},
		},
		{
			name: "of concurrent decisions on one user code exactly one wins",
			run: func(e *env) {
				g := e.deviceGrant("g", long)
				require.NoError(e.t, e.s.PutDeviceGrant(e.ctx, hash("g"), g))
				errs := race(racers, func(i int) error {
					_, err := e.s.DecideDeviceGrant(e.ctx, g.UserCode, i%2 == 0, "sub-alice", e.now())
					return err
				})
				n := 0
				for _, err := range errs {
					if err == nil {
						n++
						continue
					}
					requireIs(e.t, err, store.ErrNotFound)
				}
				require.Equal(e.t, 1, n)
			},
		},
		{
			name: "a device grant is gone when its lease ends, and a lease already ended stores nothing",
			run: func(e *env) {
				g := e.deviceGrant("g", lease)
				require.NoError(e.t, e.s.PutDeviceGrant(e.ctx, hash("g"), g))
				require.NoError(e.t, e.s.PutDeviceGrant(e.ctx, hash("past"), e.deviceGrant("past", -time.Second)))
				_, err := e.s.PollDeviceGrant(e.ctx, hash("past"), "client-a", 0)
				requireIs(e.t, err, store.ErrNotFound)
				e.wait(pastLease)
				_, err = e.s.PollDeviceGrant(e.ctx, hash("g"), "client-a", 0)
				requireIs(e.t, err, store.ErrNotFound)
				_, _, err = e.s.DeviceGrantByUserCode(e.ctx, g.UserCode)
				requireIs(e.t, err, store.ErrNotFound)
				_, err = e.s.DecideDeviceGrant(e.ctx, g.UserCode, true, "sub-alice", e.now())
				requireIs(e.t, err, store.ErrNotFound)
				require.NoError(e.t, e.s.PutDeviceGrant(e.ctx, hash("g"), e.deviceGrant("g", long)), "the codes are free again")
			},
		},
	}
}
