// Command soak is `make soak` (not in CI): a long run of mixed OAuth traffic against three
// latchkey replicas in the embedded mode that share one redis-server (the --store redis
// engine for many replicas) and one signing key file, with the deliberate faults of a real
// deployment in the middle, and pass criteria at the end.
//
// The load: client_credentials, introspection of those tokens, revocation of access tokens
// (then introspected: inactive), refresh token chains (each rotation presents the token the
// previous answer gave), the authorization code flow with PKCE through the login and consent
// pages over HTTP as a new browser each time (its own cookie jar; the harness's Page reads the
// forms), and revocation of refresh chains (then presented: refused). First a closed loop
// measures the throughput of the mix (-calibrate), then open-loop steps from 10% of it up find
// the capacity: the highest rate the replicas keep up with (openCapacity). The soak then
// starts operations at a fixed rate of -load percent of that (an open model: late answers do
// not slow the sender).
//
// The requests go through an in-process load balancer (balancer.go): each keeps the issuer's
// host and goes round robin to a replica that is up; a transport error takes the replica out
// until its readiness probe answers again, and a request that may be sent twice is resent to
// another replica. Replicas and Redis are pinned to core 0, the load generator to core 1.
//
// The faults (at 35% and 55% of -duration): one replica is SIGKILLed and started again;
// Redis is stopped (SIGINT: it writes its append-only file) and started again on the same port
// with the same data. A refresh answered 503 while Redis is away is presented again: the store
// refused it and nothing rotated, or (its reply lost) it rotated and the retry, within the
// reuse grace, gets the same successor.
//
// Pass criteria: no non-2xx answer and no transport error except the deliberate ones (a
// revoked or replayed token, and errors during a fault: the report counts them by cause); no
// acknowledged refresh token lost: at the end each chain's last token redeems exactly once
// (200; presented again at once, the same successor, a retry within the replicas'
// --refresh-reuse-grace of refreshGrace; presented after the grace, refused); every replica that was not killed has RSS at the end
// at most 1.2 times its RSS after one minute (after half the run, when -duration is under two
// minutes). The p99 of every
// endpoint over time is in the report.
//
// The run folder (-out, default bin/soak/<UTC time>) gets summary.md (the tables), latency.svg
// (p99 per endpoint over time, faults marked), and the replicas' and Redis's logs. Traffic goes
// to 127.0.0.1 only, and the run is bounded by -duration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

type options struct {
	binary    string
	duration  time.Duration
	calibrate time.Duration
	loadPct   int
	out       string
	chains    int
	workers   int
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/latchkey", "latchkey binary")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the load runs (make soak: SOAK_DURATION)")
	flag.DurationVar(&o.calibrate, "calibrate", 20*time.Second, "how long the closed loop that measures capacity runs")
	flag.IntVar(&o.loadPct, "load", 80, "load, in percent of the measured capacity")
	flag.StringVar(&o.out, "out", "", "run folder (default bin/soak/<UTC time>)")
	flag.IntVar(&o.chains, "chains", 200, "refresh token chains kept")
	flag.IntVar(&o.workers, "calibration-workers", 48, "concurrent operations of the calibration loop")
	flag.Parse()
	if o.duration < 20*time.Second || o.loadPct < 1 || o.loadPct > 100 {
		fmt.Fprintln(os.Stderr, "soak: -duration must be at least 20s and -load from 1 to 100")
		os.Exit(2)
	}
	if o.out == "" {
		o.out = filepath.Join("bin", "soak", time.Now().UTC().Format("20060102-150405"))
	}
	passed, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if !passed {
		fmt.Fprintln(os.Stderr, "soak: FAILED (see", filepath.Join(o.out, "summary.md")+")")
		os.Exit(1)
	}
}

// replicaCount is how many latchkey replicas share the Redis.
const replicaCount = 3

// refreshGrace is the replicas' --refresh-reuse-grace (the server's default): a refresh
// token presented again within it by its client gets the successor its rotation issued.
const refreshGrace = 2 * time.Second

// connsPerReplica bounds the load generator's connections to each replica.
const connsPerReplica = 128

// The fault schedule, as fractions of the run.
const (
	killAt         = 0.35
	redisRestartAt = 0.55

	// rssLimit is the allowed growth of RSS from rssEarly to the end.
	rssLimit = 1.2
	// killedReplica is the index of the replica that is SIGKILLed.
	killedReplica = 1
)

