package assertion

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// ErrReviewUnavailable: the API server could not answer a TokenReview (the caller answers 503).
var ErrReviewUnavailable = errors.New("assertion: token review unavailable")

// Reviewer reviews a ServiceAccount token for audiences (a TokenReview); the controllers
// implement it. An error wraps ErrReviewUnavailable when the API server could not answer; a
// token it refused is a Review with Authenticated false.
type Reviewer interface {
	Review(ctx context.Context, token string, audiences []string) (Review, error)
}

// Review is the outcome of a TokenReview.
type Review struct {
	Authenticated bool
	Username      string
	UID           string
	Groups        []string
	Extra         map[string][]string
	Audiences     []string
	// Refusal says why a token was not authenticated, in words safe to return to the client;
	// empty when the reviewer does not say (the API server's reasons are not passed on).
	Refusal string
}

func (r Review) clone() Review {
	r.Groups = slices.Clone(r.Groups)
	r.Audiences = slices.Clone(r.Audiences)
	if r.Extra != nil {
		extra := make(map[string][]string, len(r.Extra))
		for k, v := range r.Extra {
			extra[k] = slices.Clone(v)
		}
		r.Extra = extra
	}
	return r
}

// Defaults of NewCachedReviewer.
const (
	DefaultReviewTTL        = 30 * time.Second
	DefaultReviewMaxEntries = 100000
)

type reviewKey [sha256.Size]byte

type reviewEntry struct {
	review  Review
	expires time.Time // when the entry goes: min(stored + ttl, the token's exp)
	expiry  time.Time // the token's exp
}

// CachedReviewer caches the authenticated reviews of a Reviewer, keyed by the SHA-256 of the
// token and audiences, for min(ttl, until the token's exp). It is safe for concurrent use.
type CachedReviewer struct {
	next       Reviewer
	ttl        time.Duration
	maxEntries int
	now        func() time.Time
	group      singleflight.Group

	mu      sync.Mutex
	entries map[reviewKey]reviewEntry
}

// NewCachedReviewer returns a cache in front of r. ttl <= 0 means DefaultReviewTTL, maxEntries
// <= 0 DefaultReviewMaxEntries, now nil time.Now.
func NewCachedReviewer(r Reviewer, ttl time.Duration, maxEntries int, now func() time.Time) *CachedReviewer {
	if ttl <= 0 {
		ttl = DefaultReviewTTL
	}
	if maxEntries <= 0 {
		maxEntries = DefaultReviewMaxEntries
	}
	if now == nil {
		now = time.Now
	}
	return &CachedReviewer{next: r, ttl: ttl, maxEntries: maxEntries, now: now, entries: map[reviewKey]reviewEntry{}}
}

// Review returns the review of token for audiences, from the cache when an authenticated review
// of the same token and audiences is there and neither ttl nor expiry (the token's exp) has
// passed; else from the Reviewer, with concurrent calls for one token and audiences collapsed
// into one. It caches only authenticated reviews, and nothing for a zero or past expiry.
func (c *CachedReviewer) Review(ctx context.Context, token string, audiences []string, expiry time.Time) (Review, error) {
	key := reviewCacheKey(token, audiences)
	if r, ok := c.lookup(key); ok {
		return r, nil
	}
	r, err := sharedCall(ctx, &c.group, string(key[:]), func(ctx context.Context) (Review, error) {
		if r, ok := c.lookup(key); ok { // filled while this call waited for the group
			return r, nil
		}
		r, err := c.next.Review(ctx, token, audiences)
		if err == nil && r.Authenticated {
			c.store(key, r.clone(), expiry)
		}
		return r, err
	})
	if err != nil {
		return Review{}, err
	}
	return r.clone(), nil
}

// Cached returns the cached authenticated review of token for audiences and the token's expiry
// (as given to Review), without asking the Reviewer: the fast path of a token seen in the last
// ttl, which needs no parsing. The Review is the cache's own: read it, never modify it.
func (c *CachedReviewer) Cached(token string, audiences []string) (Review, time.Time, bool) {
	key := reviewCacheKey(token, audiences)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		return Review{}, time.Time{}, false
	}
	return e.review, e.expiry, true
}

func (c *CachedReviewer) lookup(key reviewKey) (Review, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return Review{}, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, key)
		return Review{}, false
	}
	return e.review.clone(), true
}

func (c *CachedReviewer) store(key reviewKey, r Review, expiry time.Time) {
	now := c.now()
	expires := now.Add(c.ttl)
	if expiry.Before(expires) {
		expires = expiry
	}
	if expiry.IsZero() || !now.Before(expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.maxEntries {
		c.evictLocked(now)
	}
	c.entries[key] = reviewEntry{review: r, expires: expires, expiry: expiry}
}

// evictLocked drops the expired entries and, when that frees less than a tenth of the room,
// arbitrary ones down to nine tenths, so a full cache pays one sweep per tenth of its size.
func (c *CachedReviewer) evictLocked(now time.Time) {
	maps.DeleteFunc(c.entries, func(_ reviewKey, e reviewEntry) bool { return !now.Before(e.expires) })
	target := c.maxEntries - max(1, c.maxEntries/10)
	for k := range c.entries { // map order is unspecified: arbitrary entries
		if len(c.entries) <= target {
			break
		}
		delete(c.entries, k)
	}
}

// Len is the number of cached reviews (expired ones included until they are swept).
func (c *CachedReviewer) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// reviewCacheKey hashes token and audiences, each length-prefixed so no two inputs collide.
func reviewCacheKey(token string, audiences []string) reviewKey {
	h := sha256.New()
	var n [8]byte
	write := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	write(token)
	for _, a := range audiences {
		write(a)
	}
	var k reviewKey
	h.Sum(k[:0])
	return k
}
