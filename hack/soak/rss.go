package main

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssLog is each replica's resident memory and CPU time over the run, read from its metrics
// endpoint (process_resident_memory_bytes and process_cpu_seconds_total of the Prometheus
// process collector).
type rssLog struct {
	mu      sync.Mutex
	samples map[string][]rssSample
}

type rssSample struct {
	at    time.Duration // since the load started
	bytes float64
	cpu   float64 // seconds, since the process started
}

// sample reads every replica's RSS every interval until ctx ends.
func (l *rssLog) sample(ctx context.Context, cl *cluster, start time.Time, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.read(cl, time.Since(start))
		}
	}
}

// read takes one sample of every replica that answers.
func (l *rssLog) read(cl *cluster, at time.Duration) {
	for _, r := range cl.replicas {
		b, cpu, err := processMetrics(r.addrs.MetricsURL() + "/metrics")
		if err != nil {
			continue // a killed replica
		}
		l.mu.Lock()
		if l.samples == nil {
			l.samples = map[string][]rssSample{}
		}
		l.samples[r.name] = append(l.samples[r.name], rssSample{at, b, cpu})
		l.mu.Unlock()
	}
}

// between returns the first sample at or after from and the last one, of the replica.
func (l *rssLog) between(name string, from time.Duration) (first, last rssSample, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.samples[name]
	for _, x := range s {
		if x.at >= from {
			return x, s[len(s)-1], true
		}
	}
	return rssSample{}, rssSample{}, false
}

// cpuShare is the share of a core the replica's process used between the first sample at or
// after from and the last (0 when its process changed in between: a restart).
func (l *rssLog) cpuShare(name string, from time.Duration) float64 {
	first, last, ok := l.between(name, from)
	if !ok || last.at <= first.at || last.cpu < first.cpu {
		return 0
	}
	return (last.cpu - first.cpu) / (last.at - first.at).Seconds()
}

var errNoRSS = errors.New("no process_resident_memory_bytes or process_cpu_seconds_total")

// processMetrics reads the resident bytes and the CPU seconds of the process from its metrics.
func processMetrics(url string) (rss, cpu float64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close() //nolint:errcheck // read below
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := 0
	for sc.Scan() {
		for name, dst := range map[string]*float64{"process_resident_memory_bytes ": &rss, "process_cpu_seconds_total ": &cpu} {
			if v, ok := strings.CutPrefix(sc.Text(), name); ok {
				if *dst, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
					return 0, 0, err
				}
				found++
			}
		}
	}
	if found != 2 {
		return 0, 0, errNoRSS
	}
	return rss, cpu, nil
}
