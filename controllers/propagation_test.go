package controllers

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/keys"
)

func TestPropagationCountsTheReplicasWhoseWatermarkReachesTheChange(t *testing.T) {
	reports := []replicaReport{
		{name: "a", watermarks: map[string]uint64{kindOAuthClient: 120, kindScope: 10}},
		{name: "b", watermarks: map[string]uint64{kindOAuthClient: 100}},
		{name: "c", watermarks: map[string]uint64{kindOAuthClient: 99}},
	}
	for _, tc := range []struct {
		name    string
		reports []replicaReport
		kind    string
		target  uint64
		served  string
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{"a watermark equal to the change's resourceVersion serves it", reports, kindOAuthClient, 100, "2/3", metav1.ConditionFalse, v1alpha1.ReasonLagging, "2/3 of 3 live replicas serve generation 4; not yet: c"},
		{"every replica past the change makes it propagated", reports, kindOAuthClient, 99, "3/3", metav1.ConditionTrue, v1alpha1.ReasonPropagated, "every live replica (3) serves generation 4"},
		{"watermarks are per kind", reports, kindScope, 11, "0/3", metav1.ConditionFalse, v1alpha1.ReasonLagging, "0/3 of 3 live replicas serve generation 4; not yet: a, b, c"},
		{"no report is not propagated", nil, kindOAuthClient, 1, "0/0", metav1.ConditionFalse, v1alpha1.ReasonNoReplicas, "no live replica has reported what it serves"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := propagationOf(tc.reports, tc.kind, tc.target)
			assert.Equal(t, tc.served, p.String())
			c := p.condition(4)
			assert.Equal(t, tc.status, c.Status)
			assert.Equal(t, tc.reason, c.Reason)
			assert.Equal(t, tc.message, c.Message)
			assert.Equal(t, int64(4), c.ObservedGeneration)
		})
	}
}

func TestTheLagCountsTheCachedObjectsWhoseGenerationIsNotTakenIn(t *testing.T) {
	a := types.NamespacedName{Namespace: "ns", Name: "a"}
	b := types.NamespacedName{Namespace: "ns", Name: "b"}
	for _, tc := range []struct {
		name    string
		served  map[types.NamespacedName]servedVersion
		cached  []cachedVersion
		pending int
		highest uint64
	}{
		{"every generation taken in", map[types.NamespacedName]servedVersion{a: {"u1", 2}, b: {"u2", 1}},
			[]cachedVersion{{a, "u1", 2, 50}, {b, "u2", 1, 70}}, 0, 70},
		{"a status write (same generation, later resourceVersion) counts as taken in", map[types.NamespacedName]servedVersion{a: {"u1", 2}},
			[]cachedVersion{{a, "u1", 2, 90}}, 0, 90},
		{"a newer generation not taken in yet holds it", map[types.NamespacedName]servedVersion{a: {"u1", 1}, b: {"u2", 1}},
			[]cachedVersion{{a, "u1", 2, 50}, {b, "u2", 1, 70}}, 1, 70},
		{"an object never taken in holds it", map[types.NamespacedName]servedVersion{a: {"u1", 1}},
			[]cachedVersion{{a, "u1", 1, 50}, {b, "u2", 1, 70}}, 1, 70},
		{"an object recreated under the same name holds it", map[types.NamespacedName]servedVersion{a: {"old", 1}},
			[]cachedVersion{{a, "new", 1, 50}}, 1, 50},
		{"no object at all", nil, nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReadiness()
			for key, v := range tc.served {
				r.markServed(kindOAuthClient, key, v)
			}
			pending, highest := r.lag(kindOAuthClient, tc.cached)
			assert.Equal(t, tc.pending, pending)
			assert.Equal(t, tc.highest, highest)
		})
	}
}

// waitPropagated waits until the client's status says served and its Propagated condition has
// status and reason for the current generation; it returns the condition.
func waitPropagated(t *testing.T, key types.NamespacedName, served string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var got *metav1.Condition
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var oc v1alpha1.OAuthClient
		if !assert.NoError(c, suite.client.Get(context.Background(), key, &oc)) {
			return
		}
		cond := meta.FindStatusCondition(oc.Status.Conditions, v1alpha1.ConditionPropagated)
		if !assert.NotNil(c, cond, "Propagated condition") {
			return
		}
		assert.Equal(c, served, oc.Status.Served)
		assert.Equal(c, status, cond.Status, cond.Message)
		assert.Equal(c, reason, cond.Reason)
		assert.Equal(c, oc.Generation, cond.ObservedGeneration)
		got = cond
	}, waitFor, tick)
	return got
}

