// Command loadtest is the loopback load run of `make bench`: it starts the built latchkey binary in
// the embedded mode pinned to one core (taskset -c 0, GOMAXPROCS=1) with the memory or the Redis
// store (-store), drives it from the other core (core 1) and prints, per scenario and signing
// algorithm, requests per second of the server's one core (wall clock), requests per second of
// the server's CPU time (from /proc/<pid>/stat: the figure to compare when other processes share
// core 0, as on a shared machine), and p50/p99 latency.
//
// Scenarios (-scenarios):
//   - client_credentials: wrk, 64 keep-alive connections, basic-authenticated client.
//   - refresh: a Go load generator (this process, pinned to core 1): each keep-alive connection
//     holds its own refresh token, got with the password grant before the measurement, and
//     presents the token each response rotates to.
//   - introspection: wrk, 64 keep-alive connections, a resource server (basic-authenticated,
//     spec.introspection) introspecting one client_credentials access token of the algorithm
//     over and over, as a resource server asks about the token of each request: the cache of
//     verified access tokens answers (row introspection, a hit). Row introspection-miss is the
//     same against a second server started with --access-token-cache-size 0, so every request
//     verifies the signature. The token must introspect as active before and after each row.
//
// The authorization_code exchange is not loaded here (each request needs a fresh code, i.e. a
// whole authorize and bcrypt login); BenchmarkCodeExchange and BenchmarkCodeExchangeRedis in
// server/oauth2 measure it.
//
// With -store redis the run starts its own redis-server (no persistence) on a free loopback port,
// pinned to core 1: Redis shares the load generator's core, so the server's core only does the
// server's work, and the load generator and Redis compete for the other.
//
// Traffic goes to 127.0.0.1 only, and every run is bounded by -duration.
package main

