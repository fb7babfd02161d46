package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
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
	// The generator's own garbage collection on its one P would show as latency: collect
	// rarely while it measures (its live heap is small: the latencies and vegeta's buffers).
	defer debug.SetGCPercent(debug.SetGCPercent(generatorGCPercent))
	header := http.Header{}
	header.Set("Content-Type", "application/x-www-form-urlencoded")
	header.Set("Authorization", "Basic "+auth)
	targeter := vegeta.NewStaticTargeter(vegeta.Target{
		Method: http.MethodPost, URL: url, Body: []byte("grant_type=client_credentials"), Header: header,
	})
	attacker := vegeta.NewAttacker(vegeta.KeepAlive(true), vegeta.Timeout(10*time.Second),
		vegeta.Workers(64), vegeta.MaxWorkers(256), vegeta.Connections(256))
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
	r := summarize(lat, d)
	return r, nil
}

// generatorGCPercent is the load generator's GOGC while it measures a fixed rate.
const generatorGCPercent = 1000

// summarize is the rate (completed requests over d) and the exact p50 and p99 of lat, which it
// sorts.
func summarize(lat []time.Duration, d time.Duration) result {
	slices.Sort(lat)
	return result{
		rate: float64(len(lat)) / d.Seconds(),
		p50:  ms(lat[len(lat)*50/100]),
		p99:  ms(lat[len(lat)*99/100]),
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
	return fmt.Sprintf("%.0f%%", 100*float64(after-before)/float64(d))
}
