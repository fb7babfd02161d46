package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestPropagationCountsTheReplicasWhoseWatermarkReachesTheChange(t *testing.T) {
	reports := []replicaReport{
		{name: "a", watermarks: map[string]uint64{kindOAuthClient: 120, kindScope: 10, kindSecret: 300}},
		{name: "b", watermarks: map[string]uint64{kindOAuthClient: 100, kindSecret: 250}},
		{name: "c", watermarks: map[string]uint64{kindOAuthClient: 99}},
	}
	generation := "generation 4"
	withSecrets := "generation 4 and its Secrets' current versions"
	for _, tc := range []struct {
		name    string
		reports []replicaReport
		kind    string
		target  propagationTarget
		served  string
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{"a watermark equal to the change's resourceVersion serves it", reports, kindOAuthClient, propagationTarget{resourceVersion: 100}, "2/3", metav1.ConditionFalse, v1alpha1.ReasonLagging, "2/3 of 3 live replicas serve " + generation + "; not yet: c"},
		{"every replica past the change makes it propagated", reports, kindOAuthClient, propagationTarget{resourceVersion: 99}, "3/3", metav1.ConditionTrue, v1alpha1.ReasonPropagated, "every live replica (3) serves " + generation},
		{"watermarks are per kind", reports, kindScope, propagationTarget{resourceVersion: 11}, "0/3", metav1.ConditionFalse, v1alpha1.ReasonLagging, "0/3 of 3 live replicas serve " + generation + "; not yet: a, b, c"},
		{"a Secret changed later than a replica's Secret watermark is not served there", reports, kindOAuthClient, propagationTarget{resourceVersion: 99, secrets: 260}, "1/3", metav1.ConditionFalse, v1alpha1.ReasonLagging, "1/3 of 3 live replicas serve " + withSecrets + "; not yet: b, c"},
		{"every Secret watermark past the Secret's change makes it propagated", reports[:2], kindOAuthClient, propagationTarget{resourceVersion: 99, secrets: 250}, "2/2", metav1.ConditionTrue, v1alpha1.ReasonPropagated, "every live replica (2) serves " + withSecrets},
		{"no report is not propagated", nil, kindOAuthClient, propagationTarget{resourceVersion: 1}, "0/0", metav1.ConditionFalse, v1alpha1.ReasonNoReplicas, "no live replica has reported what it serves"},
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
		name   string
		served map[types.NamespacedName]servedVersion
		cached []cachedVersion
		want   lagReport
	}{
		{"every generation taken in", map[types.NamespacedName]servedVersion{a: {uid: "u1", generation: 2, resourceVersion: 40}, b: {uid: "u2", generation: 1, resourceVersion: 70}},
			[]cachedVersion{{key: a, uid: "u1", generation: 2, resourceVersion: 50}, {key: b, uid: "u2", generation: 1, resourceVersion: 70}},
			lagReport{highest: 70}},
		{"a status write (same generation, later resourceVersion) counts as taken in", map[types.NamespacedName]servedVersion{a: {uid: "u1", generation: 2, resourceVersion: 40}},
			[]cachedVersion{{key: a, uid: "u1", generation: 2, resourceVersion: 90}}, lagReport{highest: 90}},
		{"a newer generation not taken in yet is pending since where it was taken in", map[types.NamespacedName]servedVersion{a: {uid: "u1", generation: 1, resourceVersion: 30}, b: {uid: "u2", generation: 1, resourceVersion: 70}},
			[]cachedVersion{{key: a, uid: "u1", generation: 2, resourceVersion: 50}, {key: b, uid: "u2", generation: 1, resourceVersion: 70}},
			lagReport{highest: 70, pending: []pendingObject{{a, 30}}}},
		{"an object never taken in is pending since nothing", map[types.NamespacedName]servedVersion{a: {uid: "u1", generation: 1, resourceVersion: 50}},
			[]cachedVersion{{key: a, uid: "u1", generation: 1, resourceVersion: 50}, {key: b, uid: "u2", generation: 1, resourceVersion: 70}},
			lagReport{highest: 70, pending: []pendingObject{{b, 0}}}},
		{"an object recreated under the same name is pending since the old one", map[types.NamespacedName]servedVersion{a: {uid: "old", generation: 1, resourceVersion: 20}},
			[]cachedVersion{{key: a, uid: "new", generation: 1, resourceVersion: 50}}, lagReport{highest: 50, pending: []pendingObject{{a, 20}}}},
		{"no object at all", nil, nil, lagReport{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReadiness()
			for key, v := range tc.served {
				r.markServed(kindOAuthClient, key, v)
			}
			assert.Equal(t, tc.want, r.lag(kindOAuthClient, tc.cached))
		})
	}
}

