package assertion

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// Defaults of RemoteConfig.
const (
	DefaultRefreshPeriod      = time.Hour
	DefaultMinRefreshInterval = 10 * time.Second
	DefaultFetchTimeout       = 5 * time.Second
	maxRedirects              = 5
)

// RemoteConfig configures a Remote.
type RemoteConfig struct {
	// Issuer is the issuer whose OIDC discovery document
	// (Issuer + "/.well-known/openid-configuration") gives the jwks_uri when JWKSURI is empty; the
	// document's issuer must equal it exactly.
	Issuer string
	// JWKSURI, when set, is fetched directly (no discovery).
	JWKSURI string
	// CABundle (PEM), when set, holds the only roots trusted; else the system's.
	CABundle []byte
	// HTTPClient, when set, is used as is (the Kubernetes API server's client, which carries
	// its own credentials and roots): CABundle is ignored and http URLs are allowed. Otherwise
	// only https URLs are.
	HTTPClient *http.Client
	// RefreshPeriod is the age after which the keys are fetched again; zero: DefaultRefreshPeriod.
	RefreshPeriod time.Duration
	// MinRefreshInterval is the least time between two fetches caused by an unknown kid or
	// following a failure; zero: DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// Timeout bounds each HTTP request; zero: DefaultFetchTimeout.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// RemoteStatus is what a status controller shows of a Remote.
type RemoteStatus struct {
	JWKSURI     string    // the URI of the keys: configured, or discovered ("" before discovery)
	KeyCount    int       // keys held
	LastRefresh time.Time // last successful fetch; zero: none yet
	LastError   error     // error of the last fetch; nil when it succeeded
}

// Remote is the key set of a remote issuer, fetched over HTTPS lazily, inside the callers'
// calls: on first use, when older than RefreshPeriod, and for an unknown kid at most once per
// MinRefreshInterval. Concurrent fetches collapse into one; a failed fetch keeps the last good
// keys. It is safe for concurrent use.
type Remote struct {
	issuer      string
	jwksURI     string // configured; "" means discovery
	client      *http.Client
	allowHTTP   bool
	period      time.Duration
	minInterval time.Duration
	timeout     time.Duration
	now         func() time.Time
	group       singleflight.Group

	mu          sync.Mutex
	keys        []jose.JSONWebKey
	resolvedURI string
	lastRefresh time.Time
	lastAttempt time.Time
	lastError   error
}

// NewRemote checks cfg and returns a Remote; it fetches nothing.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	r := &Remote{
		issuer: cfg.Issuer, jwksURI: cfg.JWKSURI, resolvedURI: cfg.JWKSURI,
		period: cfg.RefreshPeriod, minInterval: cfg.MinRefreshInterval, timeout: cfg.Timeout,
		now: cfg.Now, client: cfg.HTTPClient, allowHTTP: cfg.HTTPClient != nil,
	}
	if r.period <= 0 {
		r.period = DefaultRefreshPeriod
	}
	if r.minInterval <= 0 {
		r.minInterval = DefaultMinRefreshInterval
	}
	if r.timeout <= 0 {
		r.timeout = DefaultFetchTimeout
	}
	if r.now == nil {
		r.now = time.Now
	}
	switch {
	case r.jwksURI != "":
		if err := r.checkURL(r.jwksURI); err != nil {
			return nil, fmt.Errorf("jwks_uri: %w", err)
		}
	case r.issuer == "":
		return nil, errors.New("assertion: remote keys need an issuer or a jwks_uri")
	default:
		if err := r.checkURL(r.issuer); err != nil {
			return nil, fmt.Errorf("issuer: %w", err)
		}
	}
	if r.client == nil {
		c, err := newHTTPClient(cfg.CABundle, r.timeout)
		if err != nil {
			return nil, err
		}
		r.client = c
	}
	return r, nil
}

func newHTTPClient(caBundle []byte, timeout time.Duration) (*http.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caBundle) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caBundle) {
			return nil, errors.New("assertion: CA bundle holds no PEM certificate")
		}
		tlsConfig.RootCAs = pool
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			TLSClientConfig:       tlsConfig,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			DisableKeepAlives:     true, // fetches are rare; no idle connection outlives a call
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "https" {
				return errors.New("redirect to a non-https URL")
			}
			return nil
		},
	}, nil
}

func (r *Remote) checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("assertion: invalid URL: %w", err)
	}
	if u.Host == "" || (u.Scheme != "https" && (u.Scheme != "http" || !r.allowHTTP)) {
		return fmt.Errorf("assertion: %q is not an absolute https URL", s)
	}
	return nil
}

