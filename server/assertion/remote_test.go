package assertion

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeIssuer serves an OIDC discovery document and a JWK set over TLS.
type fakeIssuer struct {
	srv           *httptest.Server
	discoveryHits atomic.Int32
	jwksHits      atomic.Int32

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	issuer  string // of the discovery document; "" is the server's URL
	jwksURI string // of the discovery document; "" is the server's /jwks
	status  int    // of the JWK set; 0 is 200
	body    []byte // of the JWK set; nil is keys
}

func newFakeIssuer(t *testing.T, keys ...testKey) *fakeIssuer {
	t.Helper()
	f := &fakeIssuer{}
	f.setKeys(keys...)
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIssuer) setKeys(keys ...testKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = nil
	for _, k := range keys {
		f.keys = append(f.keys, k.public)
	}
}

func (f *fakeIssuer) set(edit func(f *fakeIssuer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	edit(f)
}

func (f *fakeIssuer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		f.discoveryHits.Add(1)
		issuer, jwksURI := f.issuer, f.jwksURI
		if issuer == "" {
			issuer = f.srv.URL
		}
		if jwksURI == "" {
			jwksURI = f.srv.URL + "/jwks"
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": jwksURI})
	case "/jwks":
		f.jwksHits.Add(1)
		if f.status != 0 {
			w.WriteHeader(f.status)
			return
		}
		if f.body != nil {
			_, _ = w.Write(f.body)
			return
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: f.keys})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeIssuer) caBundle() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
}

func (f *fakeIssuer) remote(t *testing.T, clock *fakeClock, edit func(*RemoteConfig)) *Remote {
	t.Helper()
	cfg := RemoteConfig{Issuer: f.srv.URL, CABundle: f.caBundle(), Now: clock.Now}
	if edit != nil {
		edit(&cfg)
	}
	r, err := NewRemote(cfg)
	require.NoError(t, err)
	return r
}

func verifyWith(t *testing.T, r KeySet, k testKey, clock *fakeClock) error {
	t.Helper()
	tok, err := Parse(k.sign(t, withClaims(func(c map[string]any) { c["exp"] = clock.Now().Add(time.Minute).Unix() }), nil))
	require.NoError(t, err)
	p := testPolicy()
	p.Now = clock.Now
	_, err = Verify(context.Background(), tok, r, p)
	return err
}

func TestRemoteDiscoversAndFetchesLazily(t *testing.T) {
	k := newTestKey(t, ES256, "a")
	f := newFakeIssuer(t, k)
	clock := &fakeClock{now: testNow()}
	r := f.remote(t, clock, nil)
	ctx := context.Background()

	assert.Zero(t, f.jwksHits.Load(), "nothing is fetched before the first use")
	assert.Equal(t, RemoteStatus{}, r.Status())
	got, err := r.Keys(ctx, "a")
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, RemoteStatus{JWKSURI: f.srv.URL + "/jwks", KeyCount: 1, LastRefresh: testNow()}, r.Status())

	clock.Add(59 * time.Minute)
	require.NoError(t, verifyWith(t, r, k, clock))
	assert.Equal(t, int32(1), f.jwksHits.Load(), "keys younger than the refresh period are not fetched again")
	clock.Add(time.Minute)
	require.NoError(t, verifyWith(t, r, k, clock))
	assert.Equal(t, int32(2), f.jwksHits.Load(), "keys as old as the refresh period are fetched again")
	assert.Equal(t, int32(2), f.discoveryHits.Load(), "discovery runs with each fetch")
}

func TestRemoteRefetchesForAnUnknownKidAtMostOncePerInterval(t *testing.T) {
	k := newTestKey(t, ES256, "a")
	f := newFakeIssuer(t, k)
	clock := &fakeClock{now: testNow()}
	r := f.remote(t, clock, func(c *RemoteConfig) { c.JWKSURI = f.srv.URL + "/jwks" })
	ctx := context.Background()

	_, err := r.Keys(ctx, "a")
	require.NoError(t, err)
	got, err := r.Keys(ctx, "unknown")
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Equal(t, int32(1), f.jwksHits.Load(), "no refetch within MinRefreshInterval of the last fetch")

	clock.Add(DefaultMinRefreshInterval)
	for range 5 {
		require.ErrorIs(t, verifyWith(t, r, newTestKey(t, ES256, "random"), clock), ErrNoKey)
	}
	assert.Equal(t, int32(2), f.jwksHits.Load(), "unknown kids cause one refetch per interval")
	clock.Add(DefaultMinRefreshInterval - time.Second)
	_, _ = r.Keys(ctx, "other")
	assert.Equal(t, int32(2), f.jwksHits.Load())
	clock.Add(time.Second)
	_, _ = r.Keys(ctx, "other")
	assert.Equal(t, int32(3), f.jwksHits.Load())
	assert.Zero(t, f.discoveryHits.Load(), "a configured jwks_uri needs no discovery")
}

