package backchannel_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/backchannel"
	"github.com/latchkey-dev/latchkey/server/store/redis"
)

// replicaStore is one replica's own connection to the shared redis-server.
func replicaStore(t *testing.T, srv *harness.Redis) *redis.Store {
	t.Helper()
	s, err := redis.New(redis.Options{Addrs: []string{srv.Addr()}, KeyPrefix: "latchkey:", Timeout: time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestTwoReplicasSharingRedisDeliverEachLogoutExactlyOnce(t *testing.T) {
	srv := harness.NewRedis(t)
	e := newEnv(t)
	rp := newReceiver(t, e.keyring)
	e.client("web", rp.URL())
	e.client("admin", rp.URL())
	a := e.sender(backchannel.Config{Store: replicaStore(t, srv)})
	b := e.sender(backchannel.Config{Store: replicaStore(t, srv)})
	start(t, a)
	start(t, b)
	const sessions = 40
	for i := range sessions {
		replica := a
		if i%2 == 1 {
			replica = b
		}
		require.NoError(t, replica.SessionEnded(t.Context(), fmt.Sprintf("sid-%d", i), "user-sub", []string{"web", "admin"}))
	}
	require.Eventually(t, func() bool { return e.count("delivered") == 2*sessions }, 20*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // time for a duplicate to show
	got := rp.tokens()
	require.Len(t, got, 2*sessions, "no duplicates")
	seen := map[string]bool{}
	for _, g := range got {
		k := g.claims["sid"].(string) + "/" + g.claims["aud"].(string)
		assert.False(t, seen[k], "%s delivered twice", k)
		seen[k] = true
		requireLogoutToken(t, g, g.claims["aud"].(string), g.claims["sid"].(string), "user-sub", "RS256")
	}
}

func TestADeliveryQueuedOnAReplicaThatStopsIsDeliveredByAnother(t *testing.T) {
	srv := harness.NewRedis(t)
	e := newEnv(t)
	rp := newReceiver(t, e.keyring)
	e.client("web", rp.URL())
	storeA := replicaStore(t, srv)
	a := e.sender(backchannel.Config{Store: storeA})
	require.NoError(t, a.SessionEnded(t.Context(), "sid-restart", "user-sub", []string{"web"}))
	// Replica A stops before its worker delivered anything: its connection goes away.
	require.NoError(t, storeA.Close())
	assert.Zero(t, rp.hitCount())

	b := e.sender(backchannel.Config{Store: replicaStore(t, srv)})
	start(t, b)
	require.Eventually(t, func() bool { return rp.hitCount() == 1 }, 10*time.Second, 10*time.Millisecond)
	got := rp.tokens()
	require.Len(t, got, 1)
	requireLogoutToken(t, got[0], "web", "sid-restart", "user-sub", "RS256")
}

func TestARetryScheduledByAReplicaThatStopsIsMadeByAnother(t *testing.T) {
	srv := harness.NewRedis(t)
	e := newEnv(t)
	rp := newReceiver(t, e.keyring, http.StatusServiceUnavailable)
	e.client("web", rp.URL())
	a := e.sender(backchannel.Config{Store: replicaStore(t, srv)})
	stopA := start(t, a)
	require.NoError(t, a.SessionEnded(t.Context(), "sid-handover", "user-sub", []string{"web"}))
	require.Eventually(t, func() bool { return e.count("retried") == 1 }, 10*time.Second, 10*time.Millisecond)
	stopA()
	b := e.sender(backchannel.Config{Store: replicaStore(t, srv)})
	start(t, b)
	require.Eventually(t, func() bool { return e.count("delivered") == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 2, rp.hitCount())
}

func TestADeliveryClaimedByAReplicaThatDiedIsDeliveredByAnotherWhenTheClaimPasses(t *testing.T) {
	srv := harness.NewRedis(t)
	e := newEnv(t)
	rp := newReceiver(t, e.keyring)
	e.client("web", rp.URL())
	storeA := replicaStore(t, srv)
	a := e.sender(backchannel.Config{Store: storeA})
	require.NoError(t, a.SessionEnded(t.Context(), "sid-died", "user-sub", []string{"web"}))
	// Replica A claims the delivery and dies before its attempt: nothing records an answer.
	claimed, err := storeA.ClaimLogoutDeliveries(t.Context(), 10, 500*time.Millisecond)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.NoError(t, storeA.Close())

	b := e.sender(backchannel.Config{Store: replicaStore(t, srv)})
	start(t, b)
	time.Sleep(200 * time.Millisecond)
	assert.Zero(t, rp.hitCount(), "not while A's claim lasts")
	require.Eventually(t, func() bool { return rp.hitCount() == 1 }, 10*time.Second, 10*time.Millisecond)
	got := rp.tokens()
	require.Len(t, got, 1)
	requireLogoutToken(t, got[0], "web", "sid-died", "user-sub", "RS256")
	// The receiver answers before the sender counts the answer.
	require.Eventually(t, func() bool { return e.count("delivered") == 1 }, 10*time.Second, 10*time.Millisecond)
}
