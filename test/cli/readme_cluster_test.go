package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness/controlplane"
)

// clusterWait bounds how long a README block on a cluster may take to reach the state it shows:
// the operator acts on an apply within a second or so.
const clusterWait = 30 * time.Second

// readmeOnACluster runs the README's kubectl blocks (in the order a reader meets them) against cp,
// where the operator runs in namespace latchkey and serves base. Blocks that show what the
// operator does after an apply (a generated Secret, a token for a new client) are run again until
// they show it, as a reader would look again a moment later; kubectl apply is idempotent.
func readmeOnACluster(t *testing.T, cp *controlplane.ControlPlane, base string) {
	t.Helper()
	run := func(t *testing.T, script string) (string, error) {
		t.Helper()
		return runScript(t, strings.ReplaceAll(script, "http://localhost:8080", base),
			filepath.Dir(cp.KubectlPath()), "KUBECONFIG="+cp.Kubeconfig())
	}
	runUntil := func(t *testing.T, script string, shows func(out string) bool) string {
		t.Helper()
		var out string
		var err error
		assert.Eventually(t, func() bool {
			out, err = run(t, script)
			return err == nil && shows(out)
		}, clusterWait, 200*time.Millisecond)
		require.NoError(t, err, out)
		return out
	}
	events := func(ns, reason string) func() bool {
		return func() bool {
			out, err := cp.Kubectl(nil, "get", "events", "-n", ns, "--field-selector", "reason="+reason, "-o", "name")
			return err == nil && strings.TrimSpace(out) != ""
		}
	}

	t.Run("the quick start's kubectl and curl lines get a token and the JWKS", func(t *testing.T) {
		var kept []string
		for _, l := range strings.Split(readmeBlock(t, "## Quick start on a cluster"), "\n") {
			switch {
			case strings.HasPrefix(l, "helm install "):
				continue // rendered by test/chart's TestReadmeHelmCommandsRender
			case strings.Contains(l, " port-forward "):
				continue // envtest runs no Pods: the test's server is reached directly
			case strings.HasPrefix(l, "kubectl apply --server-side -k config/default"):
				// No Pod runs here: the API server validates everything without storing it.
				l = strings.Replace(l, " -k ", " --dry-run=server -k ", 1)
			}
			kept = append(kept, l)
		}
		out := runUntil(t, strings.Join(kept, "\n"), func(out string) bool {
			return strings.Contains(out, `"access_token":"`)
		})
		assert.Contains(t, out, `"keys":[`)
	})
	t.Run("the first client is Ready with the Secret the operator generated", func(t *testing.T) {
		out := runUntil(t, readmeBlock(t, "## First client with kubectl"), func(out string) bool {
			return strings.Contains(out, "True") && !strings.HasSuffix(out, "\n")
		})
		lines := strings.Split(out, "\n")
		assert.Len(t, lines[len(lines)-1], 43, "the last line is the decoded client secret (32 bytes, base64url): %q", out)
	})
	t.Run("with the README's grace period, rotating the first client's secret shows in its credentials status", func(t *testing.T) {
		cp.MustKubectl(t, nil, "patch", "oauthclient", "billing", "--type", "merge", "-p", readmeFenced(t, "## Rotate a client secret", "yaml")[0])
		out, err := run(t, readmeInline(t, "kubectl annotate oauthclient billing oauth.latchkey.dev/rotate="))
		require.NoError(t, err, out)
		runUntil(t, readmeBlock(t, "## Rotate a client secret"), func(out string) bool {
			return strings.Contains(out, `"currentSince":"`) && strings.Contains(out, `"previousAcceptedUntil":"`)
		})
	})
	t.Run("a ServiceAccount token of the README's client gets a token", func(t *testing.T) {
		runUntil(t, readmeBlock(t, "## Workloads without secrets"), func(out string) bool {
			return strings.Contains(out, `"access_token":"`)
		})
	})
	t.Run("the key pair rotation annotation emits KeyRotated", func(t *testing.T) {
		// The README describes the client signer in prose: the test makes it.
		_, err := cp.Kubectl([]byte(signerClient), "apply", "-f", "-")
		require.NoError(t, err)
		cp.MustKubectl(t, nil, "wait", "--for=condition=Ready", "--timeout=30s", "-n", "default", "oauthclient/signer")
		out, err := run(t, readmeBlock(t, "## Clients with a generated key pair (private_key_jwt)"))
		require.NoError(t, err, out)
		assert.Eventually(t, events("default", "KeyRotated"), clusterWait, 200*time.Millisecond)
	})
	t.Run("rotating signing keys emits SigningKeyRotated and key-states shows the keys", func(t *testing.T) {
		out, err := run(t, readmeBlocks(t, "## Rotate signing keys")[0])
		require.NoError(t, err, out)
		assert.Contains(t, out, `"kid":"`)
		assert.Eventually(t, events("latchkey", "SigningKeyRotated"), clusterWait, 200*time.Millisecond)
	})
	t.Run("retiring the README's example key ID, which is not in the set, emits SigningKeyRetireFailed", func(t *testing.T) {
		out, err := run(t, readmeBlocks(t, "## Rotate signing keys")[1])
		require.NoError(t, err, out)
		assert.Eventually(t, events("latchkey", "SigningKeyRetireFailed"), clusterWait, 200*time.Millisecond)
	})
	t.Run("the propagation annotations show the one replica signing with the current keys", func(t *testing.T) {
		runUntil(t, readmeBlock(t, "## Scale out with Redis"), func(out string) bool {
			return strings.HasPrefix(out, "1/1") && strings.Contains(out, `"current":"`)
		})
	})
	t.Run("the troubleshooting command shows READY for every kind, and REASON with -o wide", func(t *testing.T) {
		get := readmeInline(t, "kubectl get oauthclients,")
		for _, tc := range []struct{ args, want string }{{get, "READY"}, {get + " -o wide", "REASON"}} {
			out, err := run(t, tc.args)
			require.NoError(t, err, out)
			headers := 0
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "NAME ") {
					headers++
					assert.Contains(t, l, tc.want, out)
				}
			}
			assert.GreaterOrEqual(t, headers, 3, "a table per kind with objects (the samples' OAuthClients, Scopes, Users): %s", out)
		}
	})
}

// signerClient is the README's private_key_jwt client with a generated key pair.
const signerClient = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: signer, namespace: default}
spec:
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: private_key_jwt
  keyPolicy: Generate
`
