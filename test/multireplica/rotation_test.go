package multireplica

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// The rotating client of the secret rotation test. Each replica is asked from its own loopback
// address, none of which another test uses, so the few failures the test causes (while a
// replica takes in the new secret, and the old secret after the window) stay far below the
// per-address brute-force limits.
const (
	rotatingID    = "rotating-service"
	rotatingOld   = "rotating-old-secret-7c21"
	rotatingNew   = "rotating-new-secret-9d43"
	rotationGrace = 10 * time.Second
)

var rotationAddrs = []string{"127.0.0.7", "127.0.0.8", "127.0.0.9"} //nolint:gochecknoglobals // constant list

// rotatingClient is an External client with a grace period, and its Secret holding secret.
func rotatingClient(secret string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Secret
metadata: {name: %[1]s-oauth-client, namespace: default}
stringData: {client-secret: %[2]s}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: %[1]s, namespace: default}
spec:
  clientID: %[1]s
  type: Confidential
  grantTypes: [client_credentials]
  scopes: ["read:projects"]
  secretPolicy: External
  secretRef: {name: %[1]s-oauth-client, key: client-secret}
  secretRotation: {gracePeriod: %[3]s}
`, rotatingID, secret, rotationGrace)
}

// TestARotatedSecretWorksOnEveryReplicaInsideTheGracePeriodAndOnNoneAfter changes an External
// client's Secret under three replicas sharing Redis: once every replica takes the new secret,
// the old one still gets tokens from each of them until the time the leader recorded in
// status.credentials.previousAcceptedUntil, and from none of them after it.
func TestARotatedSecretWorksOnEveryReplicaInsideTheGracePeriodAndOnNoneAfter(t *testing.T) {
	s := env
	clients := make([]*http.Client, len(s.replicas))
	for i := range s.replicas {
		clients[i] = harness.ClientFrom(rotationAddrs[i])
	}
	cc := url.Values{"grant_type": {"client_credentials"}}
	post := func(i int, secret string) apiResponse {
		t.Helper()
		res, err := s.replicas[i].postFormWith(t.Context(), clients[i], "/oauth2/token", clientAuth{rotatingID, secret}, cc)
		require.NoError(t, err)
		return res
	}
	// waitFor polls replica i with the secret until it answers want (a 429 of the brute-force
	// limit is waited out: it records nothing).
	waitFor := func(i int, secret string, want int, timeout time.Duration) time.Time {
		t.Helper()
		var last apiResponse
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			if last = post(i, secret); last.status == want {
				return time.Now()
			}
			time.Sleep(200 * time.Millisecond)
		}
		require.FailNow(t, "no answer "+http.StatusText(want), "%s with the secret: %s", s.replicas[i].name, last)
		return time.Time{}
	}

	s.cp.MustKubectl(t, rotatingClient(rotatingOld), "apply", "-f", "-")
	s.cp.MustKubectl(t, nil, "wait", "-n", "default", "--for=jsonpath={.status.credentials.currentSince}", "--timeout=30s", "oauthclient/"+rotatingID)
	for i := range s.replicas {
		waitFor(i, rotatingOld, http.StatusOK, 30*time.Second)
	}

	s.cp.MustKubectl(t, rotatingClient(rotatingNew), "apply", "-f", "-")
	for i := range s.replicas {
		waitFor(i, rotatingNew, http.StatusOK, 30*time.Second)
	}
	s.cp.MustKubectl(t, nil, "wait", "-n", "default", "--for=jsonpath={.status.credentials.previousAcceptedUntil}", "--timeout=30s", "oauthclient/"+rotatingID)
	out := s.cp.MustKubectl(t, nil, "get", "oauthclient", rotatingID, "-n", "default", "-o", "jsonpath={.status.credentials.previousAcceptedUntil}")
	until, err := time.Parse(time.RFC3339, strings.TrimSpace(out))
	require.NoError(t, err, out)
	require.Greater(t, time.Until(until), time.Second, "the window (until %s) must still be open to check it", until)

	for i, r := range s.replicas {
		res := post(i, rotatingOld)
		assert.Equal(t, http.StatusOK, res.status, "%s accepts the old secret inside the grace period: %s", r.name, res)
		res = post(i, rotatingNew)
		assert.Equal(t, http.StatusOK, res.status, "%s accepts the new secret: %s", r.name, res)
	}

	for i, r := range s.replicas {
		refused := waitFor(i, rotatingOld, http.StatusUnauthorized, rotationGrace+30*time.Second)
		assert.False(t, refused.Before(until), "%s refused the old secret at %s, before %s", r.name, refused, until)
	}
	for i, r := range s.replicas {
		res := post(i, rotatingNew)
		assert.Equal(t, http.StatusOK, res.status, "%s accepts the new secret after the grace period: %s", r.name, res)
	}
	assert.Eventually(t, func() bool {
		out, err := s.cp.Kubectl(nil, "get", "oauthclient", rotatingID, "-n", "default", "-o", "jsonpath={.status.credentials.previousAcceptedUntil}")
		return err == nil && strings.TrimSpace(out) == ""
	}, 30*time.Second, 200*time.Millisecond, "the leader drops previousAcceptedUntil once it passed")

	var logs strings.Builder
	for _, r := range s.replicas {
		logs.WriteString(r.srv.Tail(1 << 20))
	}
	all := logs.String()
	assert.Contains(t, all, `"client_previous_secret_used"`, "the use of the previous secret is audited")
	assert.NotContains(t, all, rotatingOld, "no secret is logged")
	assert.NotContains(t, all, rotatingNew, "no secret is logged")
}
