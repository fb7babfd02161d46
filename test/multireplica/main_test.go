package multireplica

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/internal/harness/controlplane"
)

const (
	keySecret = "latchkey-signing-keys"
	namespace = "latchkey-system"
	// refreshGrace is the --refresh-reuse-grace every replica runs with.
	refreshGrace = 500 * time.Millisecond
	// devicePollInterval is the --device-poll-interval every replica runs with.
	devicePollInterval = time.Second
	shutdownTimeout    = 5 * time.Second
	// Short leader election timings, so that a killed leader is replaced within seconds.
	leaseDuration = 4 * time.Second
	renewDeadline = 3 * time.Second
	retryPeriod   = 1 * time.Second
	// replicaLease is how long a replica counts in the served counts after its last report.
	replicaLease = 6 * time.Second
	// Back-channel logout: a short timeout, and two attempts (5 s apart) before a delivery is
	// given up.
	backchannelTimeout  = 2 * time.Second
	backchannelAttempts = 2
)

// replica is one latchkey serve process.
type replica struct {
	name    string
	base    string // http://127.0.0.1:<port>
	metrics string // http://127.0.0.1:<port> of the metrics endpoint
	srv     *harness.Server
}

// suite is the control plane, Redis and replicas shared by the tests.
type suite struct {
	root   string
	tmp    string
	cp     *controlplane.ControlPlane
	binary string
	redis  *harness.Redis
	// logouts is the backchannelLogoutURI of the back-channel logout tests' clients.
	logouts  *harness.LogoutReceiver
	issuer   string
	replicas []*replica
	// dpopSecretFile is the --dpop-nonce-secret-file every replica shares.
	dpopSecretFile string
}

var env *suite //nolint:gochecknoglobals // one control plane per package, set up in TestMain

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return 1
}

