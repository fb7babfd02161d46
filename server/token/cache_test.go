package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// lookups counts a CachedVerifier's hits and misses.
type lookups struct {
	mu           sync.Mutex
	hits, misses int
}

func (l *lookups) AccessTokenCacheLookup(hit bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if hit {
		l.hits++
	} else {
		l.misses++
	}
}

func (l *lookups) counts() (hits, misses int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hits, l.misses
}

// cacheEnv is a keyring of its own (tests change it), an issuer, and a cached verifier on one
// clock.
type cacheEnv struct {
	clock time.Time
	kr    *keys.Keyring
	set   *keys.Set
	iss   *Issuer
	v     *CachedVerifier
	seen  *lookups
}

func newCacheEnv(t testing.TB, size int) *cacheEnv {
	t.Helper()
	e := &cacheEnv{clock: time.Now().Truncate(time.Second), kr: keys.NewKeyring(), seen: &lookups{}}
	now := func() time.Time { return e.clock }
	set, err := keys.Generate([]string{keys.ES256, keys.EdDSA}, e.clock)
	require.NoError(t, err)
	e.set = set
	require.NoError(t, e.kr.Load(set))
	e.iss, err = NewIssuer(Config{Issuer: "https://latchkey.example", DefaultAlgorithm: keys.ES256, Keys: e.kr, Now: now})
	require.NoError(t, err)
	e.v, err = NewCachedVerifier(NewVerifier("https://latchkey.example", e.kr, now), size, e.seen)
	require.NoError(t, err)
	return e
}

func (e *cacheEnv) issue(t testing.TB, alg string) AccessToken {
	t.Helper()
	at, err := e.iss.IssueAccessToken(AccessTokenRequest{
		Client:  &registry.Client{ID: "svc", SigningAlgorithm: alg, Audiences: []string{"https://a.example", "https://b.example"}},
		Subject: "sub-1", Scopes: []string{"read", "write"}, FamilyID: "fam",
	})
	require.NoError(t, err)
	return at
}

func TestCachedVerifierAnswersAsTheVerifier(t *testing.T) {
	e := newCacheEnv(t, 16)
	for _, alg := range []string{keys.ES256, keys.EdDSA} {
		t.Run("a hit returns the claims a miss returned, for "+alg, func(t *testing.T) {
			at := e.issue(t, alg)
			want, err := e.v.Verifier.Verify(at.Token)
			require.NoError(t, err)
			hits, misses := e.seen.counts()
			miss, err := e.v.Verify(at.Token)
			require.NoError(t, err)
			hit, err := e.v.Verify(at.Token)
			require.NoError(t, err)
			assert.Equal(t, want, miss)
			assert.Equal(t, want, hit)
			h, m := e.seen.counts()
			assert.Equal(t, [2]int{hits + 1, misses + 1}, [2]int{h, m}, "one miss, then one hit")
		})
	}
	t.Run("changing the returned claims changes nothing cached", func(t *testing.T) {
		at := e.issue(t, keys.ES256)
		first, err := e.v.Verify(at.Token)
		require.NoError(t, err)
		first.Scope, first.Subject = "admin", "someone-else"
		again, err := e.v.Verify(at.Token)
		require.NoError(t, err)
		assert.Equal(t, "read write", again.Scope)
		assert.Equal(t, "sub-1", again.Subject)
	})
}

