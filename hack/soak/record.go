package main

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// The endpoints (and grants) the soak reports on, in report order.
const (
	epClientCredentials = "token client_credentials"
	epRefresh           = "token refresh_token"
	epCode              = "token authorization_code"
	epIntrospect        = "introspect"
	epRevoke            = "revoke"
	epAuthorize         = "authorize"
	epLogin             = "login"
	epConsent           = "consent"
)

var endpoints = []string{epClientCredentials, epRefresh, epCode, epIntrospect, epRevoke, epAuthorize, epLogin, epConsent} //nolint:gochecknoglobals // constant list

// faults is the timeline of the deliberate faults, which explains errors that happen during
// them. Its methods are safe for concurrent use.
type faults struct {
	mu sync.Mutex
	// killed and back are when each replica was SIGKILLed and ready again (zero: not yet).
	killed, back map[int]time.Time
	// redisDown and redisUp are when Redis was stopped and answered again.
	redisDown, redisUp time.Time
	events             []event
}

type event struct {
	at   time.Time
	what string
}

// redisSettle is how long after Redis answers again errors are still put down to its restart
// (the replicas' pooled connections to the old process fail once each).
const redisSettle = 2 * time.Second

func (f *faults) mark(what string, set func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if set != nil {
		set()
	}
	f.events = append(f.events, event{time.Now(), what})
}

// explain names the deliberate fault that the failure of a request (sent at t0, over at t1, to
// the replica a.backend; status 0 for a transport error) is due to, or "" when none is.
func (f *faults) explain(a *attempt, status int, err error, t0, t1 time.Time) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil || status == 0 {
		for _, i := range []int{a.backend, a.failedOn} {
			k, ok := f.killed[i]
			if ok && !k.After(t1) && (f.back[i].IsZero() || !t0.After(f.back[i])) {
				return "replica killed"
			}
		}
	}
	if (status == http.StatusServiceUnavailable || status == http.StatusInternalServerError || err != nil) &&
		!f.redisDown.IsZero() && !f.redisDown.After(t1) && (f.redisUp.IsZero() || !t0.After(f.redisUp.Add(redisSettle))) {
		return "redis restart"
	}
	return ""
}

// recorder keeps every answered request's latency per endpoint and time bucket, and counts
// the outcomes. Its methods are safe for concurrent use.
type recorder struct {
	start  time.Time
	bucket time.Duration
	faults *faults

	mu         sync.Mutex
	lat        map[string][][]time.Duration // endpoint -> bucket -> latencies
	count      map[string]int
	deliberate map[string]map[string]int // endpoint -> reason -> count
	failed     map[string]int
	failures   []string // the first few, for the report
	retried    int      // requests resent to another replica after a transport error
}

func newRecorder(start time.Time, bucket time.Duration, f *faults) *recorder {
	return &recorder{start: start, bucket: bucket, faults: f, lat: map[string][][]time.Duration{},
		count: map[string]int{}, deliberate: map[string]map[string]int{}, failed: map[string]int{}}
}

const maxFailureNotes = 20

// outcome is what became of one request.
type outcome int

const (
	ok outcome = iota
	// deliberately refused: a non-2xx the soak asked for (a revoked token, a replay), or one a
	// deliberate fault explains.
	deliberately
	failed
)

// reason names a deliberate refusal the soak asked for.
const reasonAsked = "asked for (revoked or replayed token)"

// record files one request: sent at t0, answered with status (0 with err for a transport
// error); want says which statuses are right for it (nil: 2xx only). A wanted non-2xx is a
// deliberate refusal (for the reason reasonAsked); an unwanted answer a fault explains is
// deliberate too; anything else is a failure, described by note.
func (r *recorder) record(ep string, t0 time.Time, status int, err error, a *attempt, want func(int) bool, note string) outcome {
	return r.recordWhy(ep, t0, status, err, a, want, reasonAsked, note)
}

// recordWhy is record with the reason of a wanted non-2xx.
func (r *recorder) recordWhy(ep string, t0 time.Time, status int, err error, a *attempt, want func(int) bool, asked, note string) outcome {
	t1 := time.Now()
	if want == nil {
		want = is2xx
	}
	var why string
	res := ok
	switch {
	case err == nil && want(status):
		if status/100 != 2 && status/100 != 3 { // a redirect the flow wanted is its success
			res, why = deliberately, asked
		}
	default:
		if why = r.faults.explain(a, status, err, t0, t1); why != "" {
			res = deliberately
		} else {
			res = failed
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count[ep]++
	if a != nil && a.retried {
		r.retried++
	}
	if err == nil {
		b := int(t0.Sub(r.start) / r.bucket)
		buckets := r.lat[ep]
		for len(buckets) <= b {
			buckets = append(buckets, nil)
		}
		buckets[b] = append(buckets[b], t1.Sub(t0))
		r.lat[ep] = buckets
	}
	switch res {
	case deliberately:
		if r.deliberate[ep] == nil {
			r.deliberate[ep] = map[string]int{}
		}
		r.deliberate[ep][why]++
	case failed:
		r.failed[ep]++
		if len(r.failures) < maxFailureNotes {
			msg := fmt.Sprintf("status %d", status)
			if err != nil {
				msg = err.Error()
			}
			r.failures = append(r.failures, fmt.Sprintf("%s at +%s: %s %s", ep, t0.Sub(r.start).Round(time.Millisecond), msg, note))
		}
	case ok:
	}
	return res
}

// fail files a failure that is not one request's status (a wrong answer in a 200, say).
func (r *recorder) fail(ep, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed[ep]++
	if len(r.failures) < maxFailureNotes {
		r.failures = append(r.failures, ep+": "+note)
	}
}

func is2xx(status int) bool { return status/100 == 2 }

// quantile returns the q-quantile of sorted (0 when empty).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(float64(len(sorted))*q), len(sorted)-1)]
}

// all returns the endpoint's latencies over the whole run, sorted.
func (r *recorder) all(ep string) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for _, b := range r.lat[ep] {
		out = append(out, b...)
	}
	slices.Sort(out)
	return out
}

// p99s returns the endpoint's p99 per bucket (0 for a bucket without requests).
func (r *recorder) p99s(ep string, buckets int) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]time.Duration, buckets)
	for i, b := range r.lat[ep] {
		if i >= buckets {
			break
		}
		s := slices.Clone(b)
		slices.Sort(s)
		out[i] = quantile(s, 0.99)
	}
	return out
}
