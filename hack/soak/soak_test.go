package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFaultsExplainOnlyWhatHappenedDuringAFault(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	f := &faults{killed: map[int]time.Time{1: at(10)}, back: map[int]time.Time{1: at(15)},
		redisDown: at(30), redisUp: at(32)}
	broken := errors.New("connection reset by peer")
	tests := []struct {
		name         string
		a            attempt
		status       int
		err          error
		start, end   time.Time
		wantDeclared string
	}{
		{"a transport error on the killed replica while it was down is the kill's", attempt{backend: 1, failedOn: -1}, 0, broken, at(9), at(11), "replica killed"},
		{"a transport error that made the balancer resend is the kill's", attempt{backend: 0, failedOn: 1}, 0, broken, at(12), at(12), "replica killed"},
		{"a transport error on another replica is a failure", attempt{backend: 2, failedOn: -1}, 0, broken, at(12), at(12), ""},
		{"a transport error on the killed replica after it was back is a failure", attempt{backend: 1, failedOn: -1}, 0, broken, at(20), at(20), ""},
		{"a 503 while Redis was away is the restart's", attempt{backend: 0, failedOn: -1}, http.StatusServiceUnavailable, nil, at(31), at(31), "redis restart"},
		{"a 503 just after Redis came back is the restart's", attempt{backend: 0, failedOn: -1}, http.StatusServiceUnavailable, nil, at(33), at(33), "redis restart"},
		{"a 503 long after Redis came back is a failure", attempt{backend: 0, failedOn: -1}, http.StatusServiceUnavailable, nil, at(40), at(40), ""},
		{"a 400 while Redis was away is a failure", attempt{backend: 0, failedOn: -1}, http.StatusBadRequest, nil, at(31), at(31), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.a
			assert.Equal(t, tt.wantDeclared, f.explain(&a, tt.status, tt.err, tt.start, tt.end))
		})
	}
}

func TestTheRecorderCountsWantedRefusalsAsDeliberateAndTheRestAsFailures(t *testing.T) {
	f := &faults{killed: map[int]time.Time{}, back: map[int]time.Time{}}
	r := newRecorder(time.Now(), time.Second, f)
	a := &attempt{backend: 0, failedOn: -1}
	refused := func(st int) bool { return st == http.StatusBadRequest }
	tests := []struct {
		name   string
		status int
		want   func(int) bool
		out    outcome
	}{
		{"a 200 is ok", http.StatusOK, nil, ok},
		{"a redirect the flow wanted is ok", http.StatusSeeOther, func(st int) bool { return st == http.StatusSeeOther }, ok},
		{"a refusal the soak asked for is deliberate", http.StatusBadRequest, refused, deliberately},
		{"an unwanted 400 is a failure", http.StatusBadRequest, nil, failed},
		{"a 500 outside any fault is a failure", http.StatusInternalServerError, nil, failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.out, r.record(epRefresh, time.Now(), tt.status, nil, a, tt.want, ""))
		})
	}
	assert.Equal(t, 2, r.failed[epRefresh])
	assert.Equal(t, 1, r.deliberate[epRefresh][reasonAsked])
	assert.Len(t, r.all(epRefresh), len(tests), "every answered request's latency is kept")
}

