package main

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// balancer is the load balancer in front of the replicas, as an http.RoundTripper of the load
// generator: every request keeps the issuer's host (as behind a Service) and goes to the next
// replica that is up, round robin. A transport error marks the replica down (a readiness probe,
// watch, brings it back); the request is then retried once on another replica unless it was
// marked with noRetry (a refresh, a code exchange, a login: sending them twice is not the same
// as once). What happened is reported through the request's *attempt, when it has one.
type balancer struct {
	backends []*backend
	next     atomic.Uint64
	base     http.RoundTripper
}

type backend struct {
	name  string
	addr  string // host:port of the OAuth endpoints
	ready string // readiness URL
	up    atomic.Bool
}

// attempt is what the balancer reports about one request.
type attempt struct {
	// backend is the index of the replica that answered (or failed last), -1 before any.
	backend int
	// retried is set when a transport error sent the request to another replica.
	retried bool
	// failedOn is the replica whose transport error caused the retry.
	failedOn int
}

type attemptKey struct{}
type noRetryKey struct{}

// withAttempt returns ctx carrying a, which the balancer fills in.
func withAttempt(ctx context.Context, a *attempt) context.Context {
	a.backend, a.failedOn = -1, -1
	return context.WithValue(ctx, attemptKey{}, a)
}

// noRetry marks the requests of ctx as not to be sent again after a transport error.
func noRetry(ctx context.Context) context.Context { return context.WithValue(ctx, noRetryKey{}, true) }

var errNoBackend = errors.New("balancer: no replica is up")

func (b *balancer) pick(not int) (int, bool) {
	n := len(b.backends)
	start := int(b.next.Add(1) % uint64(n)) //nolint:gosec // n is small and positive
	for i := range n {
		j := (start + i) % n
		if j != not && b.backends[j].up.Load() {
			return j, true
		}
	}
	return -1, false
}

func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	a, _ := req.Context().Value(attemptKey{}).(*attempt)
	if a == nil {
		a = &attempt{backend: -1, failedOn: -1}
	}
	retry := req.Context().Value(noRetryKey{}) == nil
	i, ok := b.pick(-1)
	if !ok {
		return nil, errNoBackend
	}
	resp, err := b.send(req, i)
	a.backend = i
	if err == nil || req.Context().Err() != nil {
		return resp, err
	}
	b.backends[i].up.Store(false)
	if !retry || (req.Body != nil && req.GetBody == nil) {
		return nil, err
	}
	j, ok := b.pick(i)
	if !ok {
		return nil, err
	}
	a.retried, a.failedOn, a.backend = true, i, j
	if req.GetBody != nil {
		body, gerr := req.GetBody()
		if gerr != nil {
			return nil, gerr
		}
		req = req.Clone(req.Context())
		req.Body = body
	}
	return b.send(req, j)
}

func (b *balancer) send(req *http.Request, i int) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.URL.Host = b.backends[i].addr
	out.Host = req.URL.Host
	resp, err := b.base.RoundTrip(out)
	if resp != nil {
		resp.Request = req // the client (its cookie jar, its redirects) sees the issuer's URL
	}
	return resp, err
}

// watch polls the readiness probe of every replica that is down, every interval, until ctx ends.
func (b *balancer) watch(ctx context.Context, interval time.Duration) {
	c := &http.Client{Timeout: time.Second}
	t := time.NewTicker(interval)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, be := range b.backends {
			if be.up.Load() {
				continue
			}
			wg.Go(func() {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, be.ready, nil)
				if err != nil {
					return
				}
				resp, err := c.Do(req)
				if err != nil {
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					be.up.Store(true)
				}
			})
		}
		wg.Wait()
	}
}