func run(o options) (bool, error) {
	if err := os.MkdirAll(o.out, 0o750); err != nil {
		return false, err
	}
	for _, tool := range []string{"taskset", "redis-server"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false, fmt.Errorf("%s is needed (hack/apt-install.sh redis-server; taskset is in util-linux)", tool)
		}
	}
	if out, err := exec.CommandContext(context.Background(), "taskset", "-a", "-p", "-c", "1", strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
		return false, fmt.Errorf("taskset: %w: %s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := startCluster(ctx, o)
	if err != nil {
		return false, err
	}
	defer cl.stop()
	fmt.Printf("soak: %d replicas and redis-server on core 0, load generator on core 1; run folder %s\n", replicaCount, o.out)

	f := &faults{killed: map[int]time.Time{}, back: map[int]time.Time{}}
	// Like a client's connection pool or a proxy's upstream pool: bounded connections per
	// replica, so that a stall queues requests in the client (and shows as latency) instead of
	// opening ever more connections.
	bal := &balancer{base: &http.Transport{MaxIdleConns: 3 * connsPerReplica, MaxIdleConnsPerHost: connsPerReplica,
		MaxConnsPerHost: connsPerReplica, IdleConnTimeout: 30 * time.Second}}
	for _, r := range cl.replicas {
		be := &backend{name: r.name, addr: r.addrs.Listen, ready: r.addrs.ReadyURL()}
		be.up.Store(true)
		bal.backends = append(bal.backends, be)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go bal.watch(watchCtx, 200*time.Millisecond)
	s := &soak{issuer: cl.issuer, bal: bal, api: &http.Client{Transport: bal, Timeout: 30 * time.Second},
		chains: &chains{max: o.chains}, tokens: &ring{toks: make([]string, 0, 1024)}}

	// Calibration (with its own recorder) also seeds the refresh chains.
	s.rec = newRecorder(time.Now(), time.Hour, f)
	if err := s.seed(ctx, o.chains/2); err != nil {
		return false, err
	}
	closed := s.closedLoop(ctx, o.calibrate, o.workers)
	fmt.Printf("soak: closed loop (%d in flight, %s): %.0f operations/s\n", o.workers, o.calibrate, closed)
	if n := sum(s.rec.failed); n > 0 {
		return false, fmt.Errorf("the closed loop had %d failures: %v", n, s.rec.failures)
	}
	capacity, steps := s.openCapacity(ctx, closed)
	for _, st := range steps {
		fmt.Printf("soak: open loop at %5.0f operations/s for %s: p99 %s, %d dropped, %d in flight at the end, kept up: %t\n",
			st.rate, capacityStep, st.p99.Round(10*time.Microsecond), st.dropped, st.backlog, st.ok)
		if len(st.failures) > 0 {
			// Slowness lowers the capacity; a wrong answer is a bug, not a capacity.
			return false, fmt.Errorf("the open loop at %.0f/s had failures: %v", st.rate, st.failures)
		}
	}
	if capacity == 0 {
		return false, fmt.Errorf("the replicas kept up with no open-loop rate from %.0f/s up: the machine is too busy", closed*capacitySteps[0])
	}
	rate := capacity * float64(o.loadPct) / 100
	// The search ended with a rate the replicas did not keep up with: start from idle.
	bal.base.(*http.Transport).CloseIdleConnections()
	time.Sleep(3 * time.Second)
	fmt.Printf("soak: capacity of the mix %.0f operations/s (open loop); running %s at %.0f/s (%d%%)\n",
		capacity, o.duration, rate, o.loadPct)

	start := time.Now()
	genCPU0 := ownCPU()
	s.rec = newRecorder(start, bucketFor(o.duration), f)
	rss := &rssLog{}
	var wg sync.WaitGroup
	loadCtx, stopLoad := context.WithTimeout(ctx, o.duration)
	defer stopLoad()
	var dropped int
	wg.Go(func() { dropped = s.openLoop(loadCtx, rate).dropped })
	wg.Go(func() { rss.sample(loadCtx, cl, start, 5*time.Second) })
	faultErr := make(chan error, 1)
	wg.Go(func() { faultErr <- cl.injectFaults(loadCtx, f, start, o.duration) })
	wg.Wait()
	if err := <-faultErr; err != nil {
		return false, fmt.Errorf("faults: %w", err)
	}
	rss.read(cl, time.Since(start)) // the end point
	end := time.Since(start)
	genCores := (ownCPU() - genCPU0).Seconds() / end.Seconds()

	// Every replica must be back before the chains are checked.
	for _, be := range bal.backends {
		if err := waitUp(ctx, be); err != nil {
			return false, err
		}
	}
	check := s.finalCheck(ctx)
	rep := report{o: o, closed: closed, capacity: capacity, rate: rate, ran: end, rec: s.rec, faults: f, rss: rss,
		check: check, dropped: dropped, start: start, generatorCores: genCores}
	passed, err := rep.write(o.out)
	if err != nil {
		return false, err
	}
	return passed, nil
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// rssEarly is when the RSS the end is compared with is read: after one minute, or half of a
// run shorter than two minutes.
func rssEarly(d time.Duration) time.Duration { return min(time.Minute, d/2) }

// bucketFor is the width of the time buckets of the p99-over-time table: about 30 per run,
// at least 5 s.
func bucketFor(d time.Duration) time.Duration {
	return max((d / 30).Round(time.Second), 5*time.Second)
}

func waitUp(ctx context.Context, be *backend) error {
	deadline := time.Now().Add(time.Minute)
	for !be.up.Load() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s is not up again", be.name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// seed runs n code flows (8 at a time) so that the refresh chains exist before the load.
func (s *soak) seed(ctx context.Context, n int) error {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.opCodeFlow(ctx)
		})
	}
	wg.Wait()
	if got := len(s.chains.snapshot()); got < n {
		return fmt.Errorf("seeding: %d of %d code flows gave a refresh token; first failures: %v", got, n, s.rec.failures)
	}
	return nil
}

// An operation of the mix and its weight.
type operation struct {
	name   string
	weight int
	run    func(*soak, context.Context)
}

var mix = []operation{ //nolint:gochecknoglobals // constant table
	{"client_credentials", 40, (*soak).opClientCredentials},
	{"introspect", 25, (*soak).opIntrospect},
	{"refresh", 22, (*soak).opRefresh},
	{"revoke access token", 5, (*soak).opRevokeAccess},
	{"code flow", 6, (*soak).opCodeFlow},
	{"revoke refresh chain", 2, (*soak).opRevokeChain},
}

// pick chooses an operation by weight from a number in [0, 100).
func pick(n int) operation {
	for _, op := range mix {
		if n < op.weight {
			return op
		}
		n -= op.weight
	}
	return mix[0]
}

// closedLoop runs workers operations at a time for d and returns operations per second over
// its last two thirds (the first third warms up). The operations under way at the end finish
// (and do not count).
func (s *soak) closedLoop(ctx context.Context, d time.Duration, workers int) float64 {
	from, end := time.Now().Add(d/3), time.Now().Add(d)
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			n := 0
			for i := w; time.Now().Before(end) && ctx.Err() == nil; i += workers {
				pick(i%100).run(s, ctx)
				if now := time.Now(); now.After(from) && now.Before(end) {
					n++
				}
			}
			mu.Lock()
			done += n
			mu.Unlock()
		})
	}
	wg.Wait()
	return float64(done) / (d - d/3).Seconds()
}

