package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// report is the result of a soak: summary.md and latency.svg in the run folder.
type report struct {
	o        options
	closed   float64
	capacity float64
	rate     float64
	start    time.Time
	ran      time.Duration
	rec      *recorder
	faults   *faults
	rss      *rssLog
	check    checkResult
	dropped  int
	// generatorCores is the share of a core the load generator (this process) used.
	generatorCores float64
}

// write writes the run folder's files, prints the summary and says whether the run passed.
func (r report) write(dir string) (bool, error) {
	var b bytes.Buffer
	passed := r.summary(&b)
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), b.Bytes(), 0o600); err != nil {
		return false, err
	}
	var svg bytes.Buffer
	r.plot(&svg)
	if err := os.WriteFile(filepath.Join(dir, "latency.svg"), svg.Bytes(), 0o600); err != nil {
		return false, err
	}
	fmt.Print(b.String())
	fmt.Printf("\nwritten: %s, %s\n", filepath.Join(dir, "summary.md"), filepath.Join(dir, "latency.svg"))
	return passed, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func (r report) buckets() int {
	return int(math.Ceil(float64(r.ran) / float64(r.rec.bucket)))
}

// summary writes the tables and the verdict and returns whether every criterion held.
func (r report) summary(b *bytes.Buffer) bool {
	fmt.Fprintf(b, "# Latchkey soak, %s\n\n", r.start.UTC().Format(time.RFC3339))
	fmt.Fprintf(b, "%d replicas (embedded mode, --store redis, one signing key file, ES256) and redis-server (append-only file) pinned to core 0, "+
		"the load generator on core 1. Throughput of the mix in a closed loop (%d in flight, %s) %.0f operations/s; capacity in an open loop "+
		"(the highest rate kept up with) %.0f operations/s; load %.0f operations/s (%d%%) for %s, open model.\n\n",
		replicaCount, r.o.workers, r.o.calibrate, r.closed, r.capacity, r.rate, r.o.loadPct, r.ran.Round(time.Second))
	b.WriteString("Operations (weight): ")
	for i, op := range mix {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%s %d%%", op.name, op.weight)
	}
	b.WriteString(".\n\n## Faults\n\n| at | event |\n|---:|---|\n")
	r.faults.mu.Lock()
	for _, e := range r.faults.events {
		fmt.Fprintf(b, "| +%s | %s |\n", e.at.Sub(r.start).Round(100*time.Millisecond), e.what)
	}
	r.faults.mu.Unlock()

	b.WriteString("\n## Endpoints, whole run\n\n| endpoint | requests | p50 ms | p99 ms | max ms | deliberate non-2xx or errors (cause) | failures |\n|---|---:|---:|---:|---:|---|---:|\n")
	r.rec.mu.Lock()
	counts, failedBy, deliberate := r.rec.count, r.rec.failed, r.rec.deliberate
	retried, failures := r.rec.retried, r.rec.failures
	r.rec.mu.Unlock()
	for _, ep := range endpoints {
		all := r.rec.all(ep)
		var causes []string
		for why, n := range deliberate[ep] {
			causes = append(causes, fmt.Sprintf("%d %s", n, why))
		}
		sort.Strings(causes)
		var maxLat time.Duration
		if len(all) > 0 {
			maxLat = all[len(all)-1]
		}
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %d |\n", ep, counts[ep], ms(quantile(all, 0.5)), ms(quantile(all, 0.99)),
			ms(maxLat), strings.Join(causes, "; "), failedBy[ep])
	}
	fmt.Fprintf(b, "\n%d requests were resent to another replica after a transport error (the balancer; they count once, by their final answer).\n", retried)

	fmt.Fprintf(b, "\n## p99 per endpoint over time (ms, %s buckets; empty: no request)\n\n| from | ", r.rec.bucket)
	b.WriteString(strings.Join(endpoints, " | "))
	b.WriteString(" |\n|---:|" + strings.Repeat("---:|", len(endpoints)) + "\n")
	n := r.buckets()
	series := make([][]time.Duration, len(endpoints))
	for i, ep := range endpoints {
		series[i] = r.rec.p99s(ep, n)
	}
	for k := range n {
		fmt.Fprintf(b, "| +%s |", time.Duration(k)*r.rec.bucket)
		for i := range endpoints {
			if series[i][k] == 0 {
				b.WriteString(" |")
				continue
			}
			fmt.Fprintf(b, " %s |", ms(series[i][k]))
		}
		b.WriteString("\n")
	}

	rssOK := true
	early := rssEarly(r.o.duration)
	fmt.Fprintf(b, "\n## Resident memory and CPU (process_resident_memory_bytes, process_cpu_seconds_total)\n\n"+
		"The CPU column is the share of a core the replica used from the start of the load to the end (the killed one: from the restart); "+
		"with the three replicas and Redis on core 0, their sum near 1 means that core was the limit, well under 1 that something else was "+
		"(other work on the machine, or the load generator). The load generator used %.2f of core 1.\n\n"+
		"| replica | RSS at +%s MiB | RSS at the end MiB | ratio | limit | CPU (cores) |\n|---|---:|---:|---:|---|---:|\n", r.generatorCores, early)
	for i := range replicaCount {
		name := fmt.Sprintf("replica-%d", i)
		first, last, ok := r.rss.between(name, early)
		if !ok {
			fmt.Fprintf(b, "| %s | no sample | | | |\n", name)
			rssOK = false
			continue
		}
		ratio := last.bytes / first.bytes
		limit := fmt.Sprintf("<= %.1f", rssLimit)
		if i == killedReplica {
			// Its process started again at the kill: the early sample is of the first process.
			limit = "not judged: killed and started again"
		} else if ratio > rssLimit {
			rssOK = false
		}
		cpuFrom := time.Duration(0)
		if i == killedReplica {
			r.faults.mu.Lock()
			cpuFrom = r.faults.back[i].Sub(r.start)
			r.faults.mu.Unlock()
		}
		fmt.Fprintf(b, "| %s | %.1f | %.1f | %.2f | %s | %.2f |\n", name, first.bytes/(1<<20), last.bytes/(1<<20), ratio, limit, r.rss.cpuShare(name, cpuFrom))
	}

	c := r.check
	fmt.Fprintf(b, "\n## Refresh chains\n\nAt the end: %d live chains; %d last tokens redeemed exactly once (200; at once again the same successor or refused; refused after the reuse grace), %d refused at the first presentation (lost), %d redeemed twice (another successor, or a 2xx after the grace). "+
		"During the run: %d chains lost an acknowledged token, %d were revoked on purpose, %d were cut by the replica kill (a rotation whose answer was lost; not an acknowledged token).\n",
		c.live, c.redeemedOnce, c.lost, c.redeemedTwice, c.lostDuringRun, c.revoked, c.cut)

	failuresTotal := sum(failedBy)
	verdicts := []struct {
		ok   bool
		text string
	}{
		{failuresTotal == 0, fmt.Sprintf("no non-2xx answer or transport error except the deliberate ones: %d failures", failuresTotal)},
		{r.dropped == 0, fmt.Sprintf("the load generator kept the rate: %d operations dropped", r.dropped)},
		{c.lost == 0 && c.lostDuringRun == 0 && c.redeemedTwice == 0 && c.redeemedOnce == c.live,
			fmt.Sprintf("no acknowledged refresh token lost: %d of %d last tokens redeemed exactly once", c.redeemedOnce, c.live)},
		{rssOK, fmt.Sprintf("RSS at the end <= %.1fx RSS at +%s for the replicas not killed", rssLimit, early)},
	}
	b.WriteString("\n## Verdict\n\n")
	passed := true
	for _, v := range verdicts {
		mark := "PASS"
		if !v.ok {
			mark, passed = "FAIL", false
		}
		fmt.Fprintf(b, "- %s: %s\n", mark, v.text)
	}
	if len(failures) > 0 {
		b.WriteString("\n## First failures\n\n")
		for _, f := range failures {
			fmt.Fprintf(b, "- %s\n", strings.ReplaceAll(f, "\n", " "))
		}
	}
	return passed
}