func TestTheWatermarkRisesUnderConstantChurnButNeverPastAChangeNotTakenIn(t *testing.T) {
	a := types.NamespacedName{Namespace: "ns", Name: "a"}
	b := types.NamespacedName{Namespace: "ns", Name: "b"}
	c := types.NamespacedName{Namespace: "ns", Name: "c"}
	r := NewReadiness()
	w := watermarks{ready: r, last: map[string]uint64{}, previous: map[string]uint64{}, noticed: map[string]map[types.NamespacedName]uint64{}}
	advance := func(cached ...cachedVersion) uint64 {
		w.advance(kindOAuthClient, cached)
		return w.last[kindOAuthClient]
	}
	va := func(gen int64, rv uint64) cachedVersion {
		return cachedVersion{key: a, uid: "ua", generation: gen, resourceVersion: rv}
	}
	vb := func(gen int64, rv uint64) cachedVersion {
		return cachedVersion{key: b, uid: "ub", generation: gen, resourceVersion: rv}
	}

	r.markServed(kindOAuthClient, a, servedVersion{uid: "ua", generation: 1, resourceVersion: 10})
	assert.Equal(t, uint64(10), advance(va(1, 10)), "everything taken in: the highest resourceVersion")

	// b appears and is not taken in yet: it was created after 10, the highest cached before.
	assert.Equal(t, uint64(10), advance(va(1, 10), vb(1, 20)))
	r.markServed(kindOAuthClient, b, servedVersion{uid: "ub", generation: 1, resourceVersion: 20})
	// a changes (generation 2 at 30) while b is taken in: the watermark stops below a's change.
	assert.Equal(t, uint64(20), advance(va(2, 30), vb(1, 20)), "bounded by a, taken in at 10; b's 20 is covered")
	r.markServed(kindOAuthClient, a, servedVersion{uid: "ua", generation: 2, resourceVersion: 30})
	// Now b changes, and c appears: a is taken in, so the watermark moves on to 30.
	assert.Equal(t, uint64(30), advance(va(2, 30), vb(2, 40), cachedVersion{key: c, uid: "uc", generation: 1, resourceVersion: 45}),
		"bounded by b (taken in at 20) and c (created after 30): but never lower than before")
	r.markServed(kindOAuthClient, b, servedVersion{uid: "ub", generation: 2, resourceVersion: 40})
	assert.Equal(t, uint64(30), advance(va(2, 30), vb(2, 40), cachedVersion{key: c, uid: "uc", generation: 1, resourceVersion: 45}),
		"c is still pending: it was created after 30, the highest cached when it was first seen")
	r.markServed(kindOAuthClient, c, servedVersion{uid: "uc", generation: 1, resourceVersion: 45})
	assert.Equal(t, uint64(45), advance(va(2, 30), vb(2, 40), cachedVersion{key: c, uid: "uc", generation: 1, resourceVersion: 45}))
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
	stopRenewing := staleReplica(t, "stale", map[string]string{watermarkAnnotation(kindOAuthClient): "1"})

	updateClient(t, key, func(oc *v1alpha1.OAuthClient) { oc.Spec.Scopes = []string{"a:read"} })
	cond := waitPropagated(t, key, "2/3", metav1.ConditionFalse, v1alpha1.ReasonLagging)
	assert.Contains(t, cond.Message, "not yet: stale")
	stopRenewing()
	waitPropagated(t, key, "2/2", metav1.ConditionTrue, v1alpha1.ReasonPropagated)
}

