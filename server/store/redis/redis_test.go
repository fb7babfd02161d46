package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/storetest"
)

// server is a redis-server the test started on a loopback port.
type server struct {
	addr string
	dir  string
	cmd  *exec.Cmd
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(tb, ln.Close())
	return port
}

// startServer starts redis-server on a free port (or port, when not 0); it is killed when tb
// ends. Without redis-server on PATH the test is skipped (make test installs it).
func startServer(tb testing.TB, port int) *server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server not installed (hack/apt-install.sh redis-server)")
	}
	if port == 0 {
		port = freePort(tb)
	}
	s := &server{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: tb.TempDir()}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir)
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if testing.Verbose() {
		s.cmd.Stdout = nil
	} else {
		s.cmd.Stdout, s.cmd.Stderr = nil, nil
	}
	require.NoError(tb, s.cmd.Start())
	tb.Cleanup(s.stop)
	c := goredis.NewClient(&goredis.Options{Addr: s.addr})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			tb.Fatalf("redis-server on %s did not start", s.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func (s *server) stop() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

var prefixes atomic.Int64

// newStore returns a store with a prefix of its own (so every test starts empty).
func newStore(tb testing.TB, srv *server, cluster bool) *Store {
	tb.Helper()
	s, err := New(Options{Addrs: []string{srv.addr}, KeyPrefix: fmt.Sprintf("t%d:", prefixes.Add(1)), Timeout: time.Second})
	require.NoError(tb, err)
	s.cluster = cluster
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := startServer(t, 0)
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, srv, false) }, storetest.Options{})
}

// TestConformanceClusterMode runs the suite with the Cluster code path (the refresh token index
// read and claimed in their own round trips) against the standalone server.
func TestConformanceClusterMode(t *testing.T) {
	srv := startServer(t, 0)
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, srv, true) }, storetest.Options{})
}

func TestUnreachableIsErrUnavailable(t *testing.T) {
	s, err := New(Options{Addrs: []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))}, Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	require.ErrorIs(t, s.Ping(t.Context()), store.ErrUnavailable)
	_, err = s.TakeCode(t.Context(), store.HashOf("c"))
	require.ErrorIs(t, err, store.ErrUnavailable)
}

// TestRestart stops redis-server in the middle: calls fail with ErrUnavailable while it is
// down, and work again once it is back on the same port.
func TestRestart(t *testing.T) {
	srv := startServer(t, 0)
	s := newStore(t, srv, false)
	ctx := t.Context()
	fam := "family-restart"
	require.NoError(t, s.CreateRefresh(ctx, store.HashOf("a"), store.RefreshToken{FamilyID: fam, ExpiresAt: time.Now().Add(time.Hour)}))
	require.NoError(t, s.Ping(ctx))

	srv.stop()
	calls := map[string]func() error{
		"Ping":    func() error { return s.Ping(ctx) },
		"PutCode": func() error { return s.PutCode(ctx, store.HashOf("c"), store.Code{}, time.Minute) },
		"TakeCode": func() error {
			_, err := s.TakeCode(ctx, store.HashOf("c"))
			return err
		},
		"RotateRefresh": func() error {
			_, err := s.RotateRefresh(ctx, store.HashOf("a"), store.HashOf("b"), store.RefreshToken{FamilyID: fam, ExpiresAt: time.Now().Add(time.Hour)}, time.Second)
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

	port, err := strconv.Atoi(srv.addr[len("127.0.0.1:"):])
	require.NoError(t, err)
	startServer(t, port) // empty: --save '' keeps nothing
	require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, s.PutCode(ctx, store.HashOf("c"), store.Code{ClientID: "x"}, time.Minute))
	c, err := s.TakeCode(ctx, store.HashOf("c"))
	require.NoError(t, err)
	require.Equal(t, "x", c.ClientID)
	require.NoError(t, s.CreateRefresh(ctx, store.HashOf("a2"), store.RefreshToken{FamilyID: fam, ExpiresAt: time.Now().Add(time.Hour)}))
	_, err = s.RotateRefresh(ctx, store.HashOf("a2"), store.HashOf("b2"), store.RefreshToken{FamilyID: fam, ExpiresAt: time.Now().Add(time.Hour)}, time.Second)
	require.NoError(t, err)
}