// The plot's geometry, in SVG user units.
const (
	plotW, plotH                               = 960, 520
	marginL, marginR, marginT, marginB         = 70, 220, 40, 50
	plotInnerW, plotInnerH             float64 = plotW - marginL - marginR, plotH - marginT - marginB
)

var colors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"} //nolint:gochecknoglobals // palette

// plot draws p99 per endpoint over time on a log scale, with the faults as vertical lines.
func (r report) plot(b *bytes.Buffer) {
	n := r.buckets()
	series := make([][]time.Duration, len(endpoints))
	top := time.Millisecond
	for i, ep := range endpoints {
		series[i] = r.rec.p99s(ep, n)
		for _, v := range series[i] {
			top = max(top, v)
		}
	}
	// Decades from 0.1 ms to the first power of ten above the highest p99.
	lo, hi := -1.0, math.Ceil(math.Log10(float64(top)/float64(time.Millisecond)))
	y := func(d time.Duration) float64 {
		v := math.Log10(max(float64(d)/float64(time.Millisecond), 0.1))
		return marginT + plotInnerH*(1-(v-lo)/(hi-lo))
	}
	total := float64(r.ran)
	x := func(at time.Duration) float64 { return marginL + plotInnerW*float64(at)/total }

	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(b, `<text x="%d" y="22" font-size="15">Latchkey soak: p99 latency per endpoint (%s buckets), %s at %.0f ops/s</text>`+"\n",
		marginL, r.rec.bucket, r.ran.Round(time.Second), r.rate)
	for d := lo; d <= hi; d++ {
		yy := y(time.Duration(math.Pow(10, d) * float64(time.Millisecond)))
		fmt.Fprintf(b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, marginL+plotInnerW, yy, yy)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%g ms</text>`+"\n", marginL-6, yy+4, math.Pow(10, d))
	}
	step := max(time.Minute, (r.ran / 10).Round(time.Minute))
	if r.ran < 5*time.Minute {
		step = max(10*time.Second, (r.ran / 6).Round(10*time.Second))
	}
	for t := time.Duration(0); t <= r.ran; t += step {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(t), plotH-marginB+18, t)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">time since the load started</text>`+"\n", marginL+plotInnerW/2, plotH-12)
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", marginL, marginT, plotInnerW, plotInnerH)
	r.faults.mu.Lock()
	for i, e := range r.faults.events {
		xx := x(e.at.Sub(r.start))
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="#999" stroke-dasharray="4 3"/>`+"\n", xx, xx, marginT, marginT+plotInnerH)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="10" fill="#555">%s</text>`+"\n", xx+3, marginT+12+12*(i%4), html.EscapeString(e.what))
	}
	r.faults.mu.Unlock()
	for i, ep := range endpoints {
		var pts []string
		for k, v := range series[i] {
			if v == 0 {
				continue
			}
			mid := time.Duration(k)*r.rec.bucket + r.rec.bucket/2
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(min(mid, r.ran)), y(v)))
		}
		c := colors[i%len(colors)]
		if len(pts) > 0 {
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		}
		ly := marginT + 10 + 18*i
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", marginL+plotInnerW+12, marginL+plotInnerW+32, ly, ly, c)
		fmt.Fprintf(b, `<text x="%.1f" y="%d">%s</text>`+"\n", marginL+plotInnerW+38, ly+4, html.EscapeString(ep))
	}
	b.WriteString("</svg>\n")
}