func TestCachedVerifierKeepsOnlyValidTokens(t *testing.T) {
	e := newCacheEnv(t, 16)
	at := e.issue(t, keys.ES256)
	parts := strings.Split(at.Token, ".")
	idt, err := e.iss.IssueIDToken(IDTokenRequest{Client: &registry.Client{ID: "svc"}, User: &registry.User{Subject: "u", Username: "u"}})
	require.NoError(t, err)
	other, err := NewIssuer(Config{Issuer: "https://other.example", Keys: e.kr, DefaultAlgorithm: keys.ES256, Now: func() time.Time { return e.clock }})
	require.NoError(t, err)
	foreign, err := other.IssueAccessToken(AccessTokenRequest{Client: &registry.Client{ID: "svc"}, Subject: "svc"})
	require.NoError(t, err)
	for _, tt := range []struct{ name, token string }{
		{"garbage", "garbage"},
		{"a token with a broken signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))},
		{"an ID token", idt},
		{"a token of another issuer signed with our keys", foreign.Token},
		{"an oversized token", at.Token + strings.Repeat("A", MaxTokenBytes)},
	} {
		t.Run(tt.name+" is refused every time and never cached", func(t *testing.T) {
			for range 2 {
				got, err := e.v.Verify(tt.token)
				require.ErrorIs(t, err, ErrInvalid)
				assert.Nil(t, got)
			}
			assert.Zero(t, e.v.Len())
		})
	}
}

func TestCachedVerifierForgetsWhatNoLongerVerifies(t *testing.T) {
	t.Run("a cached token is refused from its exp on", func(t *testing.T) {
		e := newCacheEnv(t, 16)
		at := e.issue(t, keys.ES256)
		_, err := e.v.Verify(at.Token)
		require.NoError(t, err)
		e.clock = at.ExpiresAt.Add(-time.Second)
		_, err = e.v.Verify(at.Token)
		require.NoError(t, err, "valid in its last second")
		e.clock = at.ExpiresAt
		_, err = e.v.Verify(at.Token)
		require.ErrorIs(t, err, ErrInvalid)
		assert.Zero(t, e.v.Len(), "the expired entry is gone")
	})
	t.Run("a cached token is refused once its key is retired early", func(t *testing.T) {
		e := newCacheEnv(t, 16)
		es, ed := e.issue(t, keys.ES256), e.issue(t, keys.EdDSA)
		for _, tok := range []string{es.Token, ed.Token} {
			_, err := e.v.Verify(tok)
			require.NoError(t, err)
		}
		_, err := keys.RetireNow(e.set, []string{es.KeyID}, e.clock)
		require.NoError(t, err)
		require.NoError(t, e.kr.Load(e.set))
		_, err = e.v.Verify(es.Token)
		require.ErrorIs(t, err, ErrInvalid)
		_, err = e.v.Verify(ed.Token)
		require.NoError(t, err, "the other key's tokens stay valid")
	})
	t.Run("a cached token is refused once its key is gone from the keyring", func(t *testing.T) {
		e := newCacheEnv(t, 16)
		at := e.issue(t, keys.ES256)
		_, err := e.v.Verify(at.Token)
		require.NoError(t, err)
		fresh, err := keys.Generate([]string{keys.ES256}, e.clock)
		require.NoError(t, err)
		require.NoError(t, e.kr.Load(fresh))
		_, err = e.v.Verify(at.Token)
		require.ErrorIs(t, err, ErrInvalid)
	})
	t.Run("a cached token is refused once another key takes its kid", func(t *testing.T) {
		e := newCacheEnv(t, 16)
		at := e.issue(t, keys.ES256)
		_, err := e.v.Verify(at.Token)
		require.NoError(t, err)
		impostor, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		for i := range e.set.Keys {
			if e.set.Keys[i].ID == at.KeyID {
				e.set.Keys[i].Private = impostor
			}
		}
		require.NoError(t, e.kr.Load(e.set))
		_, err = e.v.Verify(at.Token)
		require.ErrorIs(t, err, ErrInvalid)
	})
}

func TestCachedVerifierStaysWithinItsSize(t *testing.T) {
	const size = 8
	e := newCacheEnv(t, size)
	var tokens []string
	for range 3 * size {
		at := e.issue(t, keys.EdDSA)
		tokens = append(tokens, at.Token)
		_, err := e.v.Verify(at.Token)
		require.NoError(t, err)
		assert.LessOrEqual(t, e.v.Len(), size)
	}
	assert.Equal(t, size, e.v.Len())
	for _, tok := range tokens {
		_, err := e.v.Verify(tok)
		require.NoError(t, err, "an evicted token verifies afresh")
	}
	assert.LessOrEqual(t, e.v.Len(), size)
}

func TestCachedVerifierKeepsTokensPresentedAgainThroughABurstOfNewOnes(t *testing.T) {
	const size = 64
	e := newCacheEnv(t, size)
	hot := e.issue(t, keys.EdDSA)
	for range 2 { // seen twice: frequently used
		_, err := e.v.Verify(hot.Token)
		require.NoError(t, err)
	}
	for range 4 * size {
		_, err := e.v.Verify(e.issue(t, keys.EdDSA).Token)
		require.NoError(t, err)
	}
	hits, _ := e.seen.counts()
	_, err := e.v.Verify(hot.Token)
	require.NoError(t, err)
	after, _ := e.seen.counts()
	assert.Equal(t, hits+1, after, "the token presented again is still cached")
}

func TestNewCachedVerifierRefusesAUselessSize(t *testing.T) {
	v := NewVerifier("https://latchkey.example", keys.NewKeyring(), nil)
	for _, size := range []int{-1, 0, 1} {
		_, err := NewCachedVerifier(v, size, nil)
		require.Error(t, err, "size %d", size)
	}
	_, err := NewCachedVerifier(nil, 2, nil)
	require.Error(t, err)
}

func TestCachedVerifierIsSafeForConcurrentUse(t *testing.T) {
	e := newCacheEnv(t, 4)
	tokens := []string{e.issue(t, keys.ES256).Token, e.issue(t, keys.EdDSA).Token, e.issue(t, keys.ES256).Token,
		e.issue(t, keys.EdDSA).Token, e.issue(t, keys.ES256).Token, "garbage"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				tok := tokens[(g+i)%len(tokens)]
				c, err := e.v.Verify(tok)
				if tok == "garbage" {
					assert.ErrorIs(t, err, ErrInvalid)
					continue
				}
				if assert.NoError(t, err) {
					assert.Equal(t, "read write", c.Scope)
				}
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, e.v.Len(), 4)
}

func FuzzCachedVerifierAgreesWithTheVerifier(f *testing.F) {
	e := newCacheEnv(f, 64)
	for _, alg := range []string{keys.ES256, keys.EdDSA} {
		f.Add(e.issue(f, alg).Token)
	}
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		for range 2 { // a miss, then (when valid) a hit
			want, wantErr := e.v.Verifier.Verify(tok)
			got, err := e.v.Verify(tok)
			require.Equal(t, wantErr == nil, err == nil, "%v / %v", wantErr, err)
			if err != nil {
				require.ErrorIs(t, err, ErrInvalid)
			}
			require.Equal(t, want, got)
		}
	})
}

