package assertion

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeReviewer counts its calls and answers with review and err, after release when set.
type fakeReviewer struct {
	calls   atomic.Int32
	review  Review
	err     error
	release chan struct{}
}

func (f *fakeReviewer) Review(ctx context.Context, _ string, audiences []string) (Review, error) {
	f.calls.Add(1)
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return Review{}, ctx.Err()
		}
	}
	r := f.review
	r.Audiences = audiences
	return r, f.err
}

func authenticated() Review {
	return Review{Authenticated: true, Username: "system:serviceaccount:ns:sa", UID: "uid", Groups: []string{"g"}, Extra: map[string][]string{"k": {"v"}}}
}

func TestCachedReviewer(t *testing.T) {
	ctx := context.Background()
	aud := []string{testAudience}
	newCache := func(f *fakeReviewer) (*CachedReviewer, *fakeClock) {
		clock := &fakeClock{now: testNow()}
		return NewCachedReviewer(f, 0, 0, clock.Now), clock
	}
	t.Run("a second review of a token is served from the cache", func(t *testing.T) {
		f := &fakeReviewer{review: authenticated()}
		c, _ := newCache(f)
		r1, err := c.Review(ctx, "token", aud, testNow().Add(time.Hour))
		require.NoError(t, err)
		r2, err := c.Review(ctx, "token", aud, testNow().Add(time.Hour))
		require.NoError(t, err)
		assert.Equal(t, r1, r2)
		assert.Equal(t, int32(1), f.calls.Load())
		r2.Groups[0] = "changed"
		r3, _ := c.Review(ctx, "token", aud, testNow().Add(time.Hour))
		assert.Equal(t, "g", r3.Groups[0], "callers get copies")
	})
	t.Run("another token or other audiences miss", func(t *testing.T) {
		f := &fakeReviewer{review: authenticated()}
		c, _ := newCache(f)
		_, _ = c.Review(ctx, "token", aud, testNow().Add(time.Hour))
		_, _ = c.Review(ctx, "token2", aud, testNow().Add(time.Hour))
		_, _ = c.Review(ctx, "token", []string{"other"}, testNow().Add(time.Hour))
		_, _ = c.Review(ctx, "token", nil, testNow().Add(time.Hour))
		_, _ = c.Review(ctx, "tok", []string{"en"}, testNow().Add(time.Hour))
		assert.Equal(t, int32(5), f.calls.Load())
	})
	t.Run("a cached review lasts the TTL", func(t *testing.T) {
		f := &fakeReviewer{review: authenticated()}
		c, clock := newCache(f)
		_, _ = c.Review(ctx, "token", aud, testNow().Add(time.Hour))
		clock.Add(DefaultReviewTTL - time.Second)
		_, _ = c.Review(ctx, "token", aud, testNow().Add(time.Hour))
		assert.Equal(t, int32(1), f.calls.Load())
		clock.Add(time.Second)
		_, _ = c.Review(ctx, "token", aud, testNow().Add(time.Hour))
		assert.Equal(t, int32(2), f.calls.Load())
	})
	t.Run("a cached review is never served past the token's expiry", func(t *testing.T) {
		f := &fakeReviewer{review: authenticated()}
		c, clock := newCache(f)
		exp := testNow().Add(10 * time.Second)
		_, _ = c.Review(ctx, "token", aud, exp)
		clock.Add(9 * time.Second)
		_, _ = c.Review(ctx, "token", aud, exp)
		assert.Equal(t, int32(1), f.calls.Load())
		clock.Add(time.Second)
		_, _ = c.Review(ctx, "token", aud, exp)
		assert.Equal(t, int32(2), f.calls.Load())
	})
	t.Run("a token past or without expiry is not cached", func(t *testing.T) {
		f := &fakeReviewer{review: authenticated()}
		c, _ := newCache(f)
		for range 2 {
			_, _ = c.Review(ctx, "expired", aud, testNow())
			_, _ = c.Review(ctx, "no-exp", aud, time.Time{})
		}
		assert.Equal(t, int32(4), f.calls.Load())
		assert.Zero(t, c.Len())
	})
	t.Run("failures are not cached", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			f    *fakeReviewer
		}{
			{"an unauthenticated review", &fakeReviewer{review: Review{Authenticated: false}}},
			{"an unavailable API server", &fakeReviewer{err: fmt.Errorf("%w: 503", ErrReviewUnavailable)}},
		} {
			c, _ := newCache(tc.f)
			for range 2 {
				r, err := c.Review(ctx, "token", aud, testNow().Add(time.Hour))
				assert.False(t, r.Authenticated, tc.name)
				if tc.f.err != nil {
					assert.ErrorIs(t, err, ErrReviewUnavailable, tc.name)
				}
			}
			assert.Equal(t, int32(2), tc.f.calls.Load(), tc.name)
			assert.Zero(t, c.Len(), tc.name)
		}
	})
	t.Run("the cache is bounded, expired entries going first", func(t *testing.T) {
		f := &fakeReviewer{review: authenticated()}
		clock := &fakeClock{now: testNow()}
		c := NewCachedReviewer(f, time.Minute, 10, clock.Now)
		for i := range 5 {
			_, _ = c.Review(ctx, fmt.Sprint("short", i), aud, testNow().Add(10*time.Second))
			_, _ = c.Review(ctx, fmt.Sprint("long", i), aud, testNow().Add(time.Hour))
		}
		assert.Equal(t, 10, c.Len())
		clock.Add(20 * time.Second)
		_, _ = c.Review(ctx, "new", aud, testNow().Add(time.Hour))
		assert.Equal(t, 6, c.Len(), "the expired entries were dropped")
		calls := f.calls.Load()
		for i := range 5 {
			_, _ = c.Review(ctx, fmt.Sprint("long", i), aud, testNow().Add(time.Hour))
		}
		assert.Equal(t, calls, f.calls.Load(), "the live entries stayed")
		for i := range 100 {
			_, _ = c.Review(ctx, fmt.Sprint("many", i), aud, testNow().Add(time.Hour))
			assert.LessOrEqual(t, c.Len(), 10)
		}
	})
}

