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
// After the scenarios (so with saturation measured per algorithm by the client_credentials rows
// of the same run):
//   - the signing-path reference row (-reference, reference.go): a bare net/http handler that
//     parses the form, checks a SHA-256 secret and signs ES256 with go-jose's JWT builder, run
//     on the same core, alternating with Latchkey's client_credentials ES256 for
//     -reference-rounds rounds; it prints both rates and Latchkey's ratio to the reference per
//     wall second and per CPU-second of the server process, the latter being the figure that
//     holds when other work shares the machine (the cpu-wait column says how much did:
//     /proc/pressure/cpu);
//   - tail latency (-tail-rates, rate.go): client_credentials at fixed request rates (vegeta, an
//     open model) of the given percentages of each algorithm's saturation, with p50 and p99,
//     and beside each the p99 of the floor: the same rate against a handler on the same core
//     that parses, checks the secret and answers a token signed once, i.e. what the generator,
//     the kernel and net/http add without any signing or Latchkey code.
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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey-dev/latchkey/internal/genclients"
	"github.com/latchkey-dev/latchkey/internal/harness"
)

type options struct {
	binary      string
	duration    time.Duration
	connections int
	algorithms  string
	store       string
	scenarios   string
	reference   bool
	rounds      int
	tailRates   string
	tailRepeats int
	clients     int
	serverFlags []string
	// manifests is the folder the server loads (set by run).
	manifests string
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/latchkey", "latchkey binary to measure")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "load duration per scenario and algorithm")
	flag.IntVar(&o.connections, "connections", 64, "keep-alive connections")
	flag.StringVar(&o.algorithms, "algorithms", "RS256,ES256,EdDSA", "algorithms to measure")
	flag.StringVar(&o.store, "store", "memory", "leased store of the server: memory, or redis (a redis-server this run starts, on core 1)")
	flag.StringVar(&o.scenarios, "scenarios", "client_credentials,refresh,introspection", "scenarios to run: client_credentials, refresh, introspection (hit and miss rows)")
	flag.BoolVar(&o.reference, "reference", true, "with client_credentials and ES256: measure the bare go-jose reference handler beside Latchkey's ES256")
	flag.IntVar(&o.rounds, "reference-rounds", 5, "alternating rounds of Latchkey ES256 and the reference handler")
	flag.StringVar(&o.tailRates, "tail-rates", "25,50,75", "with client_credentials: fixed request rates, in percent of each algorithm's saturation, for the tail latency table (empty: none)")
	flag.IntVar(&o.tailRepeats, "tail-repeats", 5, "runs of each tail latency row (alternating with the floor's); the row gives their medians and every run's p99")
	refAddr := flag.String(referenceFlag, "", "internal: serve the reference handler on this address instead of a load run")
	refIssuer := flag.String("reference-issuer", "", "internal: the reference handler's iss")
	refClient := flag.String("reference-client", "", "internal: the reference handler's client, id:secret")
	refStatic := flag.Bool("reference-static", false, "internal: the reference handler answers with one token signed at start (the tail rows' floor)")
	flag.IntVar(&o.clients, "clients", 0, "typical clients loaded besides the measured ones (internal/genclients, documents in JSON form), "+
		"to measure throughput with a large registry")
	serverFlags := flag.String("server-flags", "", "extra flags for every latchkey serve of the run, space-separated (e.g. \"--audit-log off\"); the server inherits this process's environment (GOGC, GOMEMLIMIT)")
	flag.Parse()
	o.serverFlags = strings.Fields(*serverFlags)
	if *refAddr != "" {
		if err := runReferenceServer(*refAddr, *refIssuer, *refClient, *refStatic); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest: reference server:", err)
			os.Exit(1)
		}
		return
	}
	tail, err := parsePercents(o.tailRates)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest: -tail-rates:", err)
		os.Exit(2)
	}
	if o.tailRepeats < 1 {
		fmt.Fprintln(os.Stderr, "loadtest: -tail-repeats must be at least 1")
		os.Exit(2)
	}
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
	if err := run(o, tail); err != nil {
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

func run(o options, tail []int) error {
	for _, tool := range []string{"wrk", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed (apt-get install -y %s)", tool, map[string]string{"wrk": "wrk", "taskset": "util-linux"}[tool])
		}
	}
	// The refresh load generator is this process: pin all its threads to core 1 (wrk's core).
	if out, err := exec.CommandContext(context.Background(), "taskset", "-a", "-p", "-c", "1", strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
		return fmt.Errorf("taskset: %w: %s", err, out)
	}
	// One P for its one core: the runtime sized GOMAXPROCS from the affinity it started with,
	// and two Ps on one core make the generator's own threads wait for each other, which shows
	// in the measured latencies.
	runtime.GOMAXPROCS(1)
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
	o.manifests = manifestsDir
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
	if o.clients > 0 {
		fmt.Printf("%d generated clients loaded in %s on one core\n", o.clients, srv.startup.Round(100*time.Millisecond))
	}
	where := "load generator on core 1"
	if o.store == "redis" {
		where = "load generator and redis-server share core 1"
	}
	fmt.Printf("loopback load, store %s: server on core 0 (GOMAXPROCS=1), %s, %d connections, %s per row\n",
		o.store, where, o.connections, o.duration)
	fmt.Println("requests/s is the wall-clock rate of the server's one core; per CPU-s divides the requests by the CPU time",
		"the server used meanwhile (/proc/<pid>/stat), which other processes on core 0 do not inflate")
	fmt.Println("cpu-wait (reference and tail rows): share of the row's time in which a runnable task on this machine waited for a core",
		"(/proc/pressure/cpu); above a few percent, other work competed with the measurement")
	fmt.Printf("%-18s %-6s %-6s %11s %11s %10s %10s %8s\n", "scenario", "store", "alg", "requests/s", "per CPU-s", "p50", "p99", "non-2xx")
	saturation := map[string]float64{}
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
			if sc == scenarioClientCredentials {
				saturation[alg] = res.rate
			}
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
	if _, ok := saturation[referenceAlgorithm]; ok && o.reference {
		if err := referenceRows(ctx, o, srv, dir); err != nil {
			return fmt.Errorf("reference: %w", err)
		}
	}
	if len(saturation) > 0 && len(tail) > 0 {
		if err := tailRows(ctx, o, srv, algs, saturation, tail); err != nil {
			return fmt.Errorf("tail latency: %w", err)
		}
	}
	fmt.Println("authorization_code exchange: not loaded here (each request needs a fresh code from a bcrypt login);",
		"see BenchmarkCodeExchange and BenchmarkCodeExchangeRedis (redis-rt/op) in the Go benchmarks above")
	return nil
}

