package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// benchPassword is the password of the refresh scenario's user.
const benchPassword = "bench-password"

// refreshLoad runs the refresh scenario: o.connections keep-alive connections, each with a
// refresh token of its own (a password grant each, before the clock starts), each presenting
// the token the previous response rotated to. One second of warm-up, then o.duration measured.
func refreshLoad(ctx context.Context, o options, srv *server, auth string) (result, error) {
	tokenURL := srv.base + "/oauth2/token"
	n := o.connections
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n, MaxConnsPerHost: n, DisableCompression: true},
		Timeout:   10 * time.Second,
	}
	defer client.CloseIdleConnections()
	tokens := make([]string, n)
	for i := range tokens {
		status, body, err := post(ctx, client, tokenURL, auth, url.Values{
			"grant_type": {"password"}, "username": {"bench"}, "password": {benchPassword},
		}.Encode())
		if err != nil {
			return result{}, fmt.Errorf("password grant: %w", err)
		}
		tokens[i] = refreshToken(body)
		if status != http.StatusOK || tokens[i] == "" {
			return result{}, fmt.Errorf("password grant: status %d: %s", status, body)
		}
	}
	start := time.Now()
	measureFrom, end := start.Add(time.Second), start.Add(time.Second+o.duration)
	// The server's CPU time at measureFrom and at end.
	cpu := make(chan [2]time.Duration, 1)
	go func() {
		var at [2]time.Duration
		for i, t := range []time.Time{measureFrom, end} {
			time.Sleep(time.Until(t))
			at[i], _ = srv.cpu() // 0 on an error: no per-CPU figure
		}
		cpu <- at
	}()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		non2xx    int
		firstErr  error
		wg        sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			var lat []time.Duration
			bad := 0
			var failure error
			token := tokens[i]
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				status, body, err := post(ctx, client, tokenURL, auth, "grant_type=refresh_token&refresh_token="+token)
				t1 := time.Now()
				if err != nil {
					failure = err
					break
				}
				if status/100 != 2 {
					// The chain is broken: a rejected token has no successor.
					bad++
					failure = fmt.Errorf("status %d: %s", status, body)
					break
				}
				if token = refreshToken(body); token == "" {
					failure = fmt.Errorf("no refresh_token in %s", body)
					break
				}
				if !t0.Before(measureFrom) && !t1.After(end) {
					lat = append(lat, t1.Sub(t0))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			latencies = append(latencies, lat...)
			non2xx += bad
			if firstErr == nil {
				firstErr = failure
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return result{}, fmt.Errorf("%d responses were not 2xx; first failure: %w", non2xx, firstErr)
	}
	if len(latencies) == 0 {
		return result{}, errors.New("no request completed")
	}
	res := summarize(latencies, o.duration)
	at := <-cpu
	res.perCPUSecond = perCPUSecond(len(latencies), at[0], at[1])
	return res, nil
}

func post(ctx context.Context, c *http.Client, tokenURL, auth, form string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+auth)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close() //nolint:errcheck // read fully below
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// refreshToken picks the refresh_token out of a token response.
func refreshToken(body []byte) string {
	const key = `"refresh_token":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// ms formats a latency the way wrk does (two decimals in milliseconds).
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