// Keys implements KeySet. Its errors are generic (ErrKeysUnavailable, or the context's);
// Status and Refresh give the details.
func (r *Remote) Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	r.mu.Lock()
	keys, stale := r.keys, r.staleLocked(r.now())
	r.mu.Unlock()
	refreshed := false
	if stale {
		keys, _ = r.refresh(ctx, r.staleLocked)
		refreshed = true
	}
	if len(keys) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: the issuer's keys could not be fetched", ErrKeysUnavailable)
	}
	found := matchKeys(keys, kid)
	if len(found) == 0 && kid != "" && !refreshed {
		keys, _ = r.refresh(ctx, func(now time.Time) bool {
			return len(matchKeys(r.keys, kid)) == 0 && r.mayAttemptLocked(now)
		})
		found = matchKeys(keys, kid)
	}
	return found, nil
}

// Refresh fetches the keys now (joining a fetch in progress) and returns the fetch's error.
func (r *Remote) Refresh(ctx context.Context) error {
	_, err := r.refresh(ctx, func(time.Time) bool { return true })
	return err
}

// Status reports the keys held and the last fetch.
func (r *Remote) Status() RemoteStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RemoteStatus{
		JWKSURI: r.resolvedURI, KeyCount: len(r.keys), LastRefresh: r.lastRefresh, LastError: r.lastError,
	}
}

// staleLocked: the keys are missing or older than the period, and a fetch may be attempted.
func (r *Remote) staleLocked(now time.Time) bool {
	return (r.lastRefresh.IsZero() || now.Sub(r.lastRefresh) >= r.period) && r.mayAttemptLocked(now)
}

// mayAttemptLocked: no fetch was attempted in the last MinRefreshInterval.
func (r *Remote) mayAttemptLocked(now time.Time) bool {
	return r.lastAttempt.IsZero() || now.Sub(r.lastAttempt) >= r.minInterval
}

// refresh fetches the keys when want, evaluated by the one caller that fetches (under the
// lock), still holds; it returns the keys held afterwards and the fetch's error.
func (r *Remote) refresh(ctx context.Context, want func(now time.Time) bool) ([]jose.JSONWebKey, error) {
	type result struct {
		keys []jose.JSONWebKey
		err  error
	}
	res, err := sharedCall(ctx, &r.group, "fetch", func(ctx context.Context) (result, error) {
		r.mu.Lock()
		start := r.now()
		if !want(start) {
			keys, lastErr := r.keys, r.lastError
			r.mu.Unlock()
			return result{keys: keys, err: lastErr}, nil
		}
		r.mu.Unlock()
		uri, keys, err := r.fetch(ctx)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil && ctx.Err() != nil {
			// The caller left: not the issuer's failure, nothing to record.
			return result{keys: r.keys, err: err}, err
		}
		r.lastAttempt, r.lastError = start, err
		if uri != "" {
			r.resolvedURI = uri
		}
		if err == nil {
			r.keys, r.lastRefresh = keys, start
		}
		return result{keys: r.keys, err: err}, nil
	})
	if err != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.keys, err
	}
	return res.keys, res.err
}

// fetch gets the key set, after discovery when no jwks_uri is configured.
func (r *Remote) fetch(ctx context.Context) (string, []jose.JSONWebKey, error) {
	uri := r.jwksURI
	if uri == "" {
		var err error
		if uri, err = r.discover(ctx); err != nil {
			return "", nil, fmt.Errorf("%w: %w", ErrDiscovery, err)
		}
	}
	body, err := r.get(ctx, uri)
	if err != nil {
		return uri, nil, err
	}
	keys, err := ParseJWKS(body)
	if err != nil {
		return uri, nil, fmt.Errorf("JWK set at %s: %w", uri, err)
	}
	return uri, keys, nil
}

func (r *Remote) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(r.issuer, "/") + "/.well-known/openid-configuration"
	body, err := r.get(ctx, u)
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery document at %s is not JSON: %w", u, err)
	}
	if doc.Issuer != r.issuer {
		return "", fmt.Errorf("discovery document at %s: issuer %s is not %q", u, quote(doc.Issuer), r.issuer)
	}
	if err := r.checkURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery document at %s: jwks_uri: %w", u, err)
	}
	return doc.JWKSURI, nil
}

// get fetches u within the timeout and returns a body of at most MaxJWKSBytes.
func (r *Remote) get(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	// The API server answers /openid/v1/jwks only to a request that accepts application/jwk-set+json.
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > MaxJWKSBytes {
		return nil, fmt.Errorf("GET %s: body larger than %d bytes", u, MaxJWKSBytes)
	}
	return body, nil
}
