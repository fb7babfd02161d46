// Command opstartup measures the operator mode's start-up at scale: it starts a local control
// plane (envtest's kube-apiserver and etcd, bin/k8s), creates N typical OAuthClients, each with
// the Secret holding its client secret (internal/genclients' client: secretPolicy External,
// client_credentials, spread over 50 namespaces), then starts `latchkey serve --kubeconfig` and
// reports the seconds until /readyz answers 200 (every client's registry reconcile has run), the
// CPU seconds the server used until then and its RSS; then it checks that the last client
// created authenticates.
//
//	go run ./hack/opstartup -binary /tmp/latchkey -clients 100000
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/internal/genclients"
	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/internal/harness/controlplane"
)

const namespaces = 50

func main() {
	binary := flag.String("binary", "bin/latchkey", "the latchkey binary")
	clients := flag.Int("clients", 10000, "OAuthClients (and Secrets) to create")
	workers := flag.Int("workers", 32, "parallel creates")
	profileDir := flag.String("profile-dir", "", "write CPU profiles of the server's start-up (10 s each, until ready) into this folder; read them with go tool pprof -top DIR/cpu-*.pb.gz")
	flag.Parse()
	if err := run(*binary, *clients, *workers, *profileDir); err != nil {
		fmt.Fprintln(os.Stderr, "opstartup:", err)
		os.Exit(1)
	}
}