// BenchmarkCachedVerifier compares verifying an access token afresh (miss) with a cache hit,
// per algorithm.
func BenchmarkCachedVerifier(b *testing.B) {
	kr, err := testKeyring()
	require.NoError(b, err)
	iss, err := NewIssuer(Config{Issuer: "https://latchkey.example", Keys: kr})
	require.NoError(b, err)
	for _, alg := range keys.SupportedAlgorithms() {
		at, err := iss.IssueAccessToken(AccessTokenRequest{
			Client:  &registry.Client{ID: "svc", SigningAlgorithm: alg, Audiences: []string{"https://api.example.com"}},
			Subject: "user-subject-0123456789", Scopes: []string{"openid", "read:projects"}, FamilyID: "family-0123456789",
		})
		require.NoError(b, err)
		b.Run(alg+"/miss", func(b *testing.B) {
			v := NewVerifier("https://latchkey.example", kr, nil)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(at.Token); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/hit", func(b *testing.B) {
			v, err := NewCachedVerifier(NewVerifier("https://latchkey.example", kr, nil), DefaultCacheSize, nil)
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(at.Token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCachedVerifierMemory fills a cache of DefaultCacheSize with distinct tokens and
// reports the heap each entry holds (B/entry), the number behind the size's default.
func BenchmarkCachedVerifierMemory(b *testing.B) {
	e := newCacheEnv(b, DefaultCacheSize)
	tokens := make([]string, DefaultCacheSize)
	for i := range tokens {
		tokens[i] = e.issue(b, keys.EdDSA).Token
	}
	for b.Loop() {
		v, err := NewCachedVerifier(e.v.Verifier, DefaultCacheSize, nil)
		require.NoError(b, err)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, tok := range tokens {
			if _, err := v.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(v.Len()), "B/entry")
		runtime.KeepAlive(v)
	}
}