// server is a process serving HTTP on core 0: the latchkey binary, or this binary as the
// reference handler (reference.go).
type server struct {
	base    string // http://host:port
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited, waitErr set
	waitErr error
	once    sync.Once
	// startup is how long it took to be ready.
	startup time.Duration
}

// stop interrupts the server and waits for it to exit; it can be called more than once.
func (s *server) stop() {
	s.once.Do(func() { _ = s.cmd.Process.Signal(os.Interrupt); <-s.exited })
}

// cpu is the CPU time (user and system, all threads) the server has used so far.
func (s *server) cpu() (time.Duration, error) {
	return processCPU(s.cmd.Process.Pid)
}

// startServer starts the latchkey binary in the embedded mode on the manifests of dir, pinned
// to core 0 with GOMAXPROCS=1, with extra flags, and returns it once it is ready. taskset execs
// the binary, so the process is the server's.
func startServer(ctx context.Context, o options, dir, redisAddr string, extra ...string) (*server, error) {
	addr, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	probe, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--manifests", o.manifests,
		"--listen-address", addr, "--health-probe-bind-address", probe, "--log-level", "error", "--store", o.store,
		// The audit log stays on (as in production) but goes to a file, not the terminal.
		"--audit-log", filepath.Join(dir, "audit.log"), "--metrics-bind-address", "0"}
	if redisAddr != "" {
		args = append(args, "--redis-address", redisAddr)
	}
	ready := func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+probe+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	// A large registry takes a while on one core: a minute or more per million clients, more on
	// a shared machine.
	timeout := 30*time.Second + time.Duration(o.clients)*time.Millisecond
	args = append(append(args, o.serverFlags...), extra...)
	return startOnCore0(ctx, "http://"+addr, ready, timeout, o.binary, args...)
}

