package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// Options tunes Start.
type Options struct {
	// Kubeconfig is where the admin kubeconfig is written (atomically: a watcher never reads
	// half a file); Stop removes it. Empty: a file in a temporary directory of the control plane.
	Kubeconfig string
	// CRDs is the directory of the CRDs to install; empty: <root>/config/crd/bases. It must exist.
	CRDs string
	// NoCRDs installs no CRDs (the chart test installs them with the chart).
	NoCRDs bool
	// User is the admin user's name; empty: latchkey-admin.
	User string
	// Scheme registers the API groups that Client knows besides client-go's (an API group's
	// AddToScheme).
	Scheme []func(*runtime.Scheme) error
}

// ControlPlane is a running kube-apiserver and etcd with an admin user.
type ControlPlane struct {
	env        *envtest.Environment
	config     *rest.Config
	kubeconfig string
	tmp        string // the temporary directory of the kubeconfig, if Start made one
	kubectl    string
	scheme     *runtime.Scheme
	client     client.Client
}

// Assets returns the directory of the envtest binaries: KUBEBUILDER_ASSETS, else <root>/bin/k8s.
// When a binary is missing there it builds them with hack/envtest-binaries.sh (which takes
// minutes the first time) or returns an error that says what to run.
func Assets() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		root, err := harness.Root()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin", "k8s")
	}
	binaries := []string{"kube-apiserver", "etcd", "kubectl"}
	find := func() (string, error) {
		for _, b := range binaries {
			info, err := os.Stat(filepath.Join(dir, b)) //nolint:gosec // KUBEBUILDER_ASSETS is the developer's choice
			if err != nil {
				return "", err
			}
			if info.Mode()&0o111 == 0 {
				return "", fmt.Errorf("%s is not executable", filepath.Join(dir, b))
			}
		}
		return dir, nil
	}
	return harness.Provide("the envtest binaries ("+strings.Join(binaries, ", ")+") in "+dir, find,
		harness.Install{Script: "hack/envtest-binaries.sh", Env: []string{"ENVTEST_BIN_DIR=" + dir}})
}

// Start starts a control plane, installs the CRDs and writes the admin kubeconfig. Stop it with
// Stop.
func Start(opts Options) (_ *ControlPlane, err error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	// The scheme first: a bad one fails before anything starts.
	scheme := runtime.NewScheme()
	for _, add := range append([]func(*runtime.Scheme) error{clientgoscheme.AddToScheme}, opts.Scheme...) {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("scheme: %w", err)
		}
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	if !opts.NoCRDs {
		crds := opts.CRDs
		if crds == "" {
			root, err := harness.Root()
			if err != nil {
				return nil, err
			}
			crds = filepath.Join(root, "config", "crd", "bases")
		}
		env.CRDDirectoryPaths, env.ErrorIfCRDPathMissing = []string{crds}, true
	}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("start control plane (binaries from %s): %w", assets, err)
	}
	cp := &ControlPlane{env: env, kubeconfig: opts.Kubeconfig, kubectl: filepath.Join(assets, "kubectl"), scheme: scheme}
	defer func() {
		if err != nil {
			err = errors.Join(err, cp.Stop())
		}
	}()
	user := opts.User
	if user == "" {
		user = "latchkey-admin"
	}
	admin, err := env.AddUser(envtest.User{Name: user, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("add admin user: %w", err)
	}
	cp.config = admin.Config()
	kc, err := admin.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("admin kubeconfig: %w", err)
	}
	if cp.kubeconfig == "" {
		if cp.tmp, err = os.MkdirTemp("", "latchkey-controlplane-"); err != nil {
			return nil, err
		}
		cp.kubeconfig = filepath.Join(cp.tmp, "kubeconfig")
	}
	if err := writeFile(cp.kubeconfig, kc); err != nil {
		return nil, err
	}
	if cp.client, err = client.New(cp.Config(), client.Options{Scheme: cp.scheme}); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return cp, nil
}

// writeFile writes b to a temporary name beside path and renames it.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Stop stops the control plane and removes the kubeconfig.
func (cp *ControlPlane) Stop() error {
	err := cp.env.Stop()
	if err != nil {
		err = fmt.Errorf("stop control plane: %w", err)
	}
	if cp.kubeconfig != "" {
		if rmErr := os.Remove(cp.kubeconfig); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = errors.Join(err, rmErr)
		}
	}
	if cp.tmp != "" {
		err = errors.Join(err, os.RemoveAll(cp.tmp))
	}
	return err
}

// Config is the admin user's REST config.
func (cp *ControlPlane) Config() *rest.Config { return rest.CopyConfig(cp.config) }

// ServiceAccountSigningKey returns the PEM private key the API server signs ServiceAccount
// tokens with, so that a test can forge what the API server would never issue (a legacy
// Secret-based token, an expired one) with the real key.
func (cp *ControlPlane) ServiceAccountSigningKey() ([]byte, error) {
	return os.ReadFile(filepath.Join(cp.env.ControlPlane.APIServer.CertDir, "sa-signer.key"))
}

// ServiceAccountIssuer returns the iss of the API server's ServiceAccount tokens (envtest sets
// its secure URL).
func (cp *ControlPlane) ServiceAccountIssuer() string {
	return cp.env.ControlPlane.APIServer.SecureServing.URL("https", "/").String()
}

// Host is the API server's URL.
func (cp *ControlPlane) Host() string { return cp.config.Host }

// Kubeconfig is the path of the admin kubeconfig.
func (cp *ControlPlane) Kubeconfig() string { return cp.kubeconfig }

// KubectlPath is the kubectl of the control plane's build, for runs with another kubeconfig.
func (cp *ControlPlane) KubectlPath() string { return cp.kubectl }

// Scheme is the scheme of Client: client-go's types and those of Options.Scheme.
func (cp *ControlPlane) Scheme() *runtime.Scheme { return cp.scheme }

// Client is a client of the admin user with Scheme.
func (cp *ControlPlane) Client() client.Client { return cp.client }

// Kubectl runs kubectl as the admin user with stdin (nil: none) and returns its combined output.
func (cp *ControlPlane) Kubectl(stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(context.Background(), cp.kubectl, append([]string{"--kubeconfig", cp.kubeconfig}, args...)...) //nolint:gosec // the test's own arguments
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// MustKubectl is Kubectl that fails the test, with kubectl's output, when kubectl fails.
func (cp *ControlPlane) MustKubectl(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	out, err := cp.Kubectl(stdin, args...)
	require.NoError(t, err, "kubectl %s: %s", strings.Join(args, " "), out)
	return out
}

// Logger is the logger for controller-runtime in tests (log.SetLogger): it discards, unless
// LATCHKEY_TEST_LOG is set, then it writes to stderr.
func Logger() logr.Logger {
	if os.Getenv("LATCHKEY_TEST_LOG") == "" {
		return logr.Discard()
	}
	return funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 1})
}