// The open-loop capacity search: rates in fractions of the closed loop's, each held for
// capacityStep; the capacity is the highest rate the replicas kept up with: no operation
// dropped, no backlog at the end of the step (at most capacityBacklog of arrivals still in
// flight) and every request's p99 under capacityP99. A step is tried twice before it counts as
// failed (other work on a shared machine stalls a step now and then).
var capacitySteps = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0} //nolint:gochecknoglobals // constant table

const (
	capacityStep    = 4 * time.Second
	capacityP99     = 500 * time.Millisecond
	capacityBacklog = 50 * time.Millisecond
)

type capacityStepResult struct {
	rate     float64
	p99      time.Duration
	dropped  int
	backlog  int
	failures []string
	ok       bool
}

// openCapacity finds the highest open-loop rate the replicas keep up with. A closed loop
// overstates it: with many requests in flight each process wakes once for several of them,
// while requests arriving one by one wake the processes (three replicas and Redis on one core)
// for each.
func (s *soak) openCapacity(ctx context.Context, closed float64) (float64, []capacityStepResult) {
	var steps []capacityStepResult
	best := 0.0
	for _, frac := range capacitySteps {
		var st capacityStepResult
		for range 2 {
			st = s.capacityStep(ctx, closed*frac)
			steps = append(steps, st)
			if st.ok {
				break
			}
		}
		if !st.ok {
			break
		}
		best = st.rate
	}
	return best, steps
}

