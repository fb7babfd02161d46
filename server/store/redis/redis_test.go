package redis

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/storetest"
)

var prefixes atomic.Int64

// newStore returns a store with a prefix of its own (so every test starts empty).
func newStore(tb testing.TB, srv *harness.Redis, cluster bool) *Store {
	tb.Helper()
	s, err := New(Options{Addrs: []string{srv.Addr()}, KeyPrefix: fmt.Sprintf("t%d:", prefixes.Add(1)), Timeout: time.Second})
	require.NoError(tb, err)
	s.cluster = cluster
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := harness.NewRedis(t)
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, srv, false) }, storetest.Options{})
}

// TestConformanceClusterMode runs the suite with the Cluster code path (the refresh token index
// read and claimed in their own round trips) against the standalone server.
func TestConformanceClusterMode(t *testing.T) {
	srv := harness.NewRedis(t)
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, srv, true) }, storetest.Options{})
}

func TestUnreachableIsErrUnavailable(t *testing.T) {
	port, err := harness.FreePort()
	require.NoError(t, err)
	s, err := New(Options{Addrs: []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	require.ErrorIs(t, s.Ping(t.Context()), store.ErrUnavailable)
	_, err = s.TakeCode(t.Context(), store.HashOf("c"), "")
	require.ErrorIs(t, err, store.ErrUnavailable)
}

// TestRestart stops redis-server in the middle: calls fail with ErrUnavailable while it is
// down, and work again once it is back on the same port.
func TestRestart(t *testing.T) {
	srv := harness.NewRedis(t)
	s := newStore(t, srv, false)
	ctx := t.Context()
	fam := "family-restart"
	require.NoError(t, s.CreateRefresh(ctx, store.HashOf("a"), store.RefreshToken{FamilyID: fam, ExpiresAt: time.Now().Add(time.Hour)}))
	require.NoError(t, s.Ping(ctx))

	require.NoError(t, srv.Kill())
	calls := map[string]func() error{
		"Ping":    func() error { return s.Ping(ctx) },
		"PutCode": func() error { return s.PutCode(ctx, store.HashOf("c"), store.Code{}, time.Minute) },
		"TakeCode": func() error {
			_, err := s.TakeCode(ctx, store.HashOf("c"), "")
			return err
		},
		"RotateRefresh": func() error {
			_, err := s.RotateRefresh(ctx, store.HashOf("a"), store.HashOf("b"), store.RefreshToken{FamilyID: fam, ExpiresAt: time.Now().Add(time.Hour)}, nil, time.Second)
			return err
		},
		"RevokeToken": func() error { return s.RevokeToken(ctx, "jti", time.Now().Add(time.Hour)) },
		"Incr": func() error {
			_, err := s.Incr(ctx, store.HashOf("n"), time.Minute)
			return err
		},
	}
	for name, call := range calls {
		err := call()
		require.ErrorIs(t, err, store.ErrUnavailable, name)
		for _, other := range []error{store.ErrNotFound, store.ErrConflict, store.ErrAlreadyUsed, store.ErrReused, store.ErrRevoked} {
			require.False(t, errors.Is(err, other), "%s: %v", name, err)
		}
	}

	require.NoError(t, srv.Restart()) // on the same port, empty: nothing is persisted
	require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, s.PutCode(ctx, store.HashOf("c"), store.Code{ClientID: "x"}, time.Minute))
	c, err := s.TakeCode(ctx, store.HashOf("c"), "x")
	require.NoError(t, err)
	require.Equal(t, "x", c.ClientID)
	require.NoError(t, s.CreateRefresh(ctx, store.HashOf("a2"), store.RefreshToken{FamilyID: fam, ExpiresAt: time.Now().Add(time.Hour)}))
	_, err = s.RotateRefresh(ctx, store.HashOf("a2"), store.HashOf("b2"), store.RefreshToken{FamilyID: fam, ExpiresAt: time.Now().Add(time.Hour)}, nil, time.Second)
	require.NoError(t, err)
}

// TestCodeRecordFormat pins the code record that replicas of every version share during a
// rolling upgrade: '0' (unused) or '1' (used), then the JSON record, whose c is the client.
func TestCodeRecordFormat(t *testing.T) {
	srv := harness.NewRedis(t)
	s := newStore(t, srv, false)
	ctx := t.Context()
	h := store.HashOf("code")
	t.Run("a code written as '0' and its JSON is taken by its client and marked '1'", func(t *testing.T) {
		k := s.key("code", h)
		require.NoError(t, s.c.Set(ctx, k, `0{"c":"client-a","u":"https://app.example.com/cb","s":"alice","sc":["openid"],"f":"family"}`, time.Minute).Err())
		_, err := s.TakeCode(ctx, h, "client-b")
		require.ErrorIs(t, err, store.ErrNotFound)
		c, err := s.TakeCode(ctx, h, "client-a")
		require.NoError(t, err)
		require.Equal(t, store.Code{ClientID: "client-a", RedirectURI: "https://app.example.com/cb", Subject: "alice",
			Scopes: []string{"openid"}, FamilyID: "family"}, c)
		v, err := s.c.Get(ctx, k).Result()
		require.NoError(t, err)
		require.Equal(t, `1{"c":"client-a",`, v[:len(`1{"c":"client-a",`)])
	})
	t.Run("PutCode writes '0' and the JSON record", func(t *testing.T) {
		h := store.HashOf("put")
		require.NoError(t, s.PutCode(ctx, h, store.Code{ClientID: "client-a", FamilyID: "family"}, time.Minute))
		v, err := s.c.Get(ctx, s.key("code", h)).Result()
		require.NoError(t, err)
		require.Equal(t, `0{"c":"client-a","u":"","s":"","f":"family"}`, v)
	})
	t.Run("a record that is not JSON is ErrUnavailable and stays as it was", func(t *testing.T) {
		h := store.HashOf("bad")
		k := s.key("code", h)
		require.NoError(t, s.c.Set(ctx, k, "0client-a\x00{}", time.Minute).Err())
		_, err := s.TakeCode(ctx, h, "client-a")
		require.ErrorIs(t, err, store.ErrUnavailable)
		v, err := s.c.Get(ctx, k).Result()
		require.NoError(t, err)
		require.Equal(t, "0client-a\x00{}", v)
	})
}
