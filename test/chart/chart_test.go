package chart

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/internal/harness/controlplane"
)

// helmVersion is the helm `make helm-lint` builds into bin/ (HELM_VERSION in the Makefile, and
// the ldflags of its $(HELM) rule).
const helmVersion = "v4.3.1"

type suite struct {
	root string
	tmp  string
	helm string
	cp   *controlplane.ControlPlane
	// binary is the latchkey binary, built once.
	binary string
}

var env *suite //nolint:gochecknoglobals // one control plane per package, set up in TestMain

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	s, stop, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart test setup:", err)
		return 1
	}
	defer stop()
	env = s
	return m.Run()
}

func setup() (_ *suite, _ func(), err error) {
	root, err := harness.Root()
	if err != nil {
		return nil, nil, err
	}
	helm := os.Getenv("HELM")
	if helm == "" {
		// Missing, it is built as `make helm-lint` builds it (the harness's tool policy).
		helm, err = harness.Provide("helm "+helmVersion, func() (string, error) {
			path := filepath.Join(root, "bin", "helm-"+helmVersion)
			_, err := os.Stat(path)
			return path, err
		}, harness.Install{Script: "hack/go-install.sh", Args: []string{"helm", "helm.sh/helm/v4/cmd/helm", helmVersion,
			"-X helm.sh/helm/v4/internal/version.version=" + helmVersion}})
		if err != nil {
			return nil, nil, err
		}
	} else if _, err := os.Stat(helm); err != nil {
		return nil, nil, fmt.Errorf("HELM: %w", err)
	}
	tmp, err := os.MkdirTemp("", "latchkey-chart-")
	if err != nil {
		return nil, nil, err
	}
	s := &suite{root: root, tmp: tmp, helm: helm}
	stop := func() {
		if s.cp != nil {
			_ = s.cp.Stop()
		}
		_ = os.RemoveAll(tmp)
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	// No CRDs here: the chart installs them. The admin user (system:masters) is the base of the
	// impersonating kubeconfigs.
	if s.cp, err = controlplane.Start(controlplane.Options{NoCRDs: true, Kubeconfig: filepath.Join(tmp, "admin.kubeconfig"), User: "chart-admin"}); err != nil {
		return nil, nil, err
	}
	if s.binary, err = harness.BuildBinary(tmp); err != nil {
		return nil, nil, err
	}
	return s, stop, nil
}

// render runs helm template for a release in a namespace (no test hooks) and returns its objects.
func (s *suite) render(t *testing.T, release, namespace string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", release, filepath.Join(s.root, "charts", "latchkey"), "--namespace", namespace, "--skip-tests"}
	for _, kv := range set {
		args = append(args, "--set", kv)
	}
	out, err := exec.Command(s.helm, args...).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("helm template: %v: %s", err, ee.Stderr)
	}
	require.NoError(t, err)
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if m == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if _, hook := u.GetAnnotations()["helm.sh/hook"]; hook {
			continue // the helm test Pod needs a kubelet
		}
		objs = append(objs, u)
	}
	require.NotEmpty(t, objs)
	return objs
}

// install creates the namespace and applies every rendered object (the Deployment and Service
// too: without a kubelet they never run, but the API server must accept them).
func (s *suite) install(t *testing.T, namespace string, objs []*unstructured.Unstructured) {
	t.Helper()
	if out, err := s.cp.Kubectl(nil, "create", "namespace", namespace); err != nil && !strings.Contains(out, "AlreadyExists") {
		t.Fatalf("create namespace: %v: %s", err, out)
	}
	items := make([]any, 0, len(objs))
	for _, o := range objs {
		items = append(items, o.Object)
	}
	list, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	require.NoError(t, err)
	s.cp.MustKubectl(t, list, "apply", "--server-side", "--force-conflicts", "-f", "-")
	s.cp.MustKubectl(t, nil, "wait", "--for=condition=Established", "--timeout=30s", "crd", "--all")
}

func find(objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	return nil
}

// managerClusterRole is the server's ClusterRole (<fullname>-manager; the chart also renders the
// view and edit ClusterRoles for people).
func managerClusterRole(objs []*unstructured.Unstructured) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" && strings.HasSuffix(o.GetName(), "-manager") {
			return o
		}
	}
	return nil
}

// containerArgs returns the args of the rendered Deployment's latchkey container.
func containerArgs(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	raw, _, err := unstructured.NestedStringSlice(container(t, objs), "args")
	require.NoError(t, err)
	require.NotEmpty(t, raw)
	return raw
}