func (s *soak) capacityStep(ctx context.Context, rate float64) capacityStepResult {
	s.rec = newRecorder(time.Now(), time.Hour, s.rec.faults)
	stepCtx, cancel := context.WithTimeout(ctx, capacityStep)
	res := s.openLoop(stepCtx, rate)
	cancel()
	var all []time.Duration
	for _, ep := range endpoints {
		all = append(all, s.rec.all(ep)...)
	}
	slices.Sort(all)
	st := capacityStepResult{rate: rate, p99: quantile(all, 0.99), dropped: res.dropped, backlog: res.inFlightAtEnd, failures: s.rec.failures}
	st.ok = st.dropped == 0 && st.p99 <= capacityP99 && len(st.failures) == 0 &&
		float64(st.backlog) <= max(20, rate*capacityBacklog.Seconds())
	return st
}

// maxInFlight bounds the operations in flight in the open loop; one due beyond it is dropped
// (and fails the run: the generator, not the server, would decide the rate).
const maxInFlight = 2048

// openResult is what an open loop did.
type openResult struct {
	// dropped operations were due while maxInFlight were in flight.
	dropped int
	// inFlightAtEnd were still in flight when the loop stopped starting new ones.
	inFlightAtEnd int
}

// openLoop starts operations at rate per second (the mix's weights in a fixed rotation) until
// ctx ends and waits for them.
func (s *soak) openLoop(ctx context.Context, rate float64) openResult {
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	launched := 0
	var res openResult
	// The operations outlive ctx by their own timeout, so that the end does not cut them.
	opCtx := context.WithoutCancel(ctx)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			res.inFlightAtEnd = len(sem)
			return res
		case <-t.C:
		}
		due := int(time.Since(start).Seconds() * rate)
		for ; launched < due; launched++ {
			op := pick(launched * 37 % 100) // 37 is coprime to 100: every weight slot in turn
			select {
			case sem <- struct{}{}:
				wg.Go(func() {
					defer func() { <-sem }()
					octx, cancel := context.WithTimeout(opCtx, time.Minute)
					defer cancel()
					op.run(s, octx)
				})
			default:
				res.dropped++
			}
		}
	}
}

// checkResult is the end-of-run check of the refresh chains.
type checkResult struct {
	live, redeemedOnce, lost, redeemedTwice, cut, revoked, lostDuringRun int
}

// finalCheck presents every live chain's last acknowledged token three times: the first
// must redeem (200); the second, at once (a retry within the reuse grace), must get the same
// successor or be refused, never another one; the third, once the grace has passed, must be
// refused.
func (s *soak) finalCheck(ctx context.Context) checkResult {
	var res checkResult
	var once []*chain
	for _, c := range s.chains.snapshot() {
		c.mu.Lock()
		switch c.state {
		case chainCut:
			res.cut++
		case chainRevoked:
			res.revoked++
		case chainLost:
			res.lostDuringRun++
		case chainLive:
			res.live++
			first := s.post(ctx, "/oauth2/token", refreshForm(c.token), false, false)
			if s.note(epRefresh, first, nil) != ok {
				res.lost++
				break
			}
			second := s.post(ctx, "/oauth2/token", refreshForm(c.token), false, false)
			if s.note(epRefresh, second, answeredOrRefused) == ok && second.field("refresh_token") != first.field("refresh_token") {
				res.redeemedTwice++
				break
			}
			once = append(once, c)
		}
		c.mu.Unlock()
	}
	select {
	case <-ctx.Done():
		return res
	case <-time.After(refreshGrace + 500*time.Millisecond):
	}
	for _, c := range once {
		third := s.post(ctx, "/oauth2/token", refreshForm(c.token), false, false)
		switch s.note(epRefresh, third, answeredOrRefused) {
		case ok:
			res.redeemedTwice++
		case deliberately:
			res.redeemedOnce++
		}
	}
	return res
}

// answeredOrRefused are the answers of the final check's later presentations that are no
// failure of the run: a 2xx (ok: the check decides whether it should have come) or a refusal
// (400 invalid_grant, deliberately).
func answeredOrRefused(st int) bool { return is2xx(st) || st == http.StatusBadRequest }

func refreshForm(rt string) map[string][]string {
	return map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
}

var errStopped = errors.New("stopped")

// ownCPU is the CPU time (user and system) this process has used.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
