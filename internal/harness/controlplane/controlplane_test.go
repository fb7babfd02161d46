package controlplane

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// probeKind is a kind that only addProbe registers.
var probeKind = schema.GroupVersionKind{Group: "harness.test", Version: "v1", Kind: "Probe"} //nolint:gochecknoglobals // a constant

func addProbe(s *runtime.Scheme) error {
	s.AddKnownTypeWithName(probeKind, &metav1.Status{})
	return nil
}

// A scheme that cannot be built fails Start before a control plane starts.
func TestStartFailsWithTheSchemeError(t *testing.T) {
	_, err := Start(Options{NoCRDs: true, Scheme: []func(*runtime.Scheme) error{
		func(*runtime.Scheme) error { return errors.New("refused") },
	}})
	require.ErrorContains(t, err, "refused")
}

// TestStart starts a control plane and checks what the harness
// promises of it: the CRDs, the admin user behind the client, the kubeconfig and kubectl, and a
// Stop that removes the kubeconfig.
func TestStart(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "nested", "kubeconfig")
	cp, err := Start(Options{Kubeconfig: kubeconfig, User: "harness-test-admin", Scheme: []func(*runtime.Scheme) error{addProbe}})
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cp.Stop()
		}
	})
	require.FileExists(t, kubeconfig)
	assert.Equal(t, kubeconfig, cp.Kubeconfig())
	assert.Equal(t, cp.Config().Host, cp.Host())

	t.Run("kubectl runs as the admin user", func(t *testing.T) {
		who := cp.MustKubectl(t, nil, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
		assert.Equal(t, "harness-test-admin", strings.TrimSpace(who))
		out := cp.MustKubectl(t, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: from-stdin}\n"), "apply", "-f", "-")
		assert.Contains(t, out, "namespace/from-stdin created")
		_, err := cp.Kubectl(nil, "get", "namespace", "no-such-namespace")
		require.Error(t, err)
	})
	t.Run("the CRDs of config/crd/bases are installed", func(t *testing.T) {
		out := cp.MustKubectl(t, nil, "get", "crd", "-o", "name")
		assert.Contains(t, out, "customresourcedefinition.apiextensions.k8s.io/oauthclients.oauth.latchkey.dev")
	})
	t.Run("the client reads what kubectl wrote, with client-go's types and those of Options.Scheme", func(t *testing.T) {
		var ns corev1.Namespace
		require.NoError(t, cp.Client().Get(t.Context(), types.NamespacedName{Name: "from-stdin"}, &ns))
		assert.True(t, cp.Scheme().Recognizes(probeKind), "Options.Scheme was applied")
	})

	require.NoError(t, cp.Stop())
	stopped = true
	assert.NoFileExists(t, kubeconfig, "Stop removes the kubeconfig")
}