import (
	"bytes"
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
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

type options struct {
	binary      string
	duration    time.Duration
	connections int
	algorithms  string
	store       string
	scenarios   string
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/latchkey", "latchkey binary to measure")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "load duration per scenario and algorithm")
	flag.IntVar(&o.connections, "connections", 64, "keep-alive connections")
	flag.StringVar(&o.algorithms, "algorithms", "RS256,ES256,EdDSA", "algorithms to measure")
	flag.StringVar(&o.store, "store", "memory", "leased store of the server: memory, or redis (a redis-server this run starts, on core 1)")
	flag.StringVar(&o.scenarios, "scenarios", "client_credentials,refresh,introspection", "scenarios to run: client_credentials, refresh, introspection (hit and miss rows)")
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
		if sc != scenarioClientCredentials && sc != scenarioRefresh && sc != scenarioIntrospection {
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
	scenarioIntrospection     = "introspection"
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

// resourceManifest is the resource server of the introspection scenario.
const resourceManifest = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: resource, namespace: default}
spec:
  clientID: resource
  grantTypes: [client_credentials]
  introspection: true
  secretPolicy: External
  secretRef: {name: resource, key: client-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: resource, namespace: default}
stringData: {client-secret: resource-secret}
`

const wrkScript = `wrk.method = "POST"
wrk.body = "%s"
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
	manifests.WriteString("---\n" + resourceManifest)
	for _, alg := range algs {
		manifests.WriteString("---\n")
		fmt.Fprintf(&manifests, manifestTemplate, strings.ToLower(alg), alg)
	}
	if err := os.WriteFile(filepath.Join(dir, "clients.yaml"), []byte(manifests.String()), 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var redisAddr string
	if o.store == "redis" {
		raddr, stop, err := startRedis(ctx, dir)
		if err != nil {
			return err
		}
		defer stop()
		redisAddr = raddr
	}
	srv, err := startServer(ctx, o, dir, redisAddr)
	if err != nil {
		return err
	}
	defer func() { // the server of the moment: the introspection scenario restarts it
		if srv != nil {
			srv.stop()
		}
	}()
	where := "load generator on core 1"
	if o.store == "redis" {
		where = "load generator and redis-server share core 1"
	}
	fmt.Printf("loopback load, store %s: server on core 0 (GOMAXPROCS=1), %s, %d connections, %s per row\n",
		o.store, where, o.connections, o.duration)
	fmt.Println("requests/s is the wall-clock rate of the server's one core; per CPU-s divides the requests by the CPU time",
		"the server used meanwhile (/proc/<pid>/stat), which other processes on core 0 do not inflate")
	fmt.Printf("%-18s %-6s %-6s %11s %11s %10s %10s %8s\n", "scenario", "store", "alg", "requests/s", "per CPU-s", "p50", "p99", "non-2xx")
	for _, sc := range strings.Split(o.scenarios, ",") {
		for _, alg := range algs {
			var res result
			var err error
			switch lower := strings.ToLower(alg); sc {
			case scenarioClientCredentials:
				res, err = load(ctx, o, srv, "/oauth2/token", "grant_type=client_credentials", basic("bench-"+lower, "bench-secret-"+lower), dir)
			case scenarioRefresh:
				res, err = refreshLoad(ctx, o, srv, basic("refresh-"+lower, "refresh-secret-"+lower))
			case scenarioIntrospection:
				res, err = introspectionLoad(ctx, o, srv, lower, dir)
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", sc, alg, err)
			}
			res.print(sc, o.store, alg)
		}
		if sc != scenarioIntrospection {
			continue
		}
		// The miss rows: a second server that caches no verified token, alone on core 0.
		srv.stop()
		if srv, err = startServer(ctx, o, dir, redisAddr, "--access-token-cache-size", "0"); err != nil {
			return err
		}
		for _, alg := range algs {
			res, err := introspectionLoad(ctx, o, srv, strings.ToLower(alg), dir)
			if err != nil {
				return fmt.Errorf("introspection-miss %s: %w", alg, err)
			}
			res.print("introspection-miss", o.store, alg)
		}
		srv.stop()
		if srv, err = startServer(ctx, o, dir, redisAddr); err != nil { // for the scenarios after
			return err
		}
	}
	fmt.Println("authorization_code exchange: not loaded here (each request needs a fresh code from a bcrypt login);",
		"see BenchmarkCodeExchange and BenchmarkCodeExchangeRedis (redis-rt/op) in the Go benchmarks above")
	return nil
}

// server is a running latchkey binary.
type server struct {
	base    string // http://host:port
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited, waitErr set
	waitErr error
	once    sync.Once
}

// stop interrupts the server and waits for it to exit; it can be called more than once.
func (s *server) stop() {
	s.once.Do(func() { _ = s.cmd.Process.Signal(os.Interrupt); <-s.exited })
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const userHZ = 100

// cpu is the CPU time (user and system, all threads) the server has used so far.
func (s *server) cpu() (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command (in parentheses, which may hold spaces): state is the 3rd
	// field of stat(5), utime the 14th and stime the 15th.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc stat %q", stat)
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc stat %q", stat)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// startServer starts the latchkey binary in the embedded mode on the manifests of dir, pinned
// to core 0 with GOMAXPROCS=1, with extra flags, and returns it once it is ready. taskset execs
// the binary, so the process is the server's.
func startServer(ctx context.Context, o options, dir, redisAddr string, extra ...string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	probe, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"-c", "0", o.binary, "serve", "--manifests", dir,
		"--listen-address", addr, "--health-probe-bind-address", probe, "--zap-log-level", "error", "--store", o.store,
		// The audit log stays on (as in production) but goes to a file, not the terminal.
		"--audit-log", filepath.Join(dir, "audit.log"), "--metrics-bind-address", "0"}
	if redisAddr != "" {
		args = append(args, "--redis-address", redisAddr)
	}
	cmd := exec.CommandContext(ctx, "taskset", append(args, extra...)...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{base: "http://" + addr, cmd: cmd, exited: make(chan struct{})}
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()
	if err := waitReady(ctx, "http://"+probe+"/readyz", s.exited); err != nil {
		s.stop()
		if s.waitErr != nil {
			err = fmt.Errorf("%w: %w", err, s.waitErr)
		}
		return nil, err
	}
	return s, nil
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

// waitReady polls url until it answers 200, for 30 s at most, or until exited is closed (the
// server gave up, e.g. on a flag it does not know).
func waitReady(ctx context.Context, url string, exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("server exited before it was ready")
		default:
		}
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
	rate     float64 // requests per second of wall-clock time
	perCPU   float64 // requests per second of the server's CPU time
	p50, p99 string
	non2xx   int
}

func (r result) print(scenario, store, alg string) {
	fmt.Printf("%-18s %-6s %-6s %11.0f %11.0f %10s %10s %8d\n", scenario, store, alg, r.rate, r.perCPU, r.p50, r.p99, r.non2xx)
}

// perCPUSecond is n requests over the CPU time the server used between before and after.
func perCPUSecond(n int, before, after time.Duration) float64 {
	if after <= before {
		return 0
	}
	return float64(n) / (after - before).Seconds()
}

var (
	rateRe   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	countRe  = regexp.MustCompile(`(\d+) requests in `)
	p50Re    = regexp.MustCompile(`\n\s+50%\s+(\S+)`)
	p99Re    = regexp.MustCompile(`\n\s+99%\s+(\S+)`)
	non2xxRe = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
)

// load runs wrk against the server's path, posting the form body with the Basic credentials
// auth.
func load(ctx context.Context, o options, srv *server, path, body, auth, dir string) (result, error) {
	script := filepath.Join(dir, "post.lua")
	if err := os.WriteFile(script, fmt.Appendf(nil, wrkScript, body, auth), 0o600); err != nil {
		return result{}, err
	}
	// Warm up for a second, then measure.
	for i, d := range []time.Duration{time.Second, o.duration} {
		cmd := exec.CommandContext(ctx, "taskset", "-c", "1", "wrk", "-t1", fmt.Sprintf("-c%d", o.connections),
			fmt.Sprintf("-d%ds", int(d.Round(time.Second).Seconds())), "--latency", "-s", script, srv.base+path)
		cpuBefore, err := srv.cpu()
		if err != nil {
			return result{}, err
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return result{}, fmt.Errorf("wrk: %w: %s", err, out)
		}
		cpuAfter, err := srv.cpu()
		if err != nil {
			return result{}, err
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
		if m := countRe.FindStringSubmatch(text); m != nil {
			var n int
			_, _ = fmt.Sscan(m[1], &n)
			r.perCPU = perCPUSecond(n, cpuBefore, cpuAfter)
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