// serviceAccountUser is the user name of the Deployment's ServiceAccount.
func serviceAccountUser(t *testing.T, namespace string, objs []*unstructured.Unstructured) string {
	t.Helper()
	d := find(objs, "Deployment")
	require.NotNil(t, d)
	sa, _, err := unstructured.NestedString(d.Object, "spec", "template", "spec", "serviceAccountName")
	require.NoError(t, err)
	require.NotEmpty(t, sa)
	return "system:serviceaccount:" + namespace + ":" + sa
}

// impersonatingKubeconfig writes a kubeconfig of the admin user that acts as user (`as:`).
func (s *suite) impersonatingKubeconfig(t *testing.T, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(s.cp.Kubeconfig())
	require.NoError(t, err)
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = user
	}
	path := filepath.Join(s.tmp, strings.ReplaceAll(user, ":", "_")+".kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

// mountedFile stands in for a file the kubelet mounts from a Secret at path (a key of the
// chart's DPoP nonce or upstream token key Secret): a file of 32 random bytes in the test's
// folder, so that the process can start outside a Pod. The values tests check the mounts.
func (s *suite) mountedFile(t *testing.T, path string) string {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), filepath.Base(path))
	require.NoError(t, os.WriteFile(f, []byte(hex.EncodeToString(b)), 0o600))
	return f
}

// logPath is the log of the latchkey process of the test.
func (s *suite) logPath(t *testing.T) string {
	return filepath.Join(s.tmp, strings.ReplaceAll(t.Name(), "/", "_")+".log")
}

// start runs the binary with the chart's args, overriding only the listen, probe and metrics
// addresses and the issuer (loopback), plus the impersonating kubeconfig, and waits up to
// timeout for it to be ready. The process is stopped when the test ends; its log is in
// s.logPath(t), and shown when the test fails.
func (s *suite) start(t *testing.T, chartArgs []string, kubeconfig string, timeout time.Duration) (*harness.Server, error) {
	t.Helper()
	overridden := []string{"--listen-address", "--health-probe-bind-address", "--metrics-bind-address", "--issuer", "--kubeconfig"}
	var args []string
	for _, a := range chartArgs {
		name, value, _ := strings.Cut(a, "=")
		if slices.Contains(overridden, name) {
			continue
		}
		if strings.HasSuffix(name, "-file") && strings.HasPrefix(value, "/etc/latchkey/") {
			a = name + "=" + s.mountedFile(t, value)
		}
		args = append(args, a)
	}
	require.Equal(t, "serve", args[0], "the chart's first arg")
	var srv *harness.Server
	t.Cleanup(func() {
		if srv != nil {
			srv.Stop(10 * time.Second)
		}
		if t.Failed() || os.Getenv("CHART_SHOW_LOG") != "" {
			b, _ := os.ReadFile(s.logPath(t))
			t.Logf("latchkey log:\n%s", b)
		}
	})
	var err error
	srv, err = harness.StartServer(t.Context(), s.binary, s.logPath(t), timeout, func(a harness.ServeAddrs) []string {
		all := append(slices.Clone(args), "--kubeconfig="+kubeconfig, "--issuer="+a.URL())
		t.Logf("latchkey %s %s", strings.Join(all, " "), strings.Join(a.Args(), " "))
		return all
	})
	return srv, err
}

func token(t *testing.T, srv *harness.Server) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read:projects"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/oauth2/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-service", "demo-service-secret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // read fully below
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