func TestCachedReviewerCollapsesConcurrentMisses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeReviewer{review: authenticated(), release: make(chan struct{})}
		c := NewCachedReviewer(f, 0, 0, nil)
		exp := time.Now().Add(time.Hour)
		var wg sync.WaitGroup
		var ok atomic.Int32
		for range 10 {
			wg.Go(func() {
				r, err := c.Review(context.Background(), "token", []string{testAudience}, exp)
				if err == nil && r.Authenticated {
					ok.Add(1)
				}
			})
		}
		wg.Go(func() { _, _ = c.Review(context.Background(), "other", []string{testAudience}, exp) })
		synctest.Wait()
		assert.Equal(t, int32(2), f.calls.Load(), "one call per token while callers wait")
		close(f.release)
		wg.Wait()
		assert.Equal(t, int32(10), ok.Load())
		assert.Equal(t, int32(2), f.calls.Load())
	})
}

func TestCachedReviewerSurvivesALeaderThatLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeReviewer{review: authenticated(), release: make(chan struct{})}
		c := NewCachedReviewer(f, 0, 0, nil)
		exp := time.Now().Add(time.Hour)
		leaderCtx, cancel := context.WithCancel(context.Background())
		var leaderErr, followerErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, leaderErr = c.Review(leaderCtx, "token", nil, exp) })
		synctest.Wait()
		wg.Go(func() { _, followerErr = c.Review(context.Background(), "token", nil, exp) })
		synctest.Wait()
		cancel()
		synctest.Wait()
		close(f.release)
		wg.Wait()
		require.ErrorIs(t, leaderErr, context.Canceled)
		require.NoError(t, followerErr, "the follower called again with its own context")
		assert.Equal(t, int32(2), f.calls.Load())
		assert.False(t, errors.Is(followerErr, context.Canceled))
	})
}

func BenchmarkCachedReviewerHit(b *testing.B) {
	f := &fakeReviewer{review: authenticated()}
	c := NewCachedReviewer(f, time.Hour, 0, nil)
	ctx := context.Background()
	token := string(make([]byte, 1200)) // about the size of a ServiceAccount token
	aud := []string{testAudience}
	exp := time.Now().Add(time.Hour)
	if _, err := c.Review(ctx, token, aud, exp); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Review(ctx, token, aud, exp); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCachedReviewerCachedIsTheFastPathOfAReviewedToken(t *testing.T) {
	ctx := context.Background()
	aud := []string{testAudience}
	clock := &fakeClock{now: testNow()}
	f := &fakeReviewer{review: authenticated()}
	c := NewCachedReviewer(f, 0, 0, clock.Now)
	exp := testNow().Add(10 * time.Minute)

	_, _, ok := c.Cached("token", aud)
	assert.False(t, ok, "nothing before the first review")
	_, err := c.Review(ctx, "token", aud, exp)
	require.NoError(t, err)
	r, gotExp, ok := c.Cached("token", aud)
	require.True(t, ok)
	assert.Equal(t, "system:serviceaccount:ns:sa", r.Username)
	assert.Equal(t, exp, gotExp, "the token's exp, not the entry's end")
	_, _, ok = c.Cached("token", []string{"other"})
	assert.False(t, ok, "other audiences miss")
	assert.Equal(t, int32(1), f.calls.Load(), "Cached never asks the Reviewer")
	clock.now = clock.now.Add(DefaultReviewTTL)
	_, _, ok = c.Cached("token", aud)
	assert.False(t, ok, "gone with the TTL")

	refused := NewCachedReviewer(&fakeReviewer{review: Review{}}, 0, 0, clock.Now)
	_, err = refused.Review(ctx, "bad", aud, exp)
	require.NoError(t, err)
	_, _, ok = refused.Cached("bad", aud)
	assert.False(t, ok, "a refusal is never cached")
}
