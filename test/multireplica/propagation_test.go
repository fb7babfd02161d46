package multireplica

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// propagationClients is how many clients the propagation test changes in one burst: many more
// than replicas, so that reports per object would show in the write count.
const propagationClients = 40

var oauthClientGVK = schema.GroupVersionKind{Group: "oauth.latchkey.dev", Version: "v1alpha1", Kind: "OAuthClient"} //nolint:gochecknoglobals // constant

// propagationManifest is propagationClients public clients in namespace ns, each with redirect
// URI path version.
func propagationManifest(ns, version string) []byte {
	var b strings.Builder
	for i := range propagationClients {
		fmt.Fprintf(&b, `---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: propagated-%[1]d, namespace: %[2]s}
spec:
  type: Public
  grantTypes: [authorization_code]
  redirectURIs: ["https://app.example/%[3]s"]
`, i, ns, version)
	}
	return []byte(b.String())
}

// propagationState is what a client's status says of its propagation.
type propagationState struct {
	served, status, reason, message string
	current                         bool // the condition describes the current generation
}

func (s *suite) propagationOf(ctx context.Context, ns, name string) (propagationState, error) {
	var u unstructured.Unstructured
	u.SetGroupVersionKind(oauthClientGVK)
	if err := s.cp.Client().Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &u); err != nil {
		return propagationState{}, err
	}
	var st propagationState
	st.served, _, _ = unstructured.NestedString(u.Object, "status", "served")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Propagated" {
			continue
		}
		st.status, _ = m["status"].(string)
		st.reason, _ = m["reason"].(string)
		st.message, _ = m["message"].(string)
		gen, _ := m["observedGeneration"].(int64)
		st.current = gen == u.GetGeneration()
	}
	return st, nil
}

// waitPropagation waits until every listed client's status says served, with a Propagated
// condition of status for its current generation; it returns the last state of the first.
func (s *suite) waitPropagation(t *testing.T, ns string, names []string, served, status string, timeout time.Duration) propagationState {
	t.Helper()
	var first propagationState
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i, name := range names {
			st, err := s.propagationOf(t.Context(), ns, name)
			if !assert.NoError(c, err) {
				return
			}
			if i == 0 {
				first = st
			}
			if !assert.Equal(c, served, st.served, name) || !assert.Equal(c, status, st.status, "%s: %s", name, st.message) ||
				!assert.True(c, st.current, "%s: the condition describes the current generation", name) {
				return
			}
		}
	}, timeout, 100*time.Millisecond)
	return first
}

// countLeaseWrites counts the writes of replica Leases (each one an ADDED or MODIFIED watch
// event) until the returned function is called, which returns the count.
func (s *suite) countLeaseWrites(t *testing.T) func() int {
	t.Helper()
	wc, err := client.NewWithWatch(s.cp.Config(), client.Options{Scheme: s.cp.Scheme()})
	require.NoError(t, err)
	w, err := wc.Watch(t.Context(), &coordinationv1.LeaseList{}, client.InNamespace(namespace), client.HasLabels{"oauth.latchkey.dev/replica-lease"})
	require.NoError(t, err)
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				n.Add(1)
			}
		}
	}()
	// The watch starts from now: its initial ADDED events are the existing Leases, not writes.
	initial := int64(len(s.replicas))
	return func() int {
		w.Stop()
		<-done
		return int(n.Load() - initial)
	}
}

