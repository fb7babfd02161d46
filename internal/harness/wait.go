package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

const (
	// pollInterval is how often a readiness condition is checked.
	pollInterval = 100 * time.Millisecond
	// checkTimeout bounds one check (one HTTP request, one PING).
	checkTimeout = 2 * time.Second
)

// WaitHTTP polls url with GET until it answers 200, ctx is done or timeout passes; the error
// says what the last attempt got.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	if err := poll(ctx, timeout, nil, func(ctx context.Context) error { return getOK(ctx, url) }); err != nil {
		return fmt.Errorf("%s not ready within %s: %w", url, timeout, err)
	}
	return nil
}

// getOK is one GET of url that must answer 200.
func getOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

// poll runs check every pollInterval until it succeeds, ctx is done, timeout passes or stop is
// closed (nil: never), and returns the last check's error when it never succeeded.
func poll(ctx context.Context, timeout time.Duration, stop <-chan struct{}, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		cctx, ccancel := context.WithTimeout(ctx, checkTimeout)
		err := check(cctx)
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-stop:
			return err
		case <-tick.C:
		}
	}
}
