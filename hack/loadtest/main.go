// Command loadtest is the loopback load run of `make bench`: it starts the built latchkey binary in
// the embedded mode pinned to one core (taskset -c 0, GOMAXPROCS=1) with the memory or the Redis
// store (-store), drives its token endpoint from the other core (core 1) and prints, per scenario
// and signing algorithm, tokens per second per core (the server's one core) and p50/p99 latency.
//
// Scenarios (-scenarios):
//   - client_credentials: wrk, 64 keep-alive connections, basic-authenticated client.
//   - refresh: a Go load generator (this process, pinned to core 1): each keep-alive connection
//     holds its own refresh token, got with the password grant before the measurement, and
//     presents the token each response rotates to.
//
// The authorization_code exchange is not loaded here (each request needs a fresh code, i.e. a
// whole authorize and bcrypt login); BenchmarkCodeExchange and BenchmarkCodeExchangeRedis in
// server/oauth2 measure it.
//
// With -store redis the run starts its own redis-server (no persistence) on a free loopback port,
// pinned to core 1: Redis shares the load generator's core, so the server's core only does the
// server's work, and the load generator and Redis compete for the other.
//
// With -clients N the server also loads N generated typical clients (internal/genclients), so
// that a run measures throughput with a large registry: compare -clients 1000 with -clients
// 1000000 (the target: at least 90%).
//
// Traffic goes to 127.0.0.1 only, and every run is bounded by -duration.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey-dev/latchkey/internal/genclients"
)

