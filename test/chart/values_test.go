package chart

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// gatewayAPIVersion is the Gateway API release whose CRDs (from its Go module) check the
// chart's HTTPRoute.
const gatewayAPIVersion = "v1.3.0"

// templateErr runs helm template with the --set values and returns its error output; the
// render must fail.
func (s *suite) templateErr(t *testing.T, set ...string) string {
	t.Helper()
	args := []string{"template", "latchkey", filepath.Join(s.root, "charts", "latchkey"), "--namespace", "latchkey"}
	for _, kv := range set {
		args = append(args, "--set", kv)
	}
	out, err := exec.Command(s.helm, args...).CombinedOutput()
	require.Error(t, err, "helm template %v rendered, but it must be refused", set)
	return string(out)
}

// container is the rendered Deployment's latchkey container.
func container(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	d := find(objs, "Deployment")
	require.NotNil(t, d, "the chart renders no Deployment")
	cs, _, err := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	require.NoError(t, err)
	require.NotEmpty(t, cs)
	c, ok := cs[0].(map[string]any)
	require.True(t, ok)
	return c
}

func TestMisspeltValuesAreRefusedWithTheKeyNamed(t *testing.T) {
	s := env
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{name: "a misspelt top-level value is refused", set: []string{"replicaCont=2"},
			want: "additional properties 'replicaCont' not allowed"},
		{name: "a misspelt nested value is refused with its path", set: []string{"store.redis.tls.enable=true"},
			want: "at '/store/redis/tls': additional properties 'enable' not allowed"},
		{name: "a misspelt value of a Deployment knob is refused", set: []string{"terminationGracePeriod=10"},
			want: "additional properties 'terminationGracePeriod' not allowed"},
		{name: "a misspelt HTTPRoute value is refused", set: []string{"httpRoute.hostname=auth.example.com"},
			want: "at '/httpRoute': additional properties 'hostname' not allowed"},
		{name: "a log level the server does not know is refused", set: []string{"logLevel=warning"},
			want: "at '/logLevel'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Contains(t, s.templateErr(t, tc.set...), tc.want)
		})
	}
}

func TestImageDigestOverridesTheTag(t *testing.T) {
	s := env
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{name: "the tag is used without a digest", set: []string{"image.tag=v1.2.3"}, want: "ghcr.io/latchkey-dev/latchkey:v1.2.3"},
		{name: "the digest replaces the tag", set: []string{"image.tag=v1.2.3", "image.digest=" + digest}, want: "ghcr.io/latchkey-dev/latchkey@" + digest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, container(t, s.render(t, "latchkey", "latchkey", tc.set...))["image"])
		})
	}
	assert.Contains(t, s.templateErr(t, "image.digest=v1.2.3"), "at '/image/digest'")
}

func TestCommonLabelsAreOnEveryObject(t *testing.T) {
	s := env
	set := []string{"commonLabels.team=identity", "commonLabels.app\\.kubernetes\\.io/name=not-the-chart",
		"httpRoute.enabled=true", "httpRoute.parentRefs[0].name=public", "httpRoute.labels.team=route", "ingress.enabled=true"}
	// No object carries a label twice (a decoder would keep one of them silently).
	args := []string{"template", "latchkey", filepath.Join(s.root, "charts", "latchkey"), "--namespace", "latchkey"}
	for _, kv := range set {
		args = append(args, "--set", kv)
	}
	out, err := exec.Command(s.helm, args...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var m map[string]any
		require.NoError(t, yaml.UnmarshalStrict([]byte(doc), &m), "%s", doc)
	}
	objs := s.render(t, "latchkey", "latchkey", set...)
	for _, o := range objs {
		assert.Equal(t, "identity", o.GetLabels()["team"], "%s %s", o.GetKind(), o.GetName())
		assert.Equal(t, "latchkey", o.GetLabels()["app.kubernetes.io/name"], "the chart's own label wins: %s %s", o.GetKind(), o.GetName())
	}
	d := find(objs, "Deployment")
	pod, _, err := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
	require.NoError(t, err)
	assert.Equal(t, "identity", pod["team"])
	assert.Equal(t, "latchkey", pod["app.kubernetes.io/name"])
}

