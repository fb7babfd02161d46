package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// openLoad sends client_credentials requests at a fixed rate (an open model: vegeta starts a
// request on schedule whether or not earlier ones have answered, so a stall shows in the tail
// instead of slowing the sender down, as it would with wrk's closed loop). One second at the
// rate warms up, then d is measured. The latencies are exact (every request's, sorted), not
// estimated.
func openLoad(ctx context.Context, url, auth string, perSecond int, d time.Duration) (result, error) {
	// The generator's own garbage collection on its one P shows as latency: each collection
	// holds back the responses that arrive meanwhile, a few milliseconds every time (with GOGC
	// even at 1000, a stall every ~0.6 s at 9k/s, enough to move p99 by milliseconds). So the
	// generator collects before the row and not during it: vegeta's garbage (~7 KB a request)
	// stays on the heap until the row ends, under a memory limit that only a far longer row
	// than this one would reach (the runtime collects again then, and the row says so).
	runtime.GC()
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(generatorMemoryLimit))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var gcBefore runtime.MemStats
	runtime.ReadMemStats(&gcBefore)
	header := http.Header{}
	header.Set("Content-Type", "application/x-www-form-urlencoded")
	header.Set("Authorization", "Basic "+auth)
	targeter := vegeta.NewStaticTargeter(vegeta.Target{
		Method: http.MethodPost, URL: url, Body: []byte("grant_type=client_credentials"), Header: header,
	})
	// The row's own transport, whose connections close when the row ends: left open (vegeta's
	// default transport keeps them), every row would leave up to 256 idle keep-alive connections
	// on the server, each a goroutine whose stack the server's garbage collector scans, so that
	// later rows measured the rows before them.
	transport := &http.Transport{
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 256,
	}
	defer transport.CloseIdleConnections()
	attacker := vegeta.NewAttacker(vegeta.Client(&http.Client{Transport: transport, Timeout: 10 * time.Second}),
		vegeta.Workers(64), vegeta.MaxWorkers(256))
	defer attacker.Stop()
	pacer := vegeta.ConstantPacer{Freq: perSecond, Per: time.Second}
	warm := time.Second
	start := time.Now()
	lat := make([]time.Duration, 0, int(float64(perSecond)*d.Seconds())+1)
	var non2xx, sent int
	var firstErr string
	for res := range attacker.Attack(targeter, pacer, warm+d, "client_credentials") {
		if ctx.Err() != nil {
			attacker.Stop()
			return result{}, ctx.Err()
		}
		if res.Timestamp.Sub(start) < warm {
			continue
		}
		sent++
		if res.Code/100 != 2 {
			non2xx++
			if firstErr == "" {
				firstErr = fmt.Sprintf("status %d %s: %s", res.Code, res.Error, res.Body)
			}
			continue
		}
		lat = append(lat, res.Latency)
	}
	if non2xx > 0 {
		return result{}, fmt.Errorf("%d of %d responses were not 2xx; first: %s", non2xx, sent, firstErr)
	}
	if len(lat) == 0 {
		return result{}, fmt.Errorf("no request completed at %d/s", perSecond)
	}
	var gcAfter runtime.MemStats
	runtime.ReadMemStats(&gcAfter)
	r := summarize(lat, d)
	r.generatorGCs = gcAfter.NumGC - gcBefore.NumGC
	r.from, r.to = start.Add(warm), start.Add(warm+d)
	return r, nil
}

// generatorMemoryLimit bounds the load generator's heap while it measures a fixed rate without
// collecting: 75% of EdDSA's saturation for 10 s plus the warm-up leaves ~1 GiB of garbage.
const generatorMemoryLimit = 3 << 30

// summarize is the rate (completed requests over d) and the exact p50 and p99 of lat, which it
// sorts.
func summarize(lat []time.Duration, d time.Duration) result {
	slices.Sort(lat)
	p50, p99 := lat[len(lat)*50/100], lat[len(lat)*99/100]
	return result{
		rate:  float64(len(lat)) / d.Seconds(),
		p50:   ms(p50),
		p99:   ms(p99),
		p50ms: float64(p50) / float64(time.Millisecond),
		p99ms: float64(p99) / float64(time.Millisecond),
	}
}

// cpuWait reads the kernel's CPU pressure (/proc/pressure/cpu, "some" total: microseconds in
// which at least one runnable task waited for a core). Its growth over a row, as a share of the
// row's time, says how much other work on this shared machine competed with the measurement;
// ok is false where the kernel has no pressure accounting.
func cpuWait() (total time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0, false
	}
	for _, f := range strings.Fields(strings.SplitN(string(b), "\n", 2)[0]) {
		if v, found := strings.CutPrefix(f, "total="); found {
			us, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, false
			}
			return time.Duration(us) * time.Microsecond, true
		}
	}
	return 0, false
}

// waitShare formats the CPU pressure between two cpuWait readings over the wall time d.
func waitShare(before, after time.Duration, ok bool, d time.Duration) string {
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*waitFraction(before, after, ok, d))
}

// waitFraction is the CPU pressure between two cpuWait readings as a share of the wall time d,
// -1 where the kernel has no pressure accounting (ok false).
func waitFraction(before, after time.Duration, ok bool, d time.Duration) float64 {
	if !ok || d <= 0 {
		return -1
	}
	return float64(after-before) / float64(d)
}