// staleReplica creates the report of a replica named name with the annotations, renewed (live:
// a replica whose reconcilers are stuck, not dead) until the returned stop is called; then its
// 3-second lease expires.
func staleReplica(t *testing.T, name string, annotations map[string]string) (stop func()) {
	t.Helper()
	ctx := t.Context()
	stale := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: replicaLeasePrefix + name,
			Labels: map[string]string{LabelReplicaLease: "true"}, Annotations: annotations},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To(int32(3)),
			RenewTime: ptr.To(metav1.NewMicroTime(time.Now()))},
	}
	require.NoError(t, suite.client.Create(ctx, stale))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), stale) })
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
	var once sync.Once
	stop = func() {
		once.Do(func() {
			stopRenewing()
			<-renewed
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestAClientsSecretChangeIsPropagatedOnceEveryReplicaServesTheSecretsNewVersion(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ext-creds"},
		Data:       map[string][]byte{"client-secret": []byte("first-secret-value-0123456789")},
	}
	require.NoError(t, suite.client.Create(ctx, secret))
	oc := confidentialClient(ns, "ext")
	oc.Spec.SecretPolicy = v1alpha1.SecretPolicyExternal
	oc.Spec.SecretRef = &v1alpha1.LocalSecretKeyRef{Name: "ext-creds"}
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	cond := waitPropagated(t, key, "2/2", metav1.ConditionTrue, v1alpha1.ReasonPropagated)
	assert.Contains(t, cond.Message, "and its Secrets' current versions")

	// A replica that serves every OAuthClient change, and this Secret's version, but no later
	// Secret change.
	require.NoError(t, suite.client.Get(ctx, client.ObjectKeyFromObject(secret), secret))
	staleReplica(t, "stale-secrets", map[string]string{
		watermarkAnnotation(kindOAuthClient): strconv.FormatUint(math.MaxInt64, 10),
		watermarkAnnotation(kindSecret):      secret.ResourceVersion,
	})
	waitPropagated(t, key, "3/3", metav1.ConditionTrue, v1alpha1.ReasonPropagated)

	// The Secret changes, the client's spec does not.
	secret.Data["client-secret"] = []byte("second-secret-value-0123456789")
	require.NoError(t, suite.client.Update(ctx, secret))
	cond = waitPropagated(t, key, "2/3", metav1.ConditionFalse, v1alpha1.ReasonLagging)
	assert.Contains(t, cond.Message, "not yet: stale-secrets")
	// The live replicas serve the new secret.
	waitServed(t, "ext."+ns, ns+"/ext", func(c *assert.CollectT, cl *registry.Client) {
		assert.True(c, cl.CheckSecret("second-secret-value-0123456789"))
	})
}

// keySummary reads the key Secret's signing-key summary and served count.
func keySummary(c *assert.CollectT) (summary signingKeySummary, served string, ok bool) {
	var s corev1.Secret
	if !assert.NoError(c, suite.client.Get(context.Background(), types.NamespacedName{Namespace: systemNamespace, Name: DefaultKeySecretName}, &s)) {
		return summary, "", false
	}
	if !assert.NoError(c, json.Unmarshal([]byte(s.Annotations[AnnotationReplicaSigningKeys]), &summary)) {
		return summary, "", false
	}
	return summary, s.Annotations[AnnotationSigningKeysServed], true
}

func TestTheKeySecretTellsWhichKeyEachReplicaSignsWith(t *testing.T) {
	current := signingKeyIDs(suite.replicas[0].keyring, keys.SupportedAlgorithms())
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		summary, served, ok := keySummary(c)
		if !ok {
			return
		}
		want := current()
		assert.Equal(c, want, summary.Current, "the key Secret's current signing keys are the suite replicas'")
		var signing int
		for _, ids := range summary.Replicas {
			if ids == want {
				signing++
			}
		}
		assert.GreaterOrEqual(c, signing, len(suite.replicas), "every suite replica signs with the current keys: %v", summary.Replicas)
		assert.Equal(c, fmt.Sprintf("%d/%d", signing, len(summary.Replicas)), served)
	}, waitFor, tick)

	// A replica that signs with another key counts as not serving the current ones.
	stopRenewing := staleReplica(t, "old-keys", map[string]string{AnnotationSigningKeys: "ES256=retired"})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		summary, served, ok := keySummary(c)
		if !ok {
			return
		}
		assert.Equal(c, "ES256=retired", summary.Replicas["old-keys"])
		assert.Equal(c, fmt.Sprintf("%d/%d", len(summary.Replicas)-1, len(summary.Replicas)), served)
	}, waitFor, tick)
	// Once its lease expires it drops out.
	stopRenewing()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		summary, _, ok := keySummary(c)
		if ok {
			assert.NotContains(c, summary.Replicas, "old-keys")
		}
	}, waitFor, tick)
}