// startOnCore0 starts the program name with args pinned to core 0 (taskset execs it, so the
// process is the program's) with GOMAXPROCS=1, and returns it, serving on base, once ready
// answers true.
func startOnCore0(ctx context.Context, base string, ready func() bool, timeout time.Duration, name string, args ...string) (*server, error) {
	cmd := exec.CommandContext(ctx, "taskset", append([]string{"-c", "0", name}, args...)...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{base: base, cmd: cmd, exited: make(chan struct{})}
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()
	started := time.Now()
	if err := waitReady(ready, s.exited, timeout); err != nil {
		s.stop()
		if s.waitErr != nil {
			err = fmt.Errorf("%w: %w", err, s.waitErr)
		}
		return nil, err
	}
	s.startup = time.Since(started)
	return s, nil
}

// startRedis starts redis-server without persistence on a free loopback port, pinned to core 1
// (the load generator's), and returns its address once it answers PING.
func startRedis(ctx context.Context, dir string) (string, func(), error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "", nil, errors.New("redis-server is needed (hack/apt-install.sh redis-server)")
	}
	addr, err := harness.FreeAddr()
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

func waitReady(ready func() bool, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("server exited before it was ready")
		default:
		}
		if ready() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("server not ready within %s", timeout)
}

func basic(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))
}

type result struct {
	rate float64 // requests per second of wall-clock time
	// perCPUSecond is requests per second of the server's CPU time (0: not measured). Unlike
	// rate it hardly moves when other work on the machine takes the server's core away.
	perCPUSecond float64
	p50, p99     string
	p50ms, p99ms float64 // the same in milliseconds (summarize)
	non2xx       int
	// generatorGCs is how many times the load generator collected while measuring a fixed rate
	// (openLoad; 0 unless its memory limit was reached).
	generatorGCs uint32
	// from and to are the measured span of a fixed-rate run (openLoad: after the warm-up), and
	// stalls what the stall probes saw in it (tailRows).
	from, to time.Time
	stalls   stalls
}