func TestTheBalancerResendsToAnotherReplicaAndTakesTheDeadOneOut(t *testing.T) {
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Host+" "+string(body))
	}))
	defer live.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := dead.Listener.Addr().String()
	dead.Close()
	b := &balancer{base: &http.Transport{}}
	for _, addr := range []string{deadAddr, live.Listener.Addr().String()} {
		be := &backend{name: addr, addr: addr}
		be.up.Store(true)
		b.backends = append(b.backends, be)
	}
	c := &http.Client{Transport: b}
	post := func(ctx context.Context) (string, *attempt, error) {
		a := &attempt{}
		req, err := http.NewRequestWithContext(withAttempt(ctx, a), http.MethodPost, "http://issuer.test/oauth2/token", strings.NewReader("grant_type=x"))
		require.NoError(t, err)
		resp, err := c.Do(req)
		if err != nil {
			return "", a, err
		}
		defer resp.Body.Close() //nolint:errcheck // test
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "issuer.test", resp.Request.URL.Host, "the client sees the issuer's URL")
		return string(body), a, nil
	}

	// Round robin starts at the second backend: the first request goes to the live one.
	body, a, err := post(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "issuer.test grant_type=x", body, "the replica sees the issuer's host and the whole body")
	assert.False(t, a.retried)
	// The next one goes to the dead replica, fails to connect and is resent with its body.
	body, a, err = post(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "issuer.test grant_type=x", body)
	assert.True(t, a.retried)
	assert.Equal(t, 0, a.failedOn)
	assert.False(t, b.backends[0].up.Load(), "the dead replica is out")

	// A request that must not be sent twice is not resent.
	b.backends[0].up.Store(true)
	b.next.Store(1) // the next pick (next+1 mod 2) is the dead replica
	_, a, err = post(noRetry(t.Context()))
	require.Error(t, err)
	assert.False(t, a.retried)
	assert.Equal(t, 0, a.backend)
}

func TestTheChainPoolHandsOutEachLiveChainToOneHolderAtATime(t *testing.T) {
	p := &chains{max: 2}
	require.True(t, p.add("a"))
	require.True(t, p.add("b"))
	assert.False(t, p.add("c"), "the pool is full")
	first := p.take()
	require.NotNil(t, first)
	second := p.take()
	require.NotNil(t, second)
	assert.NotSame(t, first, second)
	assert.Nil(t, p.take(), "both chains are held")
	first.state = chainRevoked
	first.mu.Unlock()
	assert.Nil(t, p.take(), "a revoked chain is not handed out")
	assert.True(t, p.add("c"), "a revoked chain frees its place")
	second.mu.Unlock()
}

// TestTheFinalCheckCountsALastTokenRedeemedOnceOnlyWhenItDoesNotFork runs the final check
// against token endpoints that answer a chain's last token presented three times (at once
// twice, then after the reuse grace) in the ways a server could.
func TestTheFinalCheckCountsALastTokenRedeemedOnceOnlyWhenItDoesNotFork(t *testing.T) {
	tests := []struct {
		name    string
		answers []string // the refresh_token of each presentation; "" is a 400
		once    bool
	}{
		{"the same successor at once, then a refusal, is once", []string{"next", "next", ""}, true},
		{"a refusal at once, then a refusal, is once", []string{"next", "", ""}, true},
		{"another successor at once is twice, and ends the check of the chain", []string{"next", "other"}, false},
		{"a successor after the grace is twice", []string{"next", "next", "next"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rt := tt.answers[min(int(n.Add(1)), len(tt.answers))-1]
				if rt == "" {
					w.WriteHeader(http.StatusBadRequest)
					_, _ = io.WriteString(w, `{"error":"invalid_grant"}`)
					return
				}
				_, _ = io.WriteString(w, `{"access_token":"a","refresh_token":"`+rt+`"}`)
			}))
			defer srv.Close()
			f := &faults{killed: map[int]time.Time{}, back: map[int]time.Time{}}
			s := &soak{issuer: srv.URL, api: srv.Client(), rec: newRecorder(time.Now(), time.Second, f), chains: &chains{max: 1}}
			require.True(t, s.chains.add("last"))
			res := s.finalCheck(t.Context())
			assert.Equal(t, 1, res.live)
			assert.Equal(t, int64(len(tt.answers)), n.Load(), "presentations")
			if tt.once {
				assert.Equal(t, checkResult{live: 1, redeemedOnce: 1}, res)
			} else {
				assert.Equal(t, checkResult{live: 1, redeemedTwice: 1}, res)
			}
		})
	}
}