func TestRedisValuesBecomeServerFlagsAndMounts(t *testing.T) {
	s := env
	objs := s.render(t, "latchkey", "latchkey", "store.type=redis", "store.redis.address=redis:6380", "store.redis.username=lk",
		"store.redis.db=3", "store.redis.keyPrefix=prod:lk:", "store.redis.tls.enabled=true", "store.redis.tls.serverName=redis.internal",
		"store.redis.caSecret.name=redis-ca", "store.redis.caSecret.key=bundle.pem")
	args := containerArgs(t, objs)
	for _, want := range []string{"--redis-address=redis:6380", "--redis-username=lk", "--redis-db=3", "--redis-key-prefix=prod:lk:",
		"--redis-tls", "--redis-tls-server-name=redis.internal", "--redis-tls-ca-file=/etc/latchkey/redis-ca/bundle.pem"} {
		assert.Contains(t, args, want)
	}
	assert.NotContains(t, args, "--redis-tls-insecure-skip-verify")
	b, err := json.Marshal(find(objs, "Deployment").Object)
	require.NoError(t, err)
	assert.Contains(t, string(b), `{"mountPath":"/etc/latchkey/redis-ca","name":"redis-ca","readOnly":true}`)
	assert.Contains(t, string(b), `{"name":"redis-ca","secret":{"items":[{"key":"bundle.pem","path":"bundle.pem"}],"secretName":"redis-ca"}}`)

	assert.Contains(t, s.templateErr(t, "store.type=redis", "store.redis.address=r:6379", "store.redis.caSecret.name=ca"),
		"store.redis.caSecret needs store.redis.tls.enabled true")
}

func TestObservabilityValuesBecomeServerFlags(t *testing.T) {
	s := env
	defaults := containerArgs(t, s.render(t, "latchkey", "latchkey"))
	for _, flag := range []string{"--access-log=", "--otlp-endpoint=", "--otlp-protocol=", "--redis-known-records="} {
		for _, a := range defaults {
			assert.False(t, strings.HasPrefix(a, flag), "the default render passes %s", a)
		}
	}

	args := containerArgs(t, s.render(t, "latchkey", "latchkey", "accessLog=/var/log/latchkey/access.log",
		"tracing.otlpEndpoint=http://otel-collector.monitoring:4317", "tracing.otlpProtocol=grpc",
		"store.type=redis", "store.redis.address=redis:6379", "store.redis.knownRecords=0"))
	for _, want := range []string{"--access-log=/var/log/latchkey/access.log", "--otlp-endpoint=http://otel-collector.monitoring:4317",
		"--otlp-protocol=grpc", "--redis-known-records=0"} {
		assert.Contains(t, args, want)
	}
}

func TestBackchannelLogoutValuesBecomeServerFlags(t *testing.T) {
	s := env
	defaults := containerArgs(t, s.render(t, "latchkey", "latchkey"))
	assert.Contains(t, defaults, "--backchannel-logout-timeout=5s")
	assert.Contains(t, defaults, "--backchannel-logout-attempts=5")
	args := containerArgs(t, s.render(t, "latchkey", "latchkey", "backchannelLogout.timeout=2s", "backchannelLogout.attempts=3"))
	assert.Contains(t, args, "--backchannel-logout-timeout=2s")
	assert.Contains(t, args, "--backchannel-logout-attempts=3")
}

func TestRequirePushedAuthorizationRequestsBecomesAServerFlag(t *testing.T) {
	s := env
	assert.NotContains(t, containerArgs(t, s.render(t, "latchkey", "latchkey")), "--require-pushed-authorization-requests")
	args := containerArgs(t, s.render(t, "latchkey", "latchkey", "requirePushedAuthorizationRequests=true"))
	assert.Contains(t, args, "--require-pushed-authorization-requests")
}

func TestStrategyKeepsTheMemoryStoreToOneProcess(t *testing.T) {
	s := env
	strategy := func(objs []*unstructured.Unstructured) map[string]any {
		m, _, err := unstructured.NestedMap(find(objs, "Deployment").Object, "spec", "strategy")
		require.NoError(t, err)
		return m
	}
	assert.Equal(t, map[string]any{"type": "Recreate"}, strategy(s.render(t, "latchkey", "latchkey")), "memory: Recreate by default")
	assert.Equal(t, map[string]any{"type": "Recreate"}, strategy(s.render(t, "latchkey", "latchkey", "strategy.type=Recreate")))
	assert.Nil(t, strategy(s.render(t, "latchkey", "latchkey", "store.type=redis", "store.redis.address=r:6379")),
		"redis: the Kubernetes default")
	assert.Equal(t, map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": float64(0)}},
		strategy(s.render(t, "latchkey", "latchkey", "store.type=redis", "store.redis.address=r:6379", "strategy.type=RollingUpdate",
			"strategy.rollingUpdate.maxUnavailable=0")))
	assert.Contains(t, s.templateErr(t, "strategy.type=RollingUpdate"), "strategy.type RollingUpdate: store.type memory")
}