func TestAClientIsPropagatedOnceEveryLiveReplicaServesItsGenerationAndAStaleReplicaDropsOutWhenItsLeaseExpires(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	oc := confidentialClient(ns, "propagated")
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	waitPropagated(t, key, "2/2", metav1.ConditionTrue, v1alpha1.ReasonPropagated)

	// A replica that stopped taking changes in: its report stays at watermark 1 until it expires.
	stale := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: replicaLeasePrefix + "stale",
			Labels:      map[string]string{LabelReplicaLease: "true"},
			Annotations: map[string]string{watermarkAnnotation(kindOAuthClient): strconv.Itoa(1)}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("stale"), LeaseDurationSeconds: ptr.To(int32(3)),
			RenewTime: ptr.To(metav1.NewMicroTime(time.Now()))},
	}
	require.NoError(t, suite.client.Create(ctx, stale))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), stale) })

	// It stays live while renewed (a replica whose reconcilers are stuck, not dead).
	renewing, stopRenewing := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for renewing.Err() == nil {
			_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				if err := suite.client.Get(renewing, client.ObjectKeyFromObject(stale), stale); err != nil {
					return err
				}
				stale.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
				return suite.client.Update(renewing, stale)
			})
			select {
			case <-renewing.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()

	updateClient(t, key, func(oc *v1alpha1.OAuthClient) { oc.Spec.Scopes = []string{"a:read"} })
	cond := waitPropagated(t, key, "2/3", metav1.ConditionFalse, v1alpha1.ReasonLagging)
	assert.Contains(t, cond.Message, "not yet: stale")
	stopRenewing()
	<-renewed
	waitPropagated(t, key, "2/2", metav1.ConditionTrue, v1alpha1.ReasonPropagated)
}

func TestScopesUsersAndWorkloadIssuersArePropagatedOnceEveryReplicaServesTheirGeneration(t *testing.T) {
	ns := newNamespace(t)
	for _, tc := range []struct {
		name   string
		obj    client.Object
		change func(client.Object)
	}{
		{"a Scope", &v1alpha1.Scope{ObjectMeta: metav1.ObjectMeta{Name: "propagated-" + ns}, Spec: v1alpha1.ScopeSpec{Name: "propagated:" + ns}},
			func(o client.Object) { o.(*v1alpha1.Scope).Spec.Description = "changed" }}, //nolint:forcetypeassert // test
		{"a User", &v1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: "propagated-" + ns},
			Spec: v1alpha1.UserSpec{Username: "propagated-" + ns, PasswordSecretRef: &v1alpha1.SecretKeyRef{Namespace: ns, Name: "pw"}}},
			func(o client.Object) { o.(*v1alpha1.User).Spec.Email = "changed@example.com" }}, //nolint:forcetypeassert // test
		{"a WorkloadIssuer", &v1alpha1.WorkloadIssuer{ObjectMeta: metav1.ObjectMeta{Name: "propagated-" + ns},
			Spec: v1alpha1.WorkloadIssuerSpec{Issuer: "https://propagated.example", Audiences: []string{"latchkey"}, AllowedNamespaces: []string{ns},
				JWKSSecretRef: &v1alpha1.SecretKeyRef{Namespace: ns, Name: "issuer-keys"}}},
			func(o client.Object) { o.(*v1alpha1.WorkloadIssuer).Spec.Audiences = []string{"changed"} }}, //nolint:forcetypeassert // test
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			require.NoError(t, suite.client.Create(ctx, tc.obj))
			t.Cleanup(func() { _ = suite.client.Delete(context.Background(), tc.obj) })
			key := client.ObjectKeyFromObject(tc.obj)
			waitPropagated := func() {
				require.EventuallyWithT(t, func(c *assert.CollectT) {
					if !assert.NoError(c, suite.client.Get(ctx, key, tc.obj)) {
						return
					}
					served, conds := propagatedStatus(tc.obj)
					cond := meta.FindStatusCondition(conds, v1alpha1.ConditionPropagated)
					if !assert.NotNil(c, cond, "Propagated condition") {
						return
					}
					assert.Equal(c, "2/2", served)
					assert.Equal(c, metav1.ConditionTrue, cond.Status, cond.Message)
					assert.Equal(c, tc.obj.GetGeneration(), cond.ObservedGeneration)
				}, waitFor, tick)
			}
			waitPropagated()
			require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
				if err := suite.client.Get(ctx, key, tc.obj); err != nil {
					return err
				}
				tc.change(tc.obj)
				return suite.client.Update(ctx, tc.obj)
			}))
			waitPropagated()
		})
	}
}

// propagatedStatus reads status.served and the conditions of a propagated kind.
func propagatedStatus(o client.Object) (string, []metav1.Condition) {
	for _, k := range propagatedKindsStatus {
		if fmt.Sprintf("%T", k.newObj()) == fmt.Sprintf("%T", o) {
			served, conds := k.status(o)
			return *served, *conds
		}
	}
	return "", nil
}

func TestEveryReplicaReportsTheKeyItSignsWithPerAlgorithm(t *testing.T) {
	want := signingKeyIDs(suite.replicas[0].keyring, keys.SupportedAlgorithms())
	require.NotNil(t, want, "a Keyring tells its signers")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		expected := want()
		for _, alg := range keys.SupportedAlgorithms() {
			assert.Contains(c, expected, alg+"=", "replica 0 signs with an %s key", alg)
		}
		var leases coordinationv1.LeaseList
		if !assert.NoError(c, suite.client.List(context.Background(), &leases, client.InNamespace(systemNamespace), client.HasLabels{LabelReplicaLease})) {
			return
		}
		// The suite's replicas share the key Secret (other tests' replicas may have keys of their own).
		var reporting int
		for _, l := range leases.Items {
			if l.Annotations[AnnotationSigningKeys] == expected {
				reporting++
			}
		}
		assert.GreaterOrEqual(c, reporting, len(suite.replicas))
	}, waitFor, tick)
}
