package multireplica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	keySecret = "latchkey-signing-keys"
	namespace = "latchkey-system"
	// refreshGrace is the --refresh-reuse-grace every replica runs with.
	refreshGrace    = 500 * time.Millisecond
	shutdownTimeout = 5 * time.Second
	// Short leader election timings, so that a killed leader is replaced within seconds.
	leaseDuration = 4 * time.Second
	renewDeadline = 3 * time.Second
	retryPeriod   = 1 * time.Second
)

// replica is one latchkey serve process.
type replica struct {
	name    string
	base    string // http://127.0.0.1:<port>
	probe   string
	args    []string
	metrics string // http://127.0.0.1:<port> of the metrics endpoint
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	exited  chan struct{}
	waitErr error
}

// suite is the control plane, Redis and replicas shared by the tests.
type suite struct {
	root       string
	tmp        string
	kubeconfig string
	kubectlBin string
	binary     string
	redisAddr  string
	issuer     string
	replicas   []*replica
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
	root, err := filepath.Abs("../..")
	if err != nil {
		return fail("%v", err)
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin", "k8s")
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return fail("redis-server not installed (hack/apt-install.sh redis-server): %v", err)
	}
	tmp, err := os.MkdirTemp("", "latchkey-multireplica-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // best effort at exit
	s := &suite{root: root, tmp: tmp, kubectlBin: filepath.Join(assets, "kubectl"),
		kubeconfig: filepath.Join(tmp, "kubeconfig"), binary: filepath.Join(tmp, "latchkey")}

	// The build runs while the control plane starts.
	built := make(chan error, 1)
	go func() {
		build := exec.Command("go", "build", "-o", s.binary, ".")
		build.Dir = root
		out, err := build.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, out)
		}
		built <- err
	}()

	stopRedis, err := s.startRedis(redisBin)
	if err != nil {
		return fail("start redis: %v", err)
	}
	defer stopRedis()

	testEnv := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	if _, err := testEnv.Start(); err != nil {
		return fail("start control plane: %v", err)
	}
	defer testEnv.Stop() //nolint:errcheck // best effort at exit
	admin, err := testEnv.AddUser(envtest.User{Name: "multireplica-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fail("add user: %v", err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		return fail("kubeconfig: %v", err)
	}
	if err := os.WriteFile(s.kubeconfig, kc, 0o600); err != nil {
		return fail("%v", err)
	}
	if out, err := s.kubectlRun(nil, "create", "namespace", namespace); err != nil {
		return fail("create namespace: %v: %s", err, out)
	}
	if err := <-built; err != nil {
		return fail("build latchkey: %v", err)
	}

	port, err := freePort()
	if err != nil {
		return fail("%v", err)
	}
	s.issuer = fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := range 3 {
		listen := port
		if i > 0 {
			if listen, err = freePort(); err != nil {
				return fail("%v", err)
			}
		}
		r, err := s.startReplica(fmt.Sprintf("replica-%d", i), listen)
		if err != nil {
			return fail("start replica %d: %v", i, err)
		}
		s.replicas = append(s.replicas, r)
	}
	defer func() {
		for _, r := range s.replicas {
			r.stop()
		}
	}()
	for _, r := range s.replicas {
		if err := r.waitReady(60 * time.Second); err != nil {
			return fail("%v", err)
		}
	}
	if err := s.applySamples(); err != nil {
		return fail("samples: %v", err)
	}
	env = s
	code := m.Run()
	if code != 0 || os.Getenv("MULTIREPLICA_SHOW_LOG") != "" {
		for _, r := range s.replicas {
			b, _ := os.ReadFile(r.logPath)
			fmt.Fprintf(os.Stderr, "==== %s log (last 4 KiB)\n%s\n", r.name, tail(b, 4096))
		}
	}
	return code
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close() //nolint:errcheck // only used to pick a port
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startRedis runs redis-server on a free loopback port, without persistence.
func (s *suite) startRedis(bin string) (func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.tmp, "redis")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	s.redisAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	c := goredis.NewClient(&goredis.Options{Addr: s.redisAddr})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("redis-server on %s did not start", s.redisAddr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return stop, nil
}

// startReplica starts latchkey serve on 127.0.0.1:listen with the shared issuer, Redis and
// leader election; it does not wait for readiness.
func (s *suite) startReplica(name string, listen int) (*replica, error) {
	probe, err := freePort()
	if err != nil {
		return nil, err
	}
	metrics, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &replica{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", listen), probe: fmt.Sprintf("http://127.0.0.1:%d", probe),
		metrics: fmt.Sprintf("http://127.0.0.1:%d", metrics), logPath: filepath.Join(s.tmp, name+".log")}
	r.args = []string{"serve",
		"--kubeconfig", s.kubeconfig,
		"--namespace", namespace,
		"--listen-address", fmt.Sprintf("127.0.0.1:%d", listen),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probe),
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metrics),
		"--issuer", s.issuer,
		"--store", "redis",
		"--redis-address", s.redisAddr,
		"--leader-elect=true",
		"--leader-election-lease-duration", leaseDuration.String(),
		"--leader-election-renew-deadline", renewDeadline.String(),
		"--leader-election-retry-period", retryPeriod.String(),
		"--refresh-reuse-grace", refreshGrace.String(),
		"--shutdown-timeout", shutdownTimeout.String(),
	}
	if err := s.launch(r); err != nil {
		return nil, err
	}
	return r, nil
}