// TestHTTPRouteIsAcceptedByTheGatewayAPI installs the Gateway API's HTTPRoute CRD (from its Go
// module) and applies the chart's HTTPRoute: the API server checks it against the real schema.
func TestHTTPRouteIsAcceptedByTheGatewayAPI(t *testing.T) {
	s := env
	out, err := exec.Command("go", "mod", "download", "-json", "sigs.k8s.io/gateway-api@"+gatewayAPIVersion).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("go mod download sigs.k8s.io/gateway-api: %v: %s", err, ee.Stderr)
	}
	require.NoError(t, err)
	var mod struct{ Dir string }
	require.NoError(t, json.Unmarshal(out, &mod))
	s.cp.MustKubectl(t, nil, "apply", "--server-side", "-f", filepath.Join(mod.Dir, "config", "crd", "standard", "gateway.networking.k8s.io_httproutes.yaml"))
	s.cp.MustKubectl(t, nil, "wait", "--for=condition=Established", "--timeout=30s", "crd/httproutes.gateway.networking.k8s.io")

	const ns = "latchkey-route"
	objs := s.render(t, "route", ns, "issuer=https://auth.example.com", "httpRoute.enabled=true",
		"httpRoute.parentRefs[0].name=public", "httpRoute.parentRefs[0].namespace=gateways", "httpRoute.parentRefs[0].sectionName=https",
		"httpRoute.hostnames[0]=auth.example.com", "service.port=8080")
	route := find(objs, "HTTPRoute")
	require.NotNil(t, route, "httpRoute.enabled renders an HTTPRoute")
	var routeOnly []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "HTTPRoute" {
			routeOnly = append(routeOnly, o)
		}
	}
	s.install(t, ns, routeOnly)
	got := s.cp.MustKubectl(t, nil, "get", "-n", ns, "httproute/route-latchkey", "-o",
		"jsonpath={.spec.parentRefs[0].name}/{.spec.parentRefs[0].sectionName} {.spec.hostnames} {.spec.rules[0].backendRefs[0].name}:{.spec.rules[0].backendRefs[0].port} {.spec.rules[0].matches[0].path.value}")
	assert.Equal(t, `public/https ["auth.example.com"] route-latchkey:8080 /`, strings.TrimSpace(got))

	assert.Contains(t, s.templateErr(t, "httpRoute.enabled=true"), "httpRoute.enabled needs httpRoute.parentRefs")
}

// chartReadmeAdoptCommands are the kubectl commands of the chart README that mark the CRDs as a
// release's, for the release and namespace given (the README says latchkey and latchkey).
func (s *suite) chartReadmeAdoptCommands(t *testing.T, release, namespace string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.root, "charts", "latchkey", "README.md"))
	require.NoError(t, err)
	var cmds []string
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\\\n", " "), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "kubectl label --overwrite crd") || strings.HasPrefix(l, "kubectl annotate --overwrite crd") {
			cmds = append(cmds, l)
		}
	}
	require.Len(t, cmds, 2, "the chart README's label and annotate commands")
	sh := strings.Join(cmds, "\n")
	require.Contains(t, sh, "meta.helm.sh/release-name=latchkey meta.helm.sh/release-namespace=latchkey")
	return strings.ReplaceAll(sh, "meta.helm.sh/release-name=latchkey meta.helm.sh/release-namespace=latchkey",
		"meta.helm.sh/release-name="+release+" meta.helm.sh/release-namespace="+namespace)
}

