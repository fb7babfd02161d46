package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// stallProbe notices the moments in which its process did not run: it sleeps stallTick at a time
// and records each wake-up that came at least stallThreshold late. In the load generator (core 1) and
// in the floor server (core 0, idle while Latchkey is measured) it tells whether a tail latency
// run met a stall of the machine itself (the VM's core taken away, the kernel busy elsewhere),
// which the server cannot cause and which moves that run's p99.
type stallProbe struct {
	mu     sync.Mutex
	events []stallEvent
}

// stallEvent is one late wake-up: the probe ran again at end, late after it should have.
type stallEvent struct {
	end  time.Time
	late time.Duration
}

const (
	stallTick      = time.Millisecond
	stallThreshold = 5 * time.Millisecond
)

// stalls is what a probe saw over a span: how many late wake-ups and the longest one's lateness.
type stalls struct {
	Count   int           `json:"count"`
	Longest time.Duration `json:"longest"`
}

// run probes until ctx ends.
func (p *stallProbe) run(ctx context.Context) {
	for ctx.Err() == nil {
		before := time.Now()
		time.Sleep(stallTick)
		now := time.Now()
		p.note(now, now.Sub(before)-stallTick)
	}
}

// note records a wake-up at end, late by late, if it counts as a stall.
func (p *stallProbe) note(end time.Time, late time.Duration) {
	if late < stallThreshold {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, stallEvent{end: end, late: late})
}

// between is the stalls that overlap [from, to]; it forgets those that ended before from (the
// load generator asks about one run after another, forward in time).
func (p *stallProbe) between(from, to time.Time) stalls {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = slices.DeleteFunc(p.events, func(e stallEvent) bool { return e.end.Before(from) })
	var s stalls
	for _, e := range p.events {
		if e.end.Add(-e.late).After(to) {
			continue
		}
		s.Count++
		s.Longest = max(s.Longest, e.late)
	}
	return s
}

// ServeHTTP answers GET ?from=&to= (Unix nanoseconds) with between as JSON: the floor server's
// probe, read by the load generator on the same machine (the same clock).
func (p *stallProbe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	from, err1 := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	to, err2 := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
	if err1 != nil || err2 != nil {
		http.Error(w, "from and to must be Unix nanoseconds", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p.between(time.Unix(0, from), time.Unix(0, to)))
}

// stallsPath is where the floor server serves its probe.
const stallsPath = "/stalls"

// fetchStalls reads the floor server's probe at base for [from, to].
func fetchStalls(ctx context.Context, base string, from, to time.Time) (stalls, error) {
	u := fmt.Sprintf("%s%s?from=%d&to=%d", base, stallsPath, from.UnixNano(), to.UnixNano())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return stalls{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return stalls{}, err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	if resp.StatusCode != http.StatusOK {
		return stalls{}, fmt.Errorf("%s: status %d", stallsPath, resp.StatusCode)
	}
	var s stalls
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return stalls{}, fmt.Errorf("%s: %w", stallsPath, err)
	}
	return s, nil
}

// String is "-" for none, else the count and the longest, e.g. "2:14ms".
func (s stalls) String() string {
	if s.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("%d:%.0fms", s.Count, float64(s.Longest)/float64(time.Millisecond))
}

// plus is the stalls of two probes over the same span.
func (s stalls) plus(o stalls) stalls {
	return stalls{Count: s.Count + o.Count, Longest: max(s.Longest, o.Longest)}
}
