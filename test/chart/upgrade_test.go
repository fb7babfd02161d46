package chart

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// helmRun runs helm against the control plane and fails the test with its output on an error.
func (s *suite) helmRun(t *testing.T, args ...string) string {
	t.Helper()
	args = append(args, "--kubeconfig", s.cp.Kubeconfig())
	out, err := exec.Command(s.helm, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestChartDefaultPolicyIsKeptAndUpdatedInPlaceAcrossUpgrades installs and upgrades the chart
// with helm itself: the default OAuthClientPolicy, created by the first install's hook (the CRD
// was unknown then), is adopted by the release on the next helm run and updated in place ever
// after, never deleted and created again (which would leave a moment without the default
// policy). With crds.enabled=false and the CRD present, the admission policy is installed.
func TestChartDefaultPolicyIsKeptAndUpdatedInPlaceAcrossUpgrades(t *testing.T) {
	s := env
	const ns, release = "latchkey-upgrade", "up"
	chart := filepath.Join(s.root, "charts", "latchkey")
	// The CRDs as a cluster admin installs them apart from the chart.
	s.cp.MustKubectl(t, nil, "apply", "--server-side", "--force-conflicts", "-f", filepath.Join(s.root, "config", "crd", "bases"))
	s.cp.MustKubectl(t, nil, "wait", "--for=condition=Established", "--timeout=30s", "crd", "--all")
	// A limit no other test's client comes near: the default policy binds every namespace.
	first := []string{"--namespace", ns, "--set", "crds.enabled=false", "--set", "clientPolicy.default.maxLifetimes.accessToken=86400"}

	// Without the CRD known (helm template has no cluster), the policy is a post-install hook
	// that carries the release's ownership metadata, as the first install creates it.
	hook, err := exec.Command(s.helm, append([]string{"template", release, chart, "--show-only", "templates/oauthclientpolicy-default.yaml"}, first...)...).Output()
	require.NoError(t, err)
	require.Contains(t, string(hook), "helm.sh/hook: post-install,post-upgrade")
	require.Contains(t, string(hook), "meta.helm.sh/release-name: "+release)
	s.cp.MustKubectl(t, nil, "create", "namespace", ns)
	// As helm creates a hook: server-side apply by field manager "helm" (the CLI's, whatever
	// the binary's name).
	s.cp.MustKubectl(t, hook, "apply", "--server-side", "--field-manager=helm", "-f", "-")
	policy := "oauthclientpolicy/" + release + "-latchkey-default"
	uid := s.cp.MustKubectl(t, nil, "get", "-n", ns, policy, "-o", "jsonpath={.metadata.uid}")
	t.Cleanup(func() {
		_, _ = exec.Command(s.helm, "uninstall", release, "--namespace", ns, "--kubeconfig", s.cp.Kubeconfig()).CombinedOutput()
		_, _ = s.cp.Kubectl(nil, "delete", "-n", ns, policy, "--ignore-not-found")
	})

	// The CRD is known now: helm takes the hook's object over as a resource of the release.
	s.helmRun(t, append([]string{"install", release, chart}, first...)...)
	assert.Equal(t, uid, s.cp.MustKubectl(t, nil, "get", "-n", ns, policy, "-o", "jsonpath={.metadata.uid}"), "adopted, not created again")
	s.cp.MustKubectl(t, nil, "get", "validatingadmissionpolicy", release+"-latchkey-oauthclientpolicy")
	s.cp.MustKubectl(t, nil, "get", "validatingadmissionpolicybinding", release+"-latchkey-oauthclientpolicy-default")

	// An upgrade that changes the default policy updates it in place.
	s.helmRun(t, "upgrade", release, chart, "--namespace", ns, "--set", "crds.enabled=false",
		"--set", "clientPolicy.default.maxLifetimes.accessToken=86000")
	assert.Equal(t, uid, s.cp.MustKubectl(t, nil, "get", "-n", ns, policy, "-o", "jsonpath={.metadata.uid}"), "updated in place")
	assert.Equal(t, "86000", s.cp.MustKubectl(t, nil, "get", "-n", ns, policy, "-o", "jsonpath={.spec.maxLifetimes.accessToken}"))
	assert.NotContains(t, s.cp.MustKubectl(t, nil, "get", "-n", ns, policy, "-o", "jsonpath={.metadata.annotations}"), "helm.sh/hook\":",
		"no longer a hook")
}

// TestChartAdmissionPolicyNeedsTheOAuthClientPolicyKind renders the chart without its CRDs: the
// admission policy is left out unless the cluster has OAuthClientPolicy, since with
// failurePolicy Fail and an unknown paramKind the API server would refuse every OAuthClient.
func TestChartAdmissionPolicyNeedsTheOAuthClientPolicyKind(t *testing.T) {
	s := env
	chart := filepath.Join(s.root, "charts", "latchkey")
	for _, tc := range []struct {
		name string
		args []string
		want bool
	}{
		{"with the chart's CRDs it is rendered", nil, true},
		{"without the CRDs and without the kind it is not", []string{"--set", "crds.enabled=false"}, false},
		{"without the CRDs but with the kind in the cluster it is", []string{"--set", "crds.enabled=false", "--api-versions", "oauth.latchkey.dev/v1alpha1/OAuthClientPolicy"}, true},
		{"turned off it is not", []string{"--set", "clientPolicy.admission=false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(s.helm, append([]string{"template", "adm", chart, "--namespace", "adm"}, tc.args...)...).CombinedOutput()
			require.NoError(t, err, string(out))
			assert.Equal(t, tc.want, strings.Contains(string(out), "kind: ValidatingAdmissionPolicy\n"))
		})
	}
}