// TestHelmInstallAdoptsTheCRDsOfRunCluster: CRDs installed outside Helm (as make run-cluster
// does) make helm install fail, until hack/helm-adopt-crds.sh (which run-cluster runs), or the
// chart README's kubectl commands that do the same, mark them as the release's.
func TestHelmInstallAdoptsTheCRDsOfRunCluster(t *testing.T) {
	s := env
	const release, ns = "adopt", "latchkey-adopt"
	helm := func(args ...string) (string, error) {
		out, err := exec.Command(s.helm, append(args, "--kubeconfig", s.cp.Kubeconfig())...).CombinedOutput()
		return string(out), err
	}
	for _, tc := range []struct {
		name  string
		adopt *exec.Cmd
	}{
		{name: "hack/helm-adopt-crds.sh marks the CRDs",
			adopt: exec.Command(filepath.Join(s.root, "hack", "helm-adopt-crds.sh"), s.cp.KubectlPath(), s.cp.Kubeconfig(), release, ns)},
		{name: "the chart README's kubectl commands mark the CRDs",
			adopt: exec.Command("bash", "-euo", "pipefail", "-c", s.chartReadmeAdoptCommands(t, release, ns))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.cp.MustKubectl(t, nil, "apply", "--server-side", "--force-conflicts", "-f", filepath.Join(s.root, "config", "crd", "bases"))
			// Whatever an earlier test left: the CRDs belong to no release.
			var ours []string
			for _, c := range strings.Fields(s.cp.MustKubectl(t, nil, "get", "crd", "-o", "name")) {
				if strings.HasSuffix(c, ".oauth.latchkey.dev") {
					ours = append(ours, c)
				}
			}
			require.NotEmpty(t, ours)
			s.cp.MustKubectl(t, nil, append(append([]string{"annotate"}, ours...), "meta.helm.sh/release-name-", "meta.helm.sh/release-namespace-")...)

			install := []string{"install", release, filepath.Join(s.root, "charts", "latchkey"), "--namespace", ns, "--create-namespace"}
			out, err := helm(install...)
			require.Error(t, err, "helm install over CRDs installed outside Helm: %s", out)
			assert.Contains(t, out, "cannot be imported into the current release")

			tc.adopt.Env = append(os.Environ(), "KUBECONFIG="+s.cp.Kubeconfig(), "PATH="+filepath.Dir(s.cp.KubectlPath())+":"+os.Getenv("PATH"))
			b, err := tc.adopt.CombinedOutput()
			require.NoError(t, err, "%s", b)
			out, err = helm(install...)
			require.NoError(t, err, "helm install after marking the CRDs: %s", out)
			got := s.cp.MustKubectl(t, nil, "get", "crd", "oauthclients.oauth.latchkey.dev", "-o",
				`jsonpath={.metadata.annotations.meta\.helm\.sh/release-name} {.metadata.labels.helm\.sh/chart}`)
			assert.Regexp(t, `^adopt latchkey-`, strings.TrimSpace(got), "the release owns the CRD and applied the chart's version of it")
			out, err = helm("uninstall", release, "--namespace", ns)
			require.NoError(t, err, "helm uninstall: %s", out)
		})
	}
}

// notesCommands returns the shell commands of the "Get a first token" steps of the chart's
// NOTES.txt (the lines indented by five spaces), as helm install prints them.
func (s *suite) notesCommands(t *testing.T, release, namespace string) []string {
	t.Helper()
	out, err := exec.Command(s.helm, "install", release, filepath.Join(s.root, "charts", "latchkey"), "--namespace", namespace,
		"--dry-run=client").CombinedOutput()
	require.NoError(t, err, "%s", out)
	_, notes, ok := strings.Cut(string(out), "\nNOTES:\n")
	require.True(t, ok, "helm install prints the NOTES: %s", out)
	_, steps, ok := strings.Cut(notes, "Get a first token:")
	require.True(t, ok)
	steps, _, _ = strings.Cut(steps, "\n4. ")
	var cmds []string
	for _, l := range strings.Split(steps, "\n") {
		if strings.HasPrefix(l, "     ") {
			cmds = append(cmds, l)
		}
	}
	require.NotEmpty(t, cmds)
	return cmds
}

