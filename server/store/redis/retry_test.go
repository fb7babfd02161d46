package redis

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/store"
)

// cutProxy forwards TCP connections to a server; when armed with a command name, it closes
// the client's connection instead of passing on the reply to the next request that sends the
// command: the server has run it, the client sees the connection fail (as when a network
// fails after the request went out).
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	armed  []byte // a command name in lower case; nil: none
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close() })
	go p.serve()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// arm cuts the connection of the next request that sends command.
func (p *cutProxy) arm(command string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = []byte(strings.ToLower(command))
}

// takes reports whether request sends the armed command, disarming it.
func (p *cutProxy) takes(request []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.armed == nil || !bytes.Contains(bytes.ToLower(request), p.armed) {
		return false
	}
	p.armed = nil
	return true
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *cutProxy) handle(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	var cut atomic.Bool
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if p.takes(buf[:n]) {
					cut.Store(true)
				}
				if _, werr := s.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		_ = s.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if cut.Load() {
				break
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = c.Close()
	_ = s.Close()
}

// TestACommandCutOffAfterTheServerRanItIsNotRunAgain: the client does not retry, so a
// non-idempotent command whose reply was lost answers ErrUnavailable and ran once; a retry
// would have run it twice and answered as if another request had come first (a code taken
// twice looks replayed; a counter counts two).
func TestACommandCutOffAfterTheServerRanItIsNotRunAgain(t *testing.T) {
	srv := harness.NewRedis(t)
	p := newCutProxy(t, srv.Addr())
	s, err := New(Options{Addrs: []string{p.addr()}, KeyPrefix: "cut:", Timeout: 2 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	require.NoError(t, s.LoadScripts(ctx))
	direct := srv.Client(&goredis.Options{MaxRetries: -1})
	t.Cleanup(func() { _ = direct.Close() })
	unavailable := func(t *testing.T, err error) {
		t.Helper()
		require.ErrorIs(t, err, store.ErrUnavailable)
		for _, other := range []error{store.ErrNotFound, store.ErrConflict, store.ErrAlreadyUsed, store.ErrReused, store.ErrRevoked} {
			require.False(t, errors.Is(err, other), "%v", err)
		}
	}

	t.Run("an increment is counted once", func(t *testing.T) {
		key := store.HashOf("counter")
		p.arm("incr")
		_, err := s.Incr(ctx, key, time.Minute)
		unavailable(t, err)
		n, err := direct.Get(ctx, s.key("cnt", key)).Int64()
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
	})
	t.Run("a code is taken once, and its first take is not answered as a replay", func(t *testing.T) {
		h := store.HashOf("code")
		require.NoError(t, s.PutCode(ctx, h, store.Code{ClientID: "client-a", FamilyID: "family"}, time.Minute))
		p.arm("evalsha")
		_, err := s.TakeCode(ctx, h, "client-a")
		unavailable(t, err)
		_, err = s.TakeCode(ctx, h, "client-a")
		require.ErrorIs(t, err, store.ErrAlreadyUsed, "the server did take it, once")
	})
	t.Run("a rotation runs once, and is not answered as a conflict", func(t *testing.T) {
		family := "family-cut"
		exp := time.Now().Add(time.Hour)
		require.NoError(t, s.CreateRefresh(ctx, store.HashOf("a"), store.RefreshToken{FamilyID: family, ExpiresAt: exp}))
		p.arm("evalsha")
		_, err := s.RotateRefresh(ctx, store.HashOf("a"), store.HashOf("b"), store.RefreshToken{FamilyID: family, ExpiresAt: exp}, time.Minute)
		unavailable(t, err)
		_, err = s.GetRefresh(ctx, store.HashOf("b"))
		require.NoError(t, err, "the rotation ran")
	})
}