func TestAChangeIsServed3of3AndAStoppedReplicaShows2of3UntilItsLeaseExpiresThen2of2WithReplicaReportsCostingWritesPerReplicaNotPerObject(t *testing.T) {
	s := env
	ctx := t.Context()
	ns := fmt.Sprintf("propagation-%d", time.Now().UnixNano()%1_000_000)
	s.cp.MustKubectl(t, nil, "create", "namespace", ns)
	names := make([]string, propagationClients)
	for i := range names {
		names[i] = fmt.Sprintf("propagated-%d", i)
	}
	s.cp.MustKubectl(t, propagationManifest(ns, "v1"), "apply", "-f", "-")
	s.waitPropagation(t, ns, names, "3/3", "True", 60*time.Second)

	// A burst of spec changes: the replica reports cost writes per replica (at most one a
	// second each, besides renewals), not per object.
	stopCounting := s.countLeaseWrites(t)
	start := time.Now()
	s.cp.MustKubectl(t, propagationManifest(ns, "v2"), "apply", "-f", "-")
	s.waitPropagation(t, ns, names, "3/3", "True", 60*time.Second)
	elapsed := time.Since(start)
	writes := stopCounting()
	bound := len(s.replicas) * (int(elapsed/time.Second) + 2)
	t.Logf("%d replica report writes for %d changed clients on %d replicas in %s (bound %d)", writes, propagationClients, len(s.replicas), elapsed, bound)
	assert.LessOrEqual(t, writes, bound, "replica report writes per burst")
	assert.Less(t, writes, propagationClients*len(s.replicas), "fewer writes than a report per object")

	// Each replica's metrics say the same: nothing left to take in, a watermark.
	for _, r := range s.replicas {
		lag, watermark := registryMetrics(t, r, "OAuthClient")
		assert.Zero(t, lag, "%s latchkey_registry_generation_lag", r.name)
		assert.Positive(t, watermark, "%s latchkey_registry_watermark_resource_version", r.name)
	}

	// The key Secret says every replica signs with its current keys.
	s.waitKeysServed(t, "3/3", 30*time.Second)

	// A replica that stops taking anything in (SIGSTOP): it lags until its lease expires.
	leader := s.leaderIndex(ctx, -1)
	require.GreaterOrEqual(t, leader, 0, "one leader")
	stopped := s.replicas[(leader+1)%len(s.replicas)]
	require.NoError(t, stopped.srv.Signal(syscall.SIGSTOP))
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			assert.NoError(t, stopped.srv.Signal(syscall.SIGCONT))
		}
	}
	t.Cleanup(resume)
	one := names[:1]
	s.cp.MustKubectl(t, nil, "patch", "oauthclient", one[0], "-n", ns, "--type=merge", "-p", `{"spec":{"redirectURIs":["https://app.example/v3"]}}`)
	st := s.waitPropagation(t, ns, one, "2/3", "False", replicaLease)
	assert.Equal(t, "Lagging", st.reason)
	assert.Contains(t, st.message, "not yet: "+stopped.name)
	s.waitPropagation(t, ns, one, "2/2", "True", 2*replicaLease)
	s.waitKeysServed(t, "2/2", replicaLease)

	// Back again, it reports and counts.
	resume()
	s.waitPropagation(t, ns, one, "3/3", "True", 30*time.Second)
}

// registryMetrics scrapes a replica's latchkey_registry_generation_lag and
// latchkey_registry_watermark_resource_version of kind (-1 when missing).
func registryMetrics(t *testing.T, r *replica, kind string) (lag, watermark float64) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.metrics+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	lag, watermark = -1, -1
	for line := range strings.Lines(string(body)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case `latchkey_registry_generation_lag{kind="` + kind + `"}`:
			lag = v
		case `latchkey_registry_watermark_resource_version{kind="` + kind + `"}`:
			watermark = v
		}
	}
	return lag, watermark
}

// waitKeysServed waits until the key Secret's propagation.oauth.latchkey.dev/served annotation
// (live replicas signing with its current keys, of live replicas) is want.
func (s *suite) waitKeysServed(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		out, err := s.cp.Kubectl(nil, "get", "secret", keySecret, "-n", namespace, "-o",
			`jsonpath={.metadata.annotations.propagation\.oauth\.latchkey\.dev/served}`)
		assert.NoError(c, err, out)
		assert.Equal(c, want, out)
	}, timeout, 200*time.Millisecond)
}