// TestNotesGetAFirstToken runs the NOTES' commands as a chart user would, against the chart's
// server: only the port-forward (there is no kubelet) is replaced by the server's address.
func TestNotesGetAFirstToken(t *testing.T) {
	s := env
	const release, ns = "notes", "latchkey-notes"
	var script []string
	for _, c := range s.notesCommands(t, release, ns) {
		if strings.Contains(c, "kubectl -n "+ns+" port-forward svc/notes-latchkey 8080:80 &") {
			continue
		}
		script = append(script, c)
	}
	objs := s.render(t, release, ns)
	s.install(t, ns, objs)
	srv, err := s.start(t, containerArgs(t, objs), s.impersonatingKubeconfig(t, serviceAccountUser(t, ns, objs)), 30*time.Second)
	require.NoError(t, err)

	sh := strings.ReplaceAll(strings.Join(script, "\n"), "http://localhost:8080", srv.URL())
	require.Contains(t, sh, srv.URL()+"/oauth2/token", "the NOTES' curl line: %s", sh)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", sh)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.cp.Kubeconfig(), "PATH="+filepath.Dir(s.cp.KubectlPath())+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", sh, out)
	_, body, ok := strings.Cut(string(out), "{")
	require.True(t, ok, "curl printed no JSON: %s", out)
	var tok map[string]any
	require.NoError(t, json.Unmarshal([]byte("{"+body), &tok), "%s", out)
	assert.NotEmpty(t, tok["access_token"], "%s", out)
	assert.Equal(t, "Bearer", tok["token_type"])
}

func TestDPoPValuesBecomeServerFlagsAndTheSharedNonceSecret(t *testing.T) {
	s := env
	defaults := s.render(t, "latchkey", "latchkey")
	args := containerArgs(t, defaults)
	assert.Contains(t, args, "--dpop-proof-window=1m")
	for _, a := range args {
		assert.False(t, strings.HasPrefix(a, "--dpop-nonce") || a == "--dpop-require-nonce", "the default render passes %s", a)
	}
	for _, o := range defaults {
		assert.NotEqual(t, "latchkey-dpop-nonce", o.GetName(), "no nonce Secret without nonces")
	}

	t.Run("nonces from a chart-created Secret that every replica mounts", func(t *testing.T) {
		objs := s.render(t, "latchkey", "latchkey", "store.type=redis", "store.redis.address=redis:6379", "replicaCount=3",
			"dpop.proofWindow=30s", "dpop.nonce.enabled=true", "dpop.nonce.required=true", "dpop.nonce.period=2m")
		args := containerArgs(t, objs)
		for _, want := range []string{"--dpop-proof-window=30s", "--dpop-nonce-secret-file=/etc/latchkey/dpop-nonce/secret",
			"--dpop-nonce-period=2m", "--dpop-require-nonce"} {
			assert.Contains(t, args, want)
		}
		var secret *unstructured.Unstructured
		for _, o := range objs {
			if o.GetKind() == "Secret" && o.GetName() == "latchkey-dpop-nonce" {
				secret = o
			}
		}
		require.NotNil(t, secret, "the chart creates the nonce Secret")
		assert.Equal(t, "keep", secret.GetAnnotations()["helm.sh/resource-policy"], "kept across upgrades and uninstalls")
		enc, _, err := unstructured.NestedString(secret.Object, "data", "secret")
		require.NoError(t, err)
		raw, err := base64.StdEncoding.DecodeString(enc)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, len(raw), 32, "the server needs at least 32 bytes")
		b, err := json.Marshal(find(objs, "Deployment").Object)
		require.NoError(t, err)
		assert.Contains(t, string(b), `{"mountPath":"/etc/latchkey/dpop-nonce","name":"dpop-nonce","readOnly":true}`)
		assert.Contains(t, string(b), `{"name":"dpop-nonce","secret":{"items":[{"key":"secret","path":"secret"}],"secretName":"latchkey-dpop-nonce"}}`)
	})
	t.Run("nonces from a user-supplied Secret: the chart creates none", func(t *testing.T) {
		objs := s.render(t, "latchkey", "latchkey", "dpop.nonce.enabled=true", "dpop.nonce.secret.name=shared-dpop", "dpop.nonce.secret.key=k")
		assert.Contains(t, containerArgs(t, objs), "--dpop-nonce-secret-file=/etc/latchkey/dpop-nonce/k")
		assert.NotContains(t, containerArgs(t, objs), "--dpop-require-nonce")
		for _, o := range objs {
			assert.NotEqual(t, "latchkey-dpop-nonce", o.GetName())
		}
		b, err := json.Marshal(find(objs, "Deployment").Object)
		require.NoError(t, err)
		assert.Contains(t, string(b), `{"name":"dpop-nonce","secret":{"items":[{"key":"k","path":"k"}],"secretName":"shared-dpop"}}`)
	})
	t.Run("required nonces without nonces are refused", func(t *testing.T) {
		assert.Contains(t, s.templateErr(t, "dpop.nonce.required=true"), "dpop.nonce.required needs dpop.nonce.enabled true")
	})
	t.Run("a proof window that is no duration is refused", func(t *testing.T) {
		assert.Contains(t, s.templateErr(t, "dpop.proofWindow=soon"), "/dpop/proofWindow")
	})
}

