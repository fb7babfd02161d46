package main

import (
	"os"
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
