package controlplane

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// TestStart starts one control plane (the package's only one) and checks what the harness
// promises of it: the CRDs, the admin user behind the client, the kubeconfig and kubectl, and a
// Stop that removes the kubeconfig.
func TestStart(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "nested", "kubeconfig")
	cp, err := Start(Options{Kubeconfig: kubeconfig, User: "harness-test-admin"})
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
	t.Run("the client of a scheme reads what kubectl wrote", func(t *testing.T) {
		s, err := Scheme()
		require.NoError(t, err)
		c, err := cp.Client(s)
		require.NoError(t, err)
		var ns corev1.Namespace
		require.NoError(t, c.Get(t.Context(), types.NamespacedName{Name: "from-stdin"}, &ns))
		_, err = Scheme(func(*runtime.Scheme) error { return errors.New("refused") })
		require.ErrorContains(t, err, "refused", "an adder's error is returned")
	})

	require.NoError(t, cp.Stop())
	stopped = true
	assert.NoFileExists(t, kubeconfig, "Stop removes the kubeconfig")
}