func run(binary string, n, workers int, profileDir string) error {
	tmp, err := os.MkdirTemp("", "latchkey-opstartup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // temp
	cp, err := controlplane.Start(controlplane.Options{
		Kubeconfig: filepath.Join(tmp, "kubeconfig"), Scheme: []func(*runtime.Scheme) error{v1alpha1.AddToScheme},
	})
	if err != nil {
		return err
	}
	defer cp.Stop() //nolint:errcheck // best effort
	ctx := context.Background()
	c, err := client.New(withoutLimits(cp), client.Options{Scheme: cp.Scheme()})
	if err != nil {
		return err
	}
	for _, ns := range append([]string{"latchkey-system"}, teamNamespaces()...) {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := create(ctx, c, n, workers); err != nil {
		return err
	}
	fmt.Printf("created %d OAuthClients and %d Secrets in %s\n", n, n, time.Since(start).Round(time.Second))

	addr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	probe, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	args := []string{"serve", "--kubeconfig", cp.Kubeconfig(), "--namespace", "latchkey-system",
		"--listen-address", addr, "--issuer", "http://" + addr, "--health-probe-bind-address", probe,
		"--metrics-bind-address", "0", "--log-level", "error", "--audit-log", filepath.Join(tmp, "audit.log")}
	var pprofAddr string
	if profileDir != "" {
		if pprofAddr, err = harness.FreeAddr(); err != nil {
			return err
		}
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			return err
		}
		args = append(args, "--pprof-bind-address", pprofAddr)
	}
	srv := exec.CommandContext(ctx, binary, args...)
	var stderr bytes.Buffer
	srv.Stderr = &stderr
	started := time.Now()
	if err := srv.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = srv.Wait(); close(exited) }()
	defer func() { _ = srv.Process.Signal(os.Interrupt); <-exited }()
	var isReady atomic.Bool
	profiled := make(chan struct{})
	go func() {
		defer close(profiled)
		if profileDir != "" {
			profileUntil(&isReady, pprofAddr, profileDir)
		}
	}()
	for {
		if ok, _ := get("http://" + probe + "/readyz"); ok {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("server exited: %s", stderr.String())
		default:
		}
		if time.Since(started) > 30*time.Minute {
			return fmt.Errorf("server not ready within 30 minutes: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	ready := time.Since(started)
	isReady.Store(true)
	<-profiled
	cpu, rss, hwm, err := usage(srv.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("%10s %10s %10s %10s %10s\n", "clients", "ready_s", "cpu_s", "rss_mb", "peak_mb")
	fmt.Printf("%10d %10.1f %10.1f %10d %10d\n", n, ready.Seconds(), cpu.Seconds(), rss>>20, hwm>>20)

	// The last client created is served.
	o := genclients.Options{Clients: n}
	id, secret := o.ClientID(n-1), o.Secret(n-1)
	for deadline := time.Now().Add(time.Minute); ; {
		status, err := token("http://"+addr, id, secret)
		if err == nil && status == http.StatusOK {
			fmt.Printf("client %s gets a token\n", id)
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("client %s: %w", id, err)
			}
			return fmt.Errorf("client %s: status %d", id, status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// withoutLimits is the control plane's admin config without client-side rate limits.
func withoutLimits(cp *controlplane.ControlPlane) *rest.Config {
	cfg := cp.Config()
	cfg.QPS, cfg.Burst = -1, 0
	return cfg
}

func teamNamespaces() []string {
	out := make([]string, namespaces)
	for i := range out {
		out[i] = "team-" + strconv.Itoa(i)
	}
	return out
}

// create creates the n clients and their Secrets with workers in parallel.
func create(ctx context.Context, c client.Client, n, workers int) error {
	o := genclients.Options{Clients: n}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				id, ns := o.ClientID(i), "team-"+strconv.Itoa(i%namespaces)
				secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: id + "-oauth", Namespace: ns},
					StringData: map[string]string{"client-secret": o.Secret(i)}}
				oc := &v1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: id, Namespace: ns}, Spec: v1alpha1.OAuthClientSpec{
					ClientID: id, Type: v1alpha1.ClientTypeConfidential,
					GrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeClientCredentials},
					Scopes:     []string{"read:projects", "write:projects"}, Audiences: []string{"https://api.example.com"},
					TokenEndpointAuthMethod: v1alpha1.AuthMethodClientSecretBasic,
					SecretPolicy:            v1alpha1.SecretPolicyExternal,
					SecretRef:               &v1alpha1.LocalSecretKeyRef{Name: id + "-oauth", Key: "client-secret"},
				}}
				for _, obj := range []client.Object{secret, oc} {
					if err := c.Create(ctx, obj); err != nil {
						errs <- fmt.Errorf("create %s: %w", id, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

func get(u string) (bool, error) {
	resp, err := http.Get(u) //nolint:gosec,noctx // a local probe
	if err != nil {
		return false, err
	}
	defer resp.Body.Close() //nolint:errcheck // read to the end
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK, nil
}

// token asks for a client_credentials token and returns the status.
func token(base, id, secret string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/oauth2/token", //nolint:noctx // a local server
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+secret)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close() //nolint:errcheck // read to the end
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// usage reads a process's CPU time (user + system), RSS and peak RSS from /proc.
func usage(pid int) (cpu time.Duration, rss, hwm int64, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	// The fields after the command name (in parentheses, which may hold spaces).
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	cpu = time.Duration(utime+stime) * time.Second / 100 // USER_HZ
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return cpu, rss, hwm, nil
}

// profileUntil fetches consecutive 10-second CPU profiles of the server until ready is set,
// into dir/cpu-NN.pb.gz (the last one may run up to 10 s past ready).
func profileUntil(ready *atomic.Bool, addr, dir string) {
	for i := 0; !ready.Load(); i++ {
		var body []byte
		for attempt := 0; attempt < 50; attempt++ { // the listener comes up a moment after the process
			resp, err := http.Get("http://" + addr + "/debug/pprof/profile?seconds=10") //nolint:noctx // a local profile endpoint
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err == nil && resp.StatusCode == http.StatusOK {
					break
				}
			}
			body = nil
			time.Sleep(100 * time.Millisecond)
		}
		if body == nil {
			fmt.Fprintln(os.Stderr, "opstartup: no CPU profile from", addr)
			return
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("cpu-%02d.pb.gz", i)), body, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "opstartup:", err)
			return
		}
	}
}
