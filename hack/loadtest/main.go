// Command loadtest is the loopback load run of `make bench`: it starts the built latchkey binary in
// the embedded mode pinned to one core (taskset -c 0, GOMAXPROCS=1), drives its token endpoint
// with wrk (64 keep-alive connections, pinned to the other core) for client_credentials clients
// signing with RS256, ES256 and EdDSA, and prints tokens per second per core and p50/p99 latency.
//
// Traffic goes to 127.0.0.1 only, and every run is bounded by -duration.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

type options struct {
	binary      string
	duration    time.Duration
	connections int
	algorithms  string
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/latchkey", "latchkey binary to measure")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "load duration per algorithm")
	flag.IntVar(&o.connections, "connections", 64, "keep-alive connections")
	flag.StringVar(&o.algorithms, "algorithms", "RS256,ES256,EdDSA", "algorithms to measure")
	flag.Parse()
	if o.duration < time.Second {
		fmt.Fprintln(os.Stderr, "loadtest: -duration must be at least 1s")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

const manifestTemplate = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: bench-%[1]s, namespace: default}
spec:
  clientID: bench-%[1]s
  grantTypes: [client_credentials]
  secretPolicy: External
  secretRef: {name: bench-%[1]s, key: client-secret}
  signingAlgorithm: %[2]s
---
apiVersion: v1
kind: Secret
metadata: {name: bench-%[1]s, namespace: default}
stringData: {client-secret: bench-secret-%[1]s}
`

const wrkScript = `wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic %s"
`

func run(o options) error {
	for _, tool := range []string{"wrk", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed (apt-get install -y %s)", tool, map[string]string{"wrk": "wrk", "taskset": "util-linux"}[tool])
		}
	}
	dir, err := os.MkdirTemp("", "latchkey-loadtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir) //nolint:errcheck // temp
	algs := strings.Split(o.algorithms, ",")
	var manifests strings.Builder
	for _, alg := range algs {
		fmt.Fprintf(&manifests, manifestTemplate, strings.ToLower(alg), alg)
		manifests.WriteString("---\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "clients.yaml"), []byte(manifests.String()), 0o600); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	probe, err := freeAddr()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server := exec.CommandContext(ctx, "taskset", "-c", "0", o.binary, "serve", "--manifests", dir,
		"--listen-address", addr, "--health-probe-bind-address", probe, "--zap-log-level", "error")
	server.Env = append(os.Environ(), "GOMAXPROCS=1")
	server.Stderr = os.Stderr
	if err := server.Start(); err != nil {
		return err
	}
	defer func() { _ = server.Process.Signal(os.Interrupt); _ = server.Wait() }()
	if err := waitReady(ctx, "http://"+probe+"/readyz"); err != nil {
		return err
	}
	fmt.Printf("loopback load: server on core 0 (GOMAXPROCS=1), wrk on core 1, %d connections, %s per algorithm\n", o.connections, o.duration)
	fmt.Printf("%-6s %12s %10s %10s %8s\n", "alg", "tokens/s/core", "p50", "p99", "non-2xx")
	for _, alg := range algs {
		id := "bench-" + strings.ToLower(alg)
		res, err := load(ctx, o, "http://"+addr+"/oauth2/token", basic(id, "bench-secret-"+strings.ToLower(alg)), dir)
		if err != nil {
			return fmt.Errorf("%s: %w", alg, err)
		}
		fmt.Printf("%-6s %12.0f %10s %10s %8d\n", alg, res.rate, res.p50, res.p99, res.non2xx)
	}
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close() //nolint:errcheck // only picks a port
	return l.Addr().String(), nil
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("server not ready within 30s")
}

func basic(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))
}

type result struct {
	rate     float64
	p50, p99 string
	non2xx   int
}

var (
	rateRe   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p50Re    = regexp.MustCompile(`\n\s+50%\s+(\S+)`)
	p99Re    = regexp.MustCompile(`\n\s+99%\s+(\S+)`)
	non2xxRe = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
)

func load(ctx context.Context, o options, url, auth, dir string) (result, error) {
	script := filepath.Join(dir, "post.lua")
	if err := os.WriteFile(script, fmt.Appendf(nil, wrkScript, auth), 0o600); err != nil {
		return result{}, err
	}
	// Warm up for a second, then measure.
	for i, d := range []time.Duration{time.Second, o.duration} {
		cmd := exec.CommandContext(ctx, "taskset", "-c", "1", "wrk", "-t1", fmt.Sprintf("-c%d", o.connections),
			fmt.Sprintf("-d%ds", int(d.Round(time.Second).Seconds())), "--latency", "-s", script, url)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return result{}, fmt.Errorf("wrk: %w: %s", err, out)
		}
		if i == 0 {
			continue
		}
		text := string(out)
		var r result
		if m := rateRe.FindStringSubmatch(text); m != nil {
			_, _ = fmt.Sscan(m[1], &r.rate)
		}
		if m := p50Re.FindStringSubmatch(text); m != nil {
			r.p50 = m[1]
		}
		if m := p99Re.FindStringSubmatch(text); m != nil {
			r.p99 = m[1]
		}
		if m := non2xxRe.FindStringSubmatch(text); m != nil {
			_, _ = fmt.Sscan(m[1], &r.non2xx)
		}
		if r.rate == 0 {
			return result{}, fmt.Errorf("could not read wrk output:\n%s", text)
		}
		if r.non2xx > 0 {
			// A fast stream of errors is no measurement of token issuance.
			return result{}, fmt.Errorf("%d responses were not 2xx:\n%s", r.non2xx, text)
		}
		return r, nil
	}
	return result{}, nil
}
