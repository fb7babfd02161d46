package redis

import (
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/store"
)

// TestACommandCutOffAfterTheServerRanItIsNotRunAgain: the client does not retry, so a
// non-idempotent command whose reply was lost answers ErrUnavailable and ran once; a retry
// would have run it twice and answered as if another request had come first (a code taken
// twice looks replayed; a counter counts two).
func TestACommandCutOffAfterTheServerRanItIsNotRunAgain(t *testing.T) {
	srv := harness.NewRedis(t)
	p := harness.NewCutProxy(t, srv.Addr())
	s, err := New(Options{Addrs: []string{p.Addr()}, KeyPrefix: "cut:", Timeout: 2 * time.Second})
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
		p.Arm("incr")
		_, err := s.Incr(ctx, key, time.Minute)
		unavailable(t, err)
		n, err := direct.Get(ctx, s.key("cnt", key)).Int64()
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
	})
	t.Run("a code is taken once, and its first take is not answered as a replay", func(t *testing.T) {
		h := store.HashOf("code")
		require.NoError(t, s.PutCode(ctx, h, store.Code{ClientID: "client-a", FamilyID: "family"}, time.Minute))
		p.Arm("evalsha")
		_, err := s.TakeCode(ctx, h, "client-a")
		unavailable(t, err)
		_, err = s.TakeCode(ctx, h, "client-a")
		require.ErrorIs(t, err, store.ErrAlreadyUsed, "the server did take it, once")
	})
	t.Run("a rotation runs once, and is not answered as a conflict", func(t *testing.T) {
		family := "family-cut"
		exp := time.Now().Add(time.Hour)
		require.NoError(t, s.CreateRefresh(ctx, store.HashOf("a"), store.RefreshToken{FamilyID: family, ExpiresAt: exp}))
		p.Arm("evalsha")
		_, err := s.RotateRefresh(ctx, store.HashOf("a"), store.HashOf("b"), store.RefreshToken{FamilyID: family, ExpiresAt: exp}, nil, time.Minute)
		unavailable(t, err)
		_, err = s.GetRefresh(ctx, store.HashOf("b"))
		require.NoError(t, err, "the rotation ran")
	})
}