func runMain(m *testing.M) int {
	// The tests' own controller-runtime clients log nothing worth reading.
	ctrllog.SetLogger(logr.Discard())
	root, err := harness.Root()
	if err != nil {
		return fail("%v", err)
	}
	tmp, err := os.MkdirTemp("", "latchkey-multireplica-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // best effort at exit
	s := &suite{root: root, tmp: tmp}

	// The build runs while Redis and the control plane start.
	build := sync.OnceValues(func() (string, error) { return harness.BuildBinary(tmp) })
	go func() { _, _ = build() }()

	if s.redis, err = harness.StartRedis(filepath.Join(tmp, "redis")); err != nil {
		return fail("start redis: %v", err)
	}
	defer s.redis.Stop()
	s.logouts = harness.StartLogoutReceiver()
	defer s.logouts.Close()
	if s.cp, err = controlplane.Start(controlplane.Options{Kubeconfig: filepath.Join(tmp, "kubeconfig"), User: "multireplica-admin"}); err != nil {
		return fail("%v", err)
	}
	defer s.cp.Stop() //nolint:errcheck // best effort at exit
	if out, err := s.cp.Kubectl(nil, "create", "namespace", namespace); err != nil {
		return fail("create namespace: %v: %s", err, out)
	}
	if s.binary, err = build(); err != nil {
		return fail("build latchkey: %v", err)
	}

	// The first replica's address is the shared issuer; the other two start together.
	first, err := s.startReplica("replica-0")
	if err != nil {
		return fail("start replica-0: %v", err)
	}
	s.issuer, s.replicas = first.base, []*replica{first}
	defer func() {
		for _, r := range s.replicas {
			r.stop()
		}
	}()
	others := make([]*replica, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range others {
		wg.Go(func() { others[i], errs[i] = s.startReplica(fmt.Sprintf("replica-%d", i+1)) })
	}
	wg.Wait()
	for i, r := range others {
		if errs[i] != nil {
			return fail("start replica-%d: %v", i+1, errs[i])
		}
		s.replicas = append(s.replicas, r)
	}
	if err := s.applySamples(); err != nil {
		return fail("samples: %v", err)
	}
	env = s
	code := m.Run()
	if code != 0 || os.Getenv("MULTIREPLICA_SHOW_LOG") != "" {
		for _, r := range s.replicas {
			fmt.Fprintf(os.Stderr, "==== %s log (last 4 KiB)\n%s\n", r.name, r.srv.Tail(4096))
		}
	}
	return code
}

// startReplica starts latchkey serve on free loopback ports with the shared issuer (its own
// address when there is none yet), Redis and leader election, and waits until it is ready.
func (s *suite) startReplica(name string) (*replica, error) {
	// Every replica derives its DPoP nonce key from one secret (a mounted Secret in a cluster).
	s.dpopSecretFile = filepath.Join(s.tmp, "dpop-nonce-secret")
	if err := os.WriteFile(s.dpopSecretFile, []byte("multireplica DPoP nonce secret, 32+ bytes long"), 0o600); err != nil {
		return nil, err
	}
	srv, err := harness.StartServer(context.Background(), s.binary, filepath.Join(s.tmp, name+".log"), 60*time.Second,
		func(a harness.ServeAddrs) []string {
			issuer := s.issuer
			if issuer == "" {
				issuer = a.URL()
			}
			return []string{"serve",
				"--kubeconfig", s.cp.Kubeconfig(),
				"--namespace", namespace,
				"--issuer", issuer,
				"--store", "redis",
				"--redis-address", s.redis.Addr(),
				"--leader-elect=true",
				"--leader-election-lease-duration", leaseDuration.String(),
				"--leader-election-renew-deadline", renewDeadline.String(),
				"--leader-election-retry-period", retryPeriod.String(),
				"--refresh-reuse-grace", refreshGrace.String(),
				"--device-poll-interval", devicePollInterval.String(),
				"--shutdown-timeout", shutdownTimeout.String(),
				"--replica-name", name,
				"--replica-lease-duration", replicaLease.String(),
				"--backchannel-logout-timeout", backchannelTimeout.String(),
				"--backchannel-logout-attempts", strconv.Itoa(backchannelAttempts),
				"--dpop-nonce-secret-file", s.dpopSecretFile,
			}
		})
	if err != nil {
		return nil, err
	}
	return &replica{name: name, base: srv.URL(), metrics: srv.MetricsURL(), srv: srv}, nil
}

// waitReady waits until a restarted replica is ready again.
func (r *replica) waitReady(timeout time.Duration) error {
	return r.srv.WaitHTTP(context.Background(), r.srv.ReadyURL(), timeout)
}

// stop interrupts the process and kills it when it does not exit in time.
func (r *replica) stop() { r.srv.Stop(shutdownTimeout + 10*time.Second) }

// applySamples applies config/samples and waits until every replica serves the demo clients
// and alice (each replica's registry is fed by its own informers).
func (s *suite) applySamples() error {
	if out, err := s.cp.Kubectl(nil, "apply", "-f", filepath.Join(s.root, "config", "samples")); err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, out)
	}
	for _, name := range []string{serviceID, spaID, webappID} {
		if out, err := s.cp.Kubectl(nil, "wait", "-n", "default", "--for=condition=Ready", "--timeout=30s", "oauthclient/"+name); err != nil {
			return fmt.Errorf("wait %s: %w: %s", name, err, out)
		}
	}
	for _, r := range s.replicas {
		if err := r.waitServes(30 * time.Second); err != nil {
			return err
		}
	}
	return nil
}

// waitServes waits until the replica issues alice's tokens to demo-webapp. It asks from a
// loopback address of its own: its failures while the replica loads (wrong credentials to a
// replica that does not know alice yet) must not lock alice or demo-webapp out for the tests,
// which call from 127.0.0.1.
func (r *replica) waitServes(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last apiResponse
	var err error
	probe := harness.ClientFrom(readinessAddr)
	for time.Now().Before(deadline) {
		last, err = r.passwordGrantWith(context.Background(), probe)
		if err == nil && last.status == http.StatusOK {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err == nil {
		err = errors.New(strings.TrimSpace(last.String()))
	}
	return fmt.Errorf("%s does not serve alice and demo-webapp: %w", r.name, err)
}