func TestUpstreamValuesBecomeServerFlagsAndTheSharedTokenKeySecret(t *testing.T) {
	s := env
	t.Run("the default render re-checks every 5m with a chart-created key Secret every replica mounts", func(t *testing.T) {
		objs := s.render(t, "latchkey", "latchkey")
		args := containerArgs(t, objs)
		assert.Contains(t, args, "--upstream-recheck-interval=5m")
		assert.Contains(t, args, "--upstream-token-key-file=/etc/latchkey/upstream-token-key/secret")
		var secret *unstructured.Unstructured
		for _, o := range objs {
			if o.GetKind() == "Secret" && o.GetName() == "latchkey-upstream-token-key" {
				secret = o
			}
		}
		require.NotNil(t, secret, "the chart creates the token key Secret")
		assert.Equal(t, "keep", secret.GetAnnotations()["helm.sh/resource-policy"], "kept across upgrades and uninstalls")
		enc, _, err := unstructured.NestedString(secret.Object, "data", "secret")
		require.NoError(t, err)
		raw, err := base64.StdEncoding.DecodeString(enc)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, len(raw), 32, "the server needs at least 32 bytes")
		b, err := json.Marshal(find(objs, "Deployment").Object)
		require.NoError(t, err)
		assert.Contains(t, string(b), `{"mountPath":"/etc/latchkey/upstream-token-key","name":"upstream-token-key","readOnly":true}`)
	})
	t.Run("a user-supplied Secret and interval: the chart creates none", func(t *testing.T) {
		objs := s.render(t, "latchkey", "latchkey", "upstream.recheckInterval=1m", "upstream.tokenKey.secret.name=shared-key", "upstream.tokenKey.secret.key=k")
		args := containerArgs(t, objs)
		assert.Contains(t, args, "--upstream-recheck-interval=1m")
		assert.Contains(t, args, "--upstream-token-key-file=/etc/latchkey/upstream-token-key/k")
		for _, o := range objs {
			assert.NotEqual(t, "latchkey-upstream-token-key", o.GetName())
		}
		b, err := json.Marshal(find(objs, "Deployment").Object)
		require.NoError(t, err)
		assert.Contains(t, string(b), `{"name":"upstream-token-key","secret":{"items":[{"key":"k","path":"k"}],"secretName":"shared-key"}}`)
	})
}

func TestUpstreamWorkloadIdentityTokenIsAProjectedVolume(t *testing.T) {
	s := env
	t.Run("by default no token is projected", func(t *testing.T) {
		b, err := json.Marshal(find(s.render(t, "latchkey", "latchkey"), "Deployment").Object)
		require.NoError(t, err)
		assert.NotContains(t, string(b), "upstream-workload-token")
	})
	t.Run("enabled, the token of the audience is mounted at the path the providers read", func(t *testing.T) {
		objs := s.render(t, "latchkey", "latchkey", "upstream.workloadIdentityToken.enabled=true",
			"upstream.workloadIdentityToken.audience=https://idp.example.com", "upstream.workloadIdentityToken.expirationSeconds=1800")
		b, err := json.Marshal(find(objs, "Deployment").Object)
		require.NoError(t, err)
		assert.Contains(t, string(b), `{"mountPath":"/var/run/secrets/tokens","name":"upstream-workload-token","readOnly":true}`)
		assert.Contains(t, string(b), `{"name":"upstream-workload-token","projected":{"sources":[{"serviceAccountToken":`+
			`{"audience":"https://idp.example.com","expirationSeconds":1800,"path":"latchkey-upstream"}}]}}`)
	})
	t.Run("enabled without an audience, or with a relative path, is refused", func(t *testing.T) {
		assert.Contains(t, s.templateErr(t, "upstream.workloadIdentityToken.enabled=true"), "upstream.workloadIdentityToken.audience is required")
		assert.Contains(t, s.templateErr(t, "upstream.workloadIdentityToken.enabled=true", "upstream.workloadIdentityToken.audience=a",
			"upstream.workloadIdentityToken.path=token"), "path")
	})
}
