package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTailRatesArePercentagesFromOneToAHundred(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []int
		wantErr bool
	}{
		{"an empty list means no tail table", "", nil, false},
		{"the default list is read in order", "25,50,75", []int{25, 50, 75}, false},
		{"spaces around a number are allowed", " 10, 90", []int{10, 90}, false},
		{"zero is refused", "0,50", nil, true},
		{"more than a hundred is refused", "50,101", nil, true},
		{"a word is refused", "half", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePercents(tt.in)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestTheMedianOfTheRoundsIsTheMiddleOne(t *testing.T) {
	assert.Zero(t, median(nil))
	assert.InDelta(t, 3.0, median([]float64{5, 1, 3}), 0)
	assert.InDelta(t, 2.5, median([]float64{4, 1, 3, 2}), 0)
}

func TestSummarizeGivesTheRateAndExactPercentiles(t *testing.T) {
	lat := make([]time.Duration, 0, 100)
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	r := summarize(lat, 10*time.Second)
	assert.InDelta(t, 10.0, r.rate, 1e-9)
	assert.Equal(t, "51.00ms", r.p50)
	assert.Equal(t, "100.00ms", r.p99)
	assert.InDelta(t, 51.0, r.p50ms, 1e-9)
	assert.InDelta(t, 100.0, r.p99ms, 1e-9)
}

func TestATailRowGivesTheMediansAndEveryRunsP99(t *testing.T) {
	var row tailRow
	row.add(result{rate: 9000, p50ms: 0.16, p99ms: 1.40}, result{p99ms: 0.40}, 0.30)
	row.add(result{rate: 8990, p50ms: 0.17, p99ms: 13.10, generatorGCs: 1, stalls: stalls{Count: 2, Longest: 14 * time.Millisecond}}, result{p99ms: 1.30}, 0.40)
	row.add(result{rate: 9010, p50ms: 0.15, p99ms: 1.25}, result{p99ms: 0.50}, 0.35)
	assert.InDelta(t, 9000.0, median(row.achieved), 1e-9)
	got := strings.Fields(row.String())
	assert.Equal(t, []string{"0.16ms", "1.40ms", "1.40", "/", "13.10", "/", "1.25", "ms", "0.50ms", "35%", "1", "-", "/", "2:14ms", "/", "-"}, got,
		"medians of p50, p99, floor p99 and CPU wait; each run's p99 and stalls in run order; the generator's collections summed")
}

func TestATailRowWithoutPressureAccountingSaysSo(t *testing.T) {
	var row tailRow
	row.add(result{p50ms: 0.2, p99ms: 1}, result{p99ms: 0.5}, waitFraction(0, time.Second, false, time.Second))
	assert.Contains(t, row.String(), "n/a")
	assert.InDelta(t, 0.25, waitFraction(time.Second, 2*time.Second, true, 4*time.Second), 1e-9)
}

func TestProcessCPUReadsThisProcess(t *testing.T) {
	before, err := processCPU(os.Getpid())
	require.NoError(t, err)
	// Spin until the clock ticks (10 ms of CPU), at most 10 s of wall time on a busy machine.
	after := before
	for deadline := time.Now().Add(10 * time.Second); after == before && time.Now().Before(deadline); {
		after, err = processCPU(os.Getpid())
		require.NoError(t, err)
	}
	assert.Greater(t, after, before, "spinning shows in the process's CPU time")
	_, err = processCPU(0)
	assert.Error(t, err)
}

func TestPerCPUSecondDividesTheRequestsByTheServersCPUTime(t *testing.T) {
	tests := []struct {
		name          string
		n             int
		before, after time.Duration
		want          float64
	}{
		{"requests over the CPU time used between the readings", 5000, 2 * time.Second, 2500 * time.Millisecond, 10000},
		{"no CPU time used gives no figure", 5000, time.Second, time.Second, 0},
		{"a reading going backwards gives no figure", 5000, 2 * time.Second, time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.want, perCPUSecond(tt.n, tt.before, tt.after), 1e-9)
		})
	}
}

func TestAStallProbeCountsTheLateWakeUpsThatOverlapASpan(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var p stallProbe
	p.note(at(100), stallThreshold-time.Microsecond) // under the threshold: no stall
	p.note(at(200), 6*time.Millisecond)              // before the span
	p.note(at(1005), 40*time.Millisecond)            // began before the span, ended in it
	p.note(at(1500), 5*time.Millisecond)             // in it
	p.note(at(2100), 50*time.Millisecond)            // began in it, ended after it
	p.note(at(2500), 7*time.Millisecond)             // after it
	got := p.between(at(1000), at(2060))
	assert.Equal(t, stalls{Count: 3, Longest: 50 * time.Millisecond}, got)
	assert.Equal(t, "3:50ms", got.String())
	assert.Equal(t, stalls{Count: 1, Longest: 7 * time.Millisecond}, p.between(at(2200), at(3000)), "a later span sees only its own")
	assert.Equal(t, "-", stalls{}.String())
	assert.Equal(t, stalls{Count: 4, Longest: 50 * time.Millisecond}, got.plus(stalls{Count: 1, Longest: 7 * time.Millisecond}))
}

func TestTheFloorServersProbeIsReadOverHTTP(t *testing.T) {
	p := &stallProbe{}
	now := time.Now()
	p.note(now, 12*time.Millisecond)
	srv := httptest.NewServer(p)
	defer srv.Close()
	got, err := fetchStalls(t.Context(), srv.URL, now.Add(-time.Second), now.Add(time.Second))
	require.NoError(t, err)
	assert.Equal(t, stalls{Count: 1, Longest: 12 * time.Millisecond}, got)
	got, err = fetchStalls(t.Context(), srv.URL, now.Add(time.Second), now.Add(2*time.Second))
	require.NoError(t, err)
	assert.Zero(t, got.Count, "a span after the stall sees none")
	resp, err := http.Get(srv.URL + stallsPath + "?from=soon") //nolint:noctx // test
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	none := httptest.NewServer(http.NotFoundHandler())
	defer none.Close()
	_, err = fetchStalls(t.Context(), none.URL, now, now)
	assert.Error(t, err, "a server without a probe is an error, not zero stalls")
}