func TestScopesUsersWorkloadIssuersAndPoliciesArePropagatedOnceEveryReplicaServesTheirGeneration(t *testing.T) {
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
		{"an OIDCIdentityProvider", &v1alpha1.OIDCIdentityProvider{ObjectMeta: metav1.ObjectMeta{Name: "propagated-" + ns},
			Spec: v1alpha1.OIDCIdentityProviderSpec{Issuer: "https://127.0.0.1:1/propagated",
				Client: v1alpha1.UpstreamClient{ClientID: "latchkey", SecretRef: &v1alpha1.SecretKeyRef{Namespace: ns, Name: "idp-secret"}}}},
			func(o client.Object) { o.(*v1alpha1.OIDCIdentityProvider).Spec.DisplayName = "changed" }}, //nolint:forcetypeassert // test
		{"an OAuthClientPolicy", &v1alpha1.OAuthClientPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "propagated"},
			Spec: v1alpha1.OAuthClientPolicySpec{AllowedGrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeClientCredentials}}},
			func(o client.Object) { //nolint:forcetypeassert // test
				o.(*v1alpha1.OAuthClientPolicy).Spec.AllowedGrantTypes = append(o.(*v1alpha1.OAuthClientPolicy).Spec.AllowedGrantTypes, v1alpha1.GrantTypeRefreshToken)
			}},
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

// BenchmarkWatermarkAdvance measures one replica's per-kind watermark computation (what it
// does every report interval) over n cached objects, all taken in.
func BenchmarkWatermarkAdvance(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			r := NewReadiness()
			cached := make([]cachedVersion, n)
			for i := range cached {
				key := types.NamespacedName{Namespace: "ns", Name: "c" + strconv.Itoa(i)}
				uid := types.UID("u" + strconv.Itoa(i))
				cached[i] = cachedVersion{key: key, uid: uid, generation: 1, resourceVersion: uint64(i + 1)}
				r.markServed(kindOAuthClient, key, servedVersion{uid: uid, generation: 1, resourceVersion: uint64(i + 1)})
			}
			w := watermarks{ready: r, last: map[string]uint64{}, previous: map[string]uint64{}, noticed: map[string]map[types.NamespacedName]uint64{}}
			b.ReportAllocs()
			for b.Loop() {
				w.advance(kindOAuthClient, cached)
			}
		})
	}
}

func TestTheIdentityProvidersSecretsAreTheOnesTheirRegistryReconcileReads(t *testing.T) {
	want := []types.NamespacedName{{Namespace: "idp", Name: "creds"}}
	tests := []struct {
		name string
		obj  client.Object
		want []types.NamespacedName
	}{
		{"an LDAPIdentityProvider reads its bind Secret", &v1alpha1.LDAPIdentityProvider{Spec: v1alpha1.LDAPIdentityProviderSpec{
			Bind: v1alpha1.LDAPBind{SecretRef: v1alpha1.SecretKeyRef{Namespace: "idp", Name: "creds"}}}}, want},
		{"a GitHubIdentityProvider reads its OAuth App Secret", &v1alpha1.GitHubIdentityProvider{Spec: v1alpha1.GitHubIdentityProviderSpec{
			Client: v1alpha1.GitHubClient{SecretRef: v1alpha1.GitHubSecretRef{Namespace: "idp", Name: "creds"}}}}, want},
		{"a GitHubIdentityProvider without a Secret name reads none", &v1alpha1.GitHubIdentityProvider{}, nil},
		{"an LDAPIdentityProvider without a Secret name reads none", &v1alpha1.LDAPIdentityProvider{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, secretsOf(tt.obj))
		})
	}
}