// TestChartInstallsAndIssuesTokens is the whole path: render, apply, run as the chart's
// ServiceAccount, apply the samples, get a token; the chart's default client rate limit reaches
// the server.
func TestChartInstallsAndIssuesTokens(t *testing.T) {
	s := env
	const ns = "latchkey"
	objs := s.render(t, "latchkey", ns, "clientRateLimit.requestsPerMinute=60", "clientRateLimit.burst=2")
	s.install(t, ns, objs)
	user := serviceAccountUser(t, ns, objs)
	require.Equal(t, "system:serviceaccount:latchkey:latchkey", user)
	// The impersonated identity is what the API server authorizes.
	kc := s.impersonatingKubeconfig(t, user)
	whoami, err := exec.Command(s.cp.KubectlPath(), "--kubeconfig", kc, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").CombinedOutput()
	require.NoError(t, err, "%s", whoami)
	require.Equal(t, user, strings.TrimSpace(string(whoami)))

	srv, err := s.start(t, containerArgs(t, objs), kc, 30*time.Second)
	require.NoError(t, err, "latchkey (as %s) not ready within 30s", user)

	s.cp.MustKubectl(t, nil, "apply", "-f", filepath.Join(s.root, "config", "samples"))
	s.cp.MustKubectl(t, nil, "wait", "-n", "default", "--for=condition=Ready", "--timeout=30s", "oauthclient/demo-service")
	var (
		status int
		body   map[string]any
	)
	require.Eventually(t, func() bool {
		status, body = token(t, srv)
		return status == http.StatusOK
	}, 20*time.Second, 200*time.Millisecond, "token: %d %v", status, body)
	require.NotEmpty(t, body["access_token"])
	require.Equal(t, "Bearer", body["token_type"])

	// One token of the burst of two is spent: of the next three, at least the last is refused.
	for range 3 {
		status, body = token(t, srv)
	}
	assert.Equal(t, http.StatusTooManyRequests, status, "the chart's clientRateLimit: %v", body)
	assert.Equal(t, "temporarily_unavailable", body["error"])
}

// TestMissingRBACRuleFails removes list and watch on Secrets from the rendered ClusterRole (a
// post-render edit) and checks the server, run as that ServiceAccount, never becomes ready and
// logs the API server's refusal.
func TestMissingRBACRuleFails(t *testing.T) {
	s := env
	const ns = "latchkey-broken"
	objs := s.render(t, "broken", ns)
	cr := managerClusterRole(objs)
	require.NotNil(t, cr)
	rules, _, err := unstructured.NestedSlice(cr.Object, "rules")
	require.NoError(t, err)
	edited := false
	for _, r := range rules {
		rule := r.(map[string]any) //nolint:forcetypeassert // decoded YAML
		resources, _, _ := unstructured.NestedStringSlice(rule, "resources")
		if !slices.Contains(resources, "secrets") {
			continue
		}
		verbs, _, _ := unstructured.NestedStringSlice(rule, "verbs")
		verbs = slices.DeleteFunc(verbs, func(v string) bool { return v == "list" || v == "watch" })
		rule["verbs"] = toAny(verbs)
		edited = true
	}
	require.True(t, edited, "the ClusterRole has no rule for secrets")
	require.NoError(t, unstructured.SetNestedSlice(cr.Object, rules, "rules"))
	s.install(t, ns, objs)

	_, err = s.start(t, containerArgs(t, objs), s.impersonatingKubeconfig(t, serviceAccountUser(t, ns, objs)), 15*time.Second)
	require.Error(t, err, "latchkey became ready without list/watch on secrets")
	b, err := os.ReadFile(s.logPath(t))
	require.NoError(t, err)
	require.Contains(t, string(b), "forbidden")
	require.Contains(t, string(b), "secrets")
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// workloadManifests are a ServiceAccount and the OAuthClient bound to it.
const workloadManifests = `apiVersion: v1
kind: ServiceAccount
metadata: {name: worker, namespace: default}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: worker, namespace: default}
spec:
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: service_account_token
  serviceAccount: {name: worker}
`

// assertionToken gets a client_credentials token for the worker client with a ServiceAccount
// token as its client assertion.
func assertionToken(t *testing.T, srv *harness.Server, assertion string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"worker.default"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/oauth2/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // read fully below
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

// TestChartRBACVerifiesServiceAccountTokens runs the server as the chart's ServiceAccount in
// both verification modes: TokenReview needs create on tokenreviews, JWKS get on the API
// server's discovery URLs; the chart's ClusterRole grants both.
func TestChartRBACVerifiesServiceAccountTokens(t *testing.T) {
	s := env
	for _, mode := range []string{"TokenReview", "JWKS"} {
		t.Run(mode+" mode works with the chart's RBAC", func(t *testing.T) {
			ns := "latchkey-" + strings.ToLower(mode)
			objs := s.render(t, "sa-"+strings.ToLower(mode), ns, "serviceAccountTokens.verification="+mode)
			s.install(t, ns, objs)
			srv, err := s.start(t, containerArgs(t, objs), s.impersonatingKubeconfig(t, serviceAccountUser(t, ns, objs)), 30*time.Second)
			require.NoError(t, err)
			s.cp.MustKubectl(t, []byte(workloadManifests), "apply", "-f", "-")
			s.cp.MustKubectl(t, nil, "wait", "-n", "default", "--for=condition=Ready", "--timeout=30s", "oauthclient/worker")
			tok := strings.TrimSpace(s.cp.MustKubectl(t, nil, "create", "token", "worker", "-n", "default", "--audience", srv.URL()))
			var (
				status int
				body   map[string]any
			)
			require.Eventually(t, func() bool {
				status, body = assertionToken(t, srv, tok)
				return status == http.StatusOK
			}, 20*time.Second, 200*time.Millisecond, "token: %d %v", status, body)
			require.NotEmpty(t, body["access_token"])
		})
	}
}