func TestRemoteFollowsKeyRotation(t *testing.T) {
	old := newTestKey(t, ES256, "old")
	next := newTestKey(t, RS256, "next")
	f := newFakeIssuer(t, old)
	clock := &fakeClock{now: testNow()}
	r := f.remote(t, clock, nil)

	require.NoError(t, verifyWith(t, r, old, clock))
	require.ErrorIs(t, verifyWith(t, r, next, clock), ErrNoKey, "a key the issuer does not publish yet is refused")

	f.setKeys(old, next)
	clock.Add(DefaultMinRefreshInterval)
	require.NoError(t, verifyWith(t, r, next, clock), "the new key is fetched on its first unknown kid")
	require.NoError(t, verifyWith(t, r, old, clock))

	f.setKeys(next)
	clock.Add(time.Minute)
	require.NoError(t, verifyWith(t, r, old, clock), "a removed key is trusted until the next refresh")
	clock.Add(DefaultRefreshPeriod)
	require.ErrorIs(t, verifyWith(t, r, old, clock), ErrNoKey, "a removed key is refused after the next refresh")
	require.NoError(t, verifyWith(t, r, next, clock))
	assert.Equal(t, 1, r.Status().KeyCount)
}

func TestRemoteKeepsTheLastKeysWhenTheIssuerFails(t *testing.T) {
	k := newTestKey(t, ES256, "a")
	f := newFakeIssuer(t, k)
	clock := &fakeClock{now: testNow()}
	r := f.remote(t, clock, nil)
	require.NoError(t, verifyWith(t, r, k, clock))

	f.set(func(f *fakeIssuer) { f.status = http.StatusInternalServerError })
	clock.Add(DefaultRefreshPeriod)
	require.NoError(t, verifyWith(t, r, k, clock), "the last good keys still verify")
	st := r.Status()
	require.Error(t, st.LastError)
	assert.Contains(t, st.LastError.Error(), "status 500")
	assert.Equal(t, testNow(), st.LastRefresh)
	assert.Equal(t, 1, st.KeyCount)
	hits := f.jwksHits.Load()
	require.NoError(t, verifyWith(t, r, k, clock))
	assert.Equal(t, hits, f.jwksHits.Load(), "a failed fetch is not retried within MinRefreshInterval")

	f.set(func(f *fakeIssuer) { f.status = 0 })
	clock.Add(DefaultMinRefreshInterval)
	require.NoError(t, verifyWith(t, r, k, clock))
	st = r.Status()
	require.NoError(t, st.LastError)
	assert.Equal(t, clock.Now(), st.LastRefresh)
}

func TestRemoteRefusesBadIssuers(t *testing.T) {
	k := newTestKey(t, ES256, "a")
	for _, tc := range []struct {
		name  string
		edit  func(f *fakeIssuer)
		cfg   func(f *fakeIssuer, c *RemoteConfig)
		error string
		// discovery: the failure is discovery's (ErrDiscovery), not the JWK set's.
		discovery bool
	}{
		{"a discovery document of another issuer is refused", func(f *fakeIssuer) { f.issuer = "https://evil.example" }, nil, "issuer", true},
		{"a discovery document of the issuer with a trailing slash is refused", func(f *fakeIssuer) { f.issuer = f.srv.URL + "/" }, nil, "issuer", true},
		{"a discovered http jwks_uri is refused", func(f *fakeIssuer) { f.jwksURI = "http://127.0.0.1/jwks" }, nil, "jwks_uri", true},
		{"a JWK set over 1 MiB is refused", func(f *fakeIssuer) { f.body = []byte(strings.Repeat(" ", MaxJWKSBytes+1)) }, nil, "larger than", false},
		{"a JWK set that does not parse is refused", func(f *fakeIssuer) { f.body = []byte(`{"keys":[{"kty":"oct","k":"AA"}]}`) }, nil, "symmetric", false},
		{"an empty JWK set is refused", func(f *fakeIssuer) { f.body = []byte(`{"keys":[]}`) }, nil, "no usable signing key", false},
		{"a missing JWK set is refused", func(f *fakeIssuer) { f.status = http.StatusNotFound }, nil, "status 404", false},
		{"a server outside the CA bundle is refused at discovery", nil, func(_ *fakeIssuer, c *RemoteConfig) { c.CABundle = nil }, "certificate", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIssuer(t, k)
			if tc.edit != nil {
				f.set(tc.edit)
			}
			clock := &fakeClock{now: testNow()}
			r := f.remote(t, clock, func(c *RemoteConfig) {
				if tc.cfg != nil {
					tc.cfg(f, c)
				}
			})
			err := r.Refresh(context.Background())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.error)
			assert.Equal(t, tc.discovery, errors.Is(err, ErrDiscovery), "discovery's failure: %v", err)
			assert.Equal(t, err, r.Status().LastError)

			clock.Add(DefaultMinRefreshInterval)
			_, err = r.Keys(context.Background(), "a")
			require.ErrorIs(t, err, ErrKeysUnavailable)
			assert.NotContains(t, err.Error(), f.srv.URL, "Keys' errors carry no detail")
			require.ErrorIs(t, verifyWith(t, r, k, clock), ErrKeysUnavailable)
		})
	}
}

func TestNewRemoteChecksItsConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  RemoteConfig
	}{
		{"neither issuer nor jwks_uri is refused", RemoteConfig{}},
		{"an http issuer is refused", RemoteConfig{Issuer: "http://issuer.example"}},
		{"an http jwks_uri is refused", RemoteConfig{JWKSURI: "http://issuer.example/jwks"}},
		{"a relative jwks_uri is refused", RemoteConfig{JWKSURI: "/jwks"}},
		{"a CA bundle without certificates is refused", RemoteConfig{Issuer: "https://issuer.example", CABundle: []byte("nope")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRemote(tc.cfg)
			require.Error(t, err)
		})
	}
}

func TestRemoteWithItsOwnHTTPClientMayUseHTTP(t *testing.T) {
	k := newTestKey(t, ES256, "a")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.public}})
	}))
	t.Cleanup(srv.Close)
	r, err := NewRemote(RemoteConfig{JWKSURI: srv.URL + "/openid/v1/jwks", HTTPClient: srv.Client()})
	require.NoError(t, err)
	got, err := r.Keys(context.Background(), "a")
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

func TestRemoteDoesNotBlameTheIssuerForACancelledCaller(t *testing.T) {
	k := newTestKey(t, ES256, "a")
	f := newFakeIssuer(t, k)
	clock := &fakeClock{now: testNow()}
	r := f.remote(t, clock, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Keys(ctx, "a")
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, r.Status().LastError)
	got, err := r.Keys(context.Background(), "a")
	require.NoError(t, err, "the next caller fetches at once")
	assert.Len(t, got, 1)
}

// blockingTransport answers every request with a JWK set once released.
type blockingTransport struct {
	calls   atomic.Int32
	release chan struct{}
	body    []byte
}

func (b *blockingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b.calls.Add(1)
	select {
	case <-b.release:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{}, Request: req,
		Body: io.NopCloser(strings.NewReader(string(b.body))),
	}, nil
}

func TestRemoteCollapsesConcurrentFetches(t *testing.T) {
	k := newTestKey(t, ES256, "a")
	body, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.public}})
	require.NoError(t, err)
	synctest.Test(t, func(t *testing.T) {
		tr := &blockingTransport{release: make(chan struct{}), body: body}
		r, err := NewRemote(RemoteConfig{JWKSURI: "https://issuer.example/jwks", HTTPClient: &http.Client{Transport: tr}})
		require.NoError(t, err)
		var wg sync.WaitGroup
		results := make([]int, 10)
		for i := range results {
			wg.Go(func() {
				got, err := r.Keys(context.Background(), "a")
				assert.NoError(t, err)
				results[i] = len(got)
			})
		}
		synctest.Wait()
		assert.Equal(t, int32(1), tr.calls.Load(), "one fetch while every caller waits")
		close(tr.release)
		wg.Wait()
		assert.Equal(t, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, results)
		assert.Equal(t, int32(1), tr.calls.Load())
	})
}

func TestRemoteBoundsAFetchByItsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &blockingTransport{release: make(chan struct{})}
		r, err := NewRemote(RemoteConfig{JWKSURI: "https://issuer.example/jwks", HTTPClient: &http.Client{Transport: tr}})
		require.NoError(t, err)
		start := time.Now()
		err = r.Refresh(context.Background())
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, DefaultFetchTimeout, time.Since(start))
		require.ErrorIs(t, r.Status().LastError, context.DeadlineExceeded)
	})
}
