package token

import (
	"crypto/sha256"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultCacheSize is how many verified access tokens a CachedVerifier keeps when its size is
// not given: about 13 MB of heap for tokens like BenchmarkCachedVerifierMemory's (~650 B an
// entry: two audiences, two scopes), up to ~1 KB an entry with long scope and audience lists.
const DefaultCacheSize = 20000

// CacheMetrics counts the lookups of a CachedVerifier; *metrics.Metrics (server/metrics)
// implements it.
type CacheMetrics interface {
	// AccessTokenCacheLookup counts a lookup: hit when a cached verification answered, else
	// (not cached, expired or its key withdrawn) a miss.
	AccessTokenCacheLookup(hit bool)
}

// CachedVerifier is a Verifier with a bounded cache of the access tokens it verified, so that
// a token presented again costs a SHA-256 and a lookup instead of a signature verification.
// It is safe for concurrent use.
//
// The cache is keyed by the SHA-256 of the token (the token itself is not kept) and holds the
// verified claims and the published key that verified the signature. Only tokens that passed
// every check of Verify enter it. A cached verification answers only while the token has not
// expired (exp, exactly as Verify judges it) and the key that verified it is still published
// under its kid and algorithm, as the same public key (a key retired, withdrawn from the keyring
// or replaced under its kid takes its tokens with it); otherwise the entry is dropped and the token verified afresh. Revocation is not
// the verifier's, cached or not: the bearer endpoints ask the store on every call.
//
// Eviction is 2Q (hashicorp/golang-lru): tokens seen once fill a quarter of the cache and go
// first, so a burst of new tokens cannot flush the ones presented again and again.
type CachedVerifier struct {
	*Verifier
	entries *lru.TwoQueueCache[[sha256.Size]byte, *verified]
	metrics CacheMetrics
}

// verified is a cached verification.
type verified struct {
	claims AccessTokenClaims
	key    jose.JSONWebKey
}

// NewCachedVerifier returns a cache of at most size verified tokens (at least 2) in front of
// v; metrics nil counts nothing.
func NewCachedVerifier(v *Verifier, size int, metrics CacheMetrics) (*CachedVerifier, error) {
	if v == nil {
		return nil, errors.New("token: no Verifier")
	}
	if size < 2 {
		return nil, fmt.Errorf("token: cache size %d: want at least 2", size)
	}
	entries, err := lru.New2Q[[sha256.Size]byte, *verified](size)
	if err != nil {
		return nil, fmt.Errorf("token: cache: %w", err)
	}
	return &CachedVerifier{Verifier: v, entries: entries, metrics: metrics}, nil
}

// Verify returns the claims of a valid access token, else an error wrapping ErrInvalid, as
// Verifier.Verify does; from the cache when the token was verified before, has not expired
// and the key that verified it is still published. The claims' Audience is shared with the
// cache: read it, never modify it.
func (c *CachedVerifier) Verify(tok string) (*AccessTokenClaims, error) {
	if len(tok) > MaxTokenBytes {
		return c.Verifier.Verify(tok) // refused; not worth a hash
	}
	key := sha256.Sum256([]byte(tok))
	if e, ok := c.entries.Get(key); ok {
		if c.now().Unix() < e.claims.Expiry && c.published(&e.key) {
			c.count(true)
			claims := e.claims
			return &claims, nil
		}
		c.entries.Remove(key)
	}
	c.count(false)
	claims, pub, err := c.verify(tok)
	if err != nil {
		return nil, err
	}
	c.entries.Add(key, &verified{claims: *claims, key: *pub})
	return claims, nil
}

// Len is the number of cached verifications, expired ones included until they are evicted
// or looked up.
func (c *CachedVerifier) Len() int { return c.entries.Len() }

func (c *CachedVerifier) count(hit bool) {
	if c.metrics != nil {
		c.metrics.AccessTokenCacheLookup(hit)
	}
}