type options struct {
	binary      string
	duration    time.Duration
	connections int
	algorithms  string
	store       string
	scenarios   string
	clients     int
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/latchkey", "latchkey binary to measure")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "load duration per scenario and algorithm")
	flag.IntVar(&o.connections, "connections", 64, "keep-alive connections")
	flag.StringVar(&o.algorithms, "algorithms", "RS256,ES256,EdDSA", "algorithms to measure")
	flag.StringVar(&o.store, "store", "memory", "leased store of the server: memory, or redis (a redis-server this run starts, on core 1)")
	flag.StringVar(&o.scenarios, "scenarios", "client_credentials,refresh", "scenarios to run: client_credentials, refresh")
	flag.IntVar(&o.clients, "clients", 0, "typical clients loaded besides the measured ones (internal/genclients, documents in JSON form), "+
		"to measure throughput with a large registry")
	flag.Parse()
	if o.duration < time.Second {
		fmt.Fprintln(os.Stderr, "loadtest: -duration must be at least 1s")
		os.Exit(2)
	}
	if o.store != "memory" && o.store != "redis" {
		fmt.Fprintln(os.Stderr, "loadtest: -store must be memory or redis")
		os.Exit(2)
	}
	for _, sc := range strings.Split(o.scenarios, ",") {
		if sc != scenarioClientCredentials && sc != scenarioRefresh {
			fmt.Fprintf(os.Stderr, "loadtest: unknown scenario %q\n", sc)
			os.Exit(2)
		}
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

const (
	scenarioClientCredentials = "client_credentials"
	scenarioRefresh           = "refresh"
)

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
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: refresh-%[1]s, namespace: default}
spec:
  clientID: refresh-%[1]s
  grantTypes: [password, refresh_token]
  secretPolicy: External
  secretRef: {name: refresh-%[1]s, key: client-secret}
  signingAlgorithm: %[2]s
---
apiVersion: v1
kind: Secret
metadata: {name: refresh-%[1]s, namespace: default}
stringData: {client-secret: refresh-secret-%[1]s}
`

// userManifest is the user of the refresh scenario: bench / bench-password (bcrypt, cost 10).
const userManifest = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: User
metadata: {name: bench, namespace: default}
spec:
  username: bench
  passwordSecretRef: {namespace: default, name: bench-password, key: hash}
---
apiVersion: v1
kind: Secret
metadata: {name: bench-password, namespace: default}
stringData: {hash: %s}
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
	// The refresh load generator is this process: pin all its threads to core 1 (wrk's core).
	if out, err := exec.CommandContext(context.Background(), "taskset", "-a", "-p", "-c", "1", strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
		return fmt.Errorf("taskset: %w: %s", err, out)
	}
	dir, err := os.MkdirTemp("", "latchkey-loadtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir) //nolint:errcheck // temp
	algs := strings.Split(o.algorithms, ",")
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPassword), 10)
	if err != nil {
		return err
	}
	var manifests strings.Builder
	fmt.Fprintf(&manifests, userManifest, hash)
	for _, alg := range algs {
		manifests.WriteString("---\n")
		fmt.Fprintf(&manifests, manifestTemplate, strings.ToLower(alg), alg)
	}
	// The manifests have a folder of their own: the server reloads its folder on every change in
	// it, and the audit log, wrk's script and Redis write beside it during the run.
	manifestsDir := filepath.Join(dir, "manifests")
	if err := os.Mkdir(manifestsDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(manifestsDir, "clients.yaml"), []byte(manifests.String()), 0o600); err != nil {
		return err
	}
	if o.clients > 0 {
		if err := genclients.Write(filepath.Join(manifestsDir, "generated"), genclients.Options{Clients: o.clients, JSON: true}); err != nil {
			return err
		}
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
	args := []string{"-c", "0", o.binary, "serve", "--manifests", manifestsDir,
		"--listen-address", addr, "--health-probe-bind-address", probe, "--zap-log-level", "error", "--store", o.store,
		// The audit log stays on (as in production) but goes to a file, not the terminal.
		"--audit-log", filepath.Join(dir, "audit.log"), "--metrics-bind-address", "0"}
	if o.store == "redis" {
		raddr, stop, err := startRedis(ctx, dir)
		if err != nil {
			return err
		}
		defer stop()
		args = append(args, "--redis-address", raddr)
	}
	server := exec.CommandContext(ctx, "taskset", args...)
	server.Env = append(os.Environ(), "GOMAXPROCS=1")
	server.Stderr = os.Stderr
	if err := server.Start(); err != nil {
		return err
	}
	defer func() { _ = server.Process.Signal(os.Interrupt); _ = server.Wait() }()
	started := time.Now()
	// A large registry takes a while on one core: a minute or more per million clients, more on a
	// shared machine.
	if err := waitReady(ctx, "http://"+probe+"/readyz", 30*time.Second+time.Duration(o.clients)*time.Millisecond); err != nil {
		return err
	}
	if o.clients > 0 {
		fmt.Printf("%d generated clients loaded in %s on one core\n", o.clients, time.Since(started).Round(100*time.Millisecond))
	}
	where := "load generator on core 1"
	if o.store == "redis" {
		where = "load generator and redis-server share core 1"
	}
	fmt.Printf("loopback load, store %s: server on core 0 (GOMAXPROCS=1), %s, %d connections, %s per row\n",
		o.store, where, o.connections, o.duration)
	fmt.Printf("%-18s %-6s %-6s %14s %10s %10s %8s\n", "scenario", "store", "alg", "tokens/s/core", "p50", "p99", "non-2xx")
	token := "http://" + addr + "/oauth2/token"
	for _, sc := range strings.Split(o.scenarios, ",") {
		for _, alg := range algs {
			var res result
			var err error
			switch lower := strings.ToLower(alg); sc {
			case scenarioClientCredentials:
				res, err = load(ctx, o, token, basic("bench-"+lower, "bench-secret-"+lower), dir)
			case scenarioRefresh:
				res, err = refreshLoad(ctx, o, token, basic("refresh-"+lower, "refresh-secret-"+lower))
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", sc, alg, err)
			}
			fmt.Printf("%-18s %-6s %-6s %14.0f %10s %10s %8d\n", sc, o.store, alg, res.rate, res.p50, res.p99, res.non2xx)
		}
	}
	fmt.Println("authorization_code exchange: not loaded here (each request needs a fresh code from a bcrypt login);",
		"see BenchmarkCodeExchange and BenchmarkCodeExchangeRedis (redis-rt/op) in the Go benchmarks above")
	return nil
}

// startRedis starts redis-server without persistence on a free loopback port, pinned to core 1
// (the load generator's), and returns its address once it answers PING.
func startRedis(ctx context.Context, dir string) (string, func(), error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "", nil, errors.New("redis-server is needed (hack/apt-install.sh redis-server)")
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(ctx, "taskset", "-c", "1", "redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pingRedis(ctx, addr) == nil {
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server on %s did not start", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pingRedis(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close() //nolint:errcheck // probe
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "+PONG\r\n" {
		return fmt.Errorf("redis answered %q", buf)
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

func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
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
	return fmt.Errorf("server not ready within %s", timeout)
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