func (r result) print(scenario, store, alg string) {
	fmt.Printf("%-18s %-6s %-6s %11.0f %11.0f %10s %10s %8d\n", scenario, store, alg, r.rate, r.perCPUSecond, r.p50, r.p99, r.non2xx)
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
			r.perCPUSecond = perCPUSecond(n, cpuBefore, cpuAfter)
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

// referenceAlgorithm is the algorithm the reference row compares.
const referenceAlgorithm = "ES256"

// referenceRows measures Latchkey's client_credentials ES256 on srv and the reference handler
// (both on core 0) alternately, o.rounds times each, and prints the rounds, the medians and the
// ratio.
func referenceRows(ctx context.Context, o options, srv *server, dir string) error {
	id, secret := "bench-es256", "bench-secret-es256"
	ref, err := startReference(ctx, srv.base, id, secret, false)
	if err != nil {
		return err
	}
	defer ref.stop()
	fmt.Printf("\nsigning path, same run, alternating %d rounds of %s (wrk, %d connections): Latchkey client_credentials ES256 against a bare handler (parse, SHA-256 secret, go-jose JWT builder ES256)\n",
		o.rounds, o.duration, o.connections)
	fmt.Println("per CPU-second: requests over the server process's own CPU time (/proc/<pid>/stat), which competing work on the machine hardly moves")
	fmt.Printf("%-6s %12s %12s %8s %16s %16s %8s %9s\n", "round", "latchkey/s", "reference/s", "ratio",
		"latchkey/cpu-s", "reference/cpu-s", "ratio", "cpu-wait")
	var ours, refs, oursCPU, refCPU, ratios, cpuRatios []float64
	for round := 1; round <= o.rounds; round++ {
		w0, ok := cpuWait()
		t0 := time.Now()
		l, err := load(ctx, o, srv, "/oauth2/token", "grant_type=client_credentials", basic(id, secret), dir)
		if err != nil {
			return fmt.Errorf("latchkey: %w", err)
		}
		r, err := load(ctx, o, ref, "/oauth2/token", "grant_type=client_credentials", basic(id, secret), dir)
		if err != nil {
			return fmt.Errorf("reference handler: %w", err)
		}
		w1, _ := cpuWait()
		ours, refs, ratios = append(ours, l.rate), append(refs, r.rate), append(ratios, l.rate/r.rate)
		cpuRatio := 0.0
		if l.perCPUSecond > 0 && r.perCPUSecond > 0 {
			cpuRatio = l.perCPUSecond / r.perCPUSecond
			oursCPU, refCPU, cpuRatios = append(oursCPU, l.perCPUSecond), append(refCPU, r.perCPUSecond), append(cpuRatios, cpuRatio)
		}
		fmt.Printf("%-6d %12.0f %12.0f %7.1f%% %16.0f %16.0f %7.1f%% %9s\n", round, l.rate, r.rate, 100*l.rate/r.rate,
			l.perCPUSecond, r.perCPUSecond, 100*cpuRatio, waitShare(w0, w1, ok, time.Since(t0)))
	}
	fmt.Printf("%-6s %12.0f %12.0f %8s %16.0f %16.0f\n", "median", median(ours), median(refs), "", median(oursCPU), median(refCPU))
	fmt.Printf("median of the rounds' ratios: throughput %.1f%%, per CPU-second %.1f%% (target >= 95%%)\n",
		100*median(ratios), 100*median(cpuRatios))
	return nil
}

// tailRows prints client_credentials p50 and p99 per algorithm at each percentage of the
// algorithm's measured saturation, at a fixed rate (openLoad), against srv. Each row is run
// o.tailRepeats times, each run followed by the same rate against the floor server (a static
// token, no signing, on the same core), whose p99 is what the load generator, the kernel and
// net/http alone add: the part of the tail that is not Latchkey's. The row gives the medians of
// its runs, every run's p99 and the stalls the probes saw in each run (stall.go): on this kind
// of VM a core now and then does not run for 5-70 ms (the floor shows it too, and the probes),
// and at 50% of saturation the backlog of one such stall takes as long again to drain, so a
// few of them delay ~1% of a 10 s run's requests and a single run's p99 measures the machine as
// much as the server.
func tailRows(ctx context.Context, o options, srv *server, algs []string, saturation map[string]float64, percents []int) error {
	fmt.Printf("\ntail latency, client_credentials at a fixed rate (vegeta, open model, load generator on core 1), %d runs of %s per row, "+
		"alternating with the floor; saturation from the rows above; p50, p99, floor p99 and cpu-wait are the medians of the runs\n", o.tailRepeats, o.duration)
	fmt.Println("floor: the same rate against a handler that parses, checks the secret and answers a token signed once (generator, kernel and net/http alone)")
	fmt.Println("stalls of each run: late wake-ups (>= 5 ms) of a probe sleeping 1 ms at a time on each core in the measured span of the run, count:longest (- none):",
		"moments in which the machine itself did not run the server or the generator")
	fmt.Printf("%-6s %8s %10s %12s %10s %10s %-38s %12s %9s %7s  %s\n", "alg", "% sat", "rate/s", "achieved/s", "p50", "p99", "  p99 of each run", "floor p99", "cpu-wait", "gen-GC", "stalls of each run")
	floor, err := startReference(ctx, srv.base, "bench-floor", "bench-secret-floor", true)
	if err != nil {
		return fmt.Errorf("floor server: %w", err)
	}
	defer floor.stop()
	// The generator's own probe (core 1); the floor server's covers core 0.
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	probe := &stallProbe{}
	go probe.run(probeCtx)
	for _, alg := range algs {
		sat, ok := saturation[alg]
		if !ok {
			continue
		}
		lower := strings.ToLower(alg)
		for _, pct := range percents {
			rate := max(int(sat*float64(pct)/100), 1)
			var row tailRow
			for range o.tailRepeats {
				w0, ok := cpuWait()
				t0 := time.Now()
				res, err := openLoad(ctx, srv.base+"/oauth2/token", basic("bench-"+lower, "bench-secret-"+lower), rate, o.duration)
				if err != nil {
					return fmt.Errorf("%s at %d/s: %w", alg, rate, err)
				}
				w1, _ := cpuWait()
				core0, err := fetchStalls(ctx, floor.base, res.from, res.to)
				if err != nil {
					return fmt.Errorf("floor server: %w", err)
				}
				res.stalls = core0.plus(probe.between(res.from, res.to))
				fl, err := openLoad(ctx, floor.base+"/oauth2/token", basic("bench-floor", "bench-secret-floor"), rate, o.duration)
				if err != nil {
					return fmt.Errorf("floor at %d/s: %w", rate, err)
				}
				row.add(res, fl, waitFraction(w0, w1, ok, time.Since(t0)))
			}
			fmt.Printf("%-6s %7d%% %10d %12.0f %s\n", alg, pct, rate, median(row.achieved), row.String())
		}
	}
	return nil
}

// tailRow gathers the runs of one tail latency row.
type tailRow struct {
	achieved, p50, p99, floorP99, wait []float64
	waitKnown                          bool
	generatorGCs                       uint32
	stalls                             []stalls
}

// add records one run of Latchkey (res) and the floor's (floor) at the same rate; wait is the
// run's CPU pressure share, negative where the kernel has none.
func (t *tailRow) add(res, floor result, wait float64) {
	t.achieved = append(t.achieved, res.rate)
	t.p50, t.p99 = append(t.p50, res.p50ms), append(t.p99, res.p99ms)
	t.floorP99 = append(t.floorP99, floor.p99ms)
	if wait >= 0 {
		t.wait, t.waitKnown = append(t.wait, wait), true
	}
	t.generatorGCs += res.generatorGCs + floor.generatorGCs
	t.stalls = append(t.stalls, res.stalls)
}

// String is the row's columns from p50 on: the medians, every run's p99 in run order, the
// floor's median p99, the median CPU pressure, the generator's collections in all runs and the
// machine's stalls in each run.
func (t *tailRow) String() string {
	each := make([]string, len(t.p99))
	for i, v := range t.p99 {
		each[i] = fmt.Sprintf("%.2f", v)
	}
	stalled := make([]string, len(t.stalls))
	for i, s := range t.stalls {
		stalled[i] = s.String()
	}
	wait := "n/a"
	if t.waitKnown {
		wait = fmt.Sprintf("%.0f%%", 100*median(t.wait))
	}
	return fmt.Sprintf("%8.2fms %8.2fms   %-36s %10.2fms %9s %7d  %s", median(t.p50), median(t.p99), strings.Join(each, " / ")+" ms",
		median(t.floorP99), wait, t.generatorGCs, strings.Join(stalled, " / "))
}

// parsePercents reads a comma-separated list of percentages (1-100); empty is none.
func parsePercents(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 100 {
			return nil, fmt.Errorf("%q is not a percentage from 1 to 100", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// median is the median of xs, 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// processCPU is the user and system CPU time the process pid has used (all its threads); pid 0
// is an error.
func processCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, errors.New("no process")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from after it.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	const utime, stime = 11, 12 // fields 14 and 15, counted from field 3
	if len(f) <= stime {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[utime], 10, 64)
	st, err2 := strconv.ParseInt(f[stime], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(u+st) * time.Second / ticksPerSecond, nil
}