// launch starts the replica's process with its arguments, appending to its log.
func (s *suite) launch(r *replica) error {
	var err error
	if r.logFile, err = os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return err
	}
	r.exited = make(chan struct{})
	r.waitErr = nil
	r.cmd = exec.Command(s.binary, r.args...)
	r.cmd.Stdout, r.cmd.Stderr = r.logFile, r.logFile
	if err := r.cmd.Start(); err != nil {
		_ = r.logFile.Close()
		return err
	}
	cmd, logFile, exited := r.cmd, r.logFile, r.exited
	go func() {
		err := cmd.Wait()
		_ = logFile.Close()
		r.waitErr = err
		close(exited)
	}()
	return nil
}

// kill SIGKILLs the replica's process and waits for it to exit.
func (r *replica) kill() error {
	if err := r.cmd.Process.Kill(); err != nil {
		return err
	}
	<-r.exited
	return nil
}

// restart starts a killed or stopped replica again with the same arguments and ports; it does
// not wait for readiness.
func (s *suite) restart(r *replica) error {
	<-r.exited
	return s.launch(r)
}

func (r *replica) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			b, _ := os.ReadFile(r.logPath)
			return fmt.Errorf("%s exited (%v) before ready; log:\n%s", r.name, r.waitErr, tail(b, 8192))
		default:
		}
		resp, err := http.Get(r.probe + "/readyz") //nolint:noctx // test polling
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(r.logPath)
	return fmt.Errorf("%s not ready within %s; log:\n%s", r.name, timeout, tail(b, 8192))
}

// stop interrupts the process and kills it when it does not exit in time.
func (r *replica) stop() {
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.exited:
	case <-time.After(shutdownTimeout + 10*time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}

func (s *suite) kubectlRun(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(s.kubectlBin, append([]string{"--kubeconfig", s.kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// applySamples applies config/samples and waits until every replica serves the demo clients
// and alice (each replica's registry is fed by its own informers).
func (s *suite) applySamples() error {
	if out, err := s.kubectlRun(nil, "apply", "-f", filepath.Join(s.root, "config", "samples")); err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, out)
	}
	for _, name := range []string{serviceID, spaID, webappID} {
		if out, err := s.kubectlRun(nil, "wait", "-n", "default", "--for=condition=Ready", "--timeout=30s", "oauthclient/"+name); err != nil {
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

// waitServes waits until the replica issues alice's tokens to demo-webapp.
func (r *replica) waitServes(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last apiResponse
	var err error
	for time.Now().Before(deadline) {
		last, err = r.passwordGrant(context.Background())
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
