package controllers

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

// waitNotServed waits until no replica serves the client ID.
func waitNotServed(t *testing.T, id string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i, r := range suite.replicas {
			_, ok := r.registry.Snapshot().Client(id)
			assert.False(c, ok, "replica %d still serves %s", i, id)
		}
	}, waitFor, tick)
}

// waitPolicyReady waits for the policy's Ready condition with the reason.
func waitPolicyReady(t *testing.T, key types.NamespacedName, status metav1.ConditionStatus, reason string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var p v1alpha1.OAuthClientPolicy
		if !assert.NoError(c, suite.client.Get(context.Background(), key, &p)) {
			return
		}
		cond := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		if !assert.NotNil(c, cond) {
			return
		}
		assert.Equal(c, status, cond.Status)
		assert.Equal(c, reason, cond.Reason, cond.Message)
		assert.Equal(c, p.Generation, p.Status.ObservedGeneration)
	}, waitFor, tick)
}

func TestPolicyTightenedAfterTheFactStopsAViolatingClientOnEveryReplica(t *testing.T) {
	ns := newNamespace(t)
	createScope(t, "billing:read")
	createScope(t, "admin:all")
	conforming := confidentialClient(ns, "billing", "billing:read")
	violating := confidentialClient(ns, "admin", "billing:read", "admin:all")
	for _, oc := range []*v1alpha1.OAuthClient{conforming, violating} {
		require.NoError(t, suite.client.Create(t.Context(), oc))
	}
	conformingKey, violatingKey := types.NamespacedName{Namespace: ns, Name: "billing"}, types.NamespacedName{Namespace: ns, Name: "admin"}
	waitReady(t, conformingKey, metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitReady(t, violatingKey, metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitServed(t, "admin."+ns, ns+"/admin", nil)
	waitPropagated(t, conformingKey, "2/2", metav1.ConditionTrue, v1alpha1.ReasonPropagated)
	before, _ := getClient(t, conformingKey)

	p := &v1alpha1.OAuthClientPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "billing-only"},
		Spec:       v1alpha1.OAuthClientPolicySpec{AllowedScopes: []string{"billing:*", "openid"}},
	}
	require.NoError(t, suite.client.Create(t.Context(), p))
	waitPolicyReady(t, types.NamespacedName{Namespace: ns, Name: "billing-only"}, metav1.ConditionTrue, v1alpha1.ReasonReady)

	oc := waitReady(t, violatingKey, metav1.ConditionFalse, v1alpha1.ReasonPolicyViolation)
	msg := meta.FindStatusCondition(oc.Status.Conditions, v1alpha1.ConditionReady).Message
	assert.Contains(t, msg, ns+"/billing-only")
	assert.Contains(t, msg, "allowedScopes")
	assert.Contains(t, msg, `"admin:all"`)
	waitNotServed(t, "admin."+ns)
	waitEvent(t, ns, "admin", v1alpha1.ReasonPolicyViolation)

	// The conforming client is untouched: still served, its status not rewritten.
	waitServed(t, "billing."+ns, ns+"/billing", nil)
	after, _ := getClient(t, conformingKey)
	assert.Equal(t, before.Status, after.Status)

	// Loosening the policy serves the client again.
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var got v1alpha1.OAuthClientPolicy
		if err := suite.client.Get(t.Context(), policyKey(p), &got); err != nil {
			return err
		}
		got.Spec.AllowedScopes = append(got.Spec.AllowedScopes, "admin:*")
		return suite.client.Update(t.Context(), &got)
	}))
	waitReady(t, violatingKey, metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitServed(t, "admin."+ns, ns+"/admin", nil)
}

func TestEveryPolicyOfTheNamespaceMustBeSatisfied(t *testing.T) {
	ns := newNamespace(t)
	for _, p := range []*v1alpha1.OAuthClientPolicy{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grants"},
			Spec: v1alpha1.OAuthClientPolicySpec{AllowedGrantTypes: []v1alpha1.GrantType{v1alpha1.GrantTypeClientCredentials}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "methods"},
			Spec: v1alpha1.OAuthClientPolicySpec{AllowedAuthenticationMethods: []v1alpha1.AuthenticationMethodClass{v1alpha1.AuthClassPrivateKeyJWT}}},
	} {
		require.NoError(t, suite.client.Create(t.Context(), p))
	}
	require.NoError(t, suite.client.Create(t.Context(), confidentialClient(ns, "svc")))
	oc := waitReady(t, types.NamespacedName{Namespace: ns, Name: "svc"}, metav1.ConditionFalse, v1alpha1.ReasonPolicyViolation)
	msg := meta.FindStatusCondition(oc.Status.Conditions, v1alpha1.ConditionReady).Message
	assert.Contains(t, msg, ns+"/methods: allowedAuthenticationMethods does not allow \"secret\"")
	assert.NotContains(t, msg, "grants")
	waitNotServed(t, "svc."+ns)
}

func policyKey(p *v1alpha1.OAuthClientPolicy) types.NamespacedName {
	return types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
}

func TestTheDefaultPolicyAppliesToEveryNamespace(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	def := &v1alpha1.OAuthClientPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"},
		Spec:       v1alpha1.OAuthClientPolicySpec{AllowPasswordGrant: ptr.To(false)},
	}
	own := &v1alpha1.OAuthClientPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "own"},
		Spec:       v1alpha1.OAuthClientPolicySpec{AllowedScopes: []string{"openid"}},
	}
	for _, p := range []*v1alpha1.OAuthClientPolicy{def, own} {
		require.NoError(t, suite.client.Create(t.Context(), p))
	}
	oc := confidentialClient(other, "legacy", "profile")
	oc.Spec.GrantTypes = []v1alpha1.GrantType{v1alpha1.GrantTypePassword}
	peer := confidentialClient(other, "peer")
	for _, c := range []*v1alpha1.OAuthClient{oc, peer} {
		require.NoError(t, suite.client.Create(t.Context(), c))
	}
	withDefault := clientPolicies{reader: suite.client, def: policyKey(def)}
	tests := []struct {
		name     string
		policies clientPolicies
		want     []string
	}{
		{"without a default only the namespace's policies apply", clientPolicies{reader: suite.client},
			[]string{other + "/own allowedScopes"}},
		{"the default applies besides the namespace's own", withDefault,
			[]string{other + "/own allowedScopes", ns + "/default allowPasswordGrant"}},
		{"a default that does not exist restricts nothing", clientPolicies{reader: suite.client, def: types.NamespacedName{Namespace: ns, Name: "gone"}},
			[]string{other + "/own allowedScopes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, err := tt.policies.violations(t.Context(), oc)
			require.NoError(t, err)
			var got []string
			for _, v := range vs {
				got = append(got, v.Policy+" "+v.Rule)
			}
			assert.Equal(t, tt.want, got)
		})
	}

	t.Run("a change of the default re-evaluates the clients of every namespace", func(t *testing.T) {
		reqs := withDefault.clientsOfPolicy(suite.client)(t.Context(), def)
		var keys []types.NamespacedName
		for _, r := range reqs {
			keys = append(keys, r.NamespacedName)
		}
		assert.Contains(t, keys, types.NamespacedName{Namespace: other, Name: "legacy"})
		assert.Contains(t, keys, types.NamespacedName{Namespace: other, Name: "peer"})
		reqs = withDefault.clientsOfPolicy(suite.client)(t.Context(), own)
		for _, r := range reqs {
			assert.Equal(t, other, r.Namespace, "a namespace's policy maps to its own clients only")
		}
	})
}

func TestAClientIDGoesToThePeerWhenAPolicyWithdrawsItsHolder(t *testing.T) {
	first, second := newNamespace(t), newNamespace(t)
	holder := confidentialClient(first, "shared")
	holder.Spec.ClientID = "shared-" + first
	require.NoError(t, suite.client.Create(t.Context(), holder))
	waitReady(t, nsName(first, "shared"), metav1.ConditionTrue, v1alpha1.ReasonReady)
	peer := confidentialClient(second, "shared")
	peer.Spec.ClientID = holder.Spec.ClientID
	require.NoError(t, suite.client.Create(t.Context(), peer))
	waitReady(t, nsName(second, "shared"), metav1.ConditionFalse, v1alpha1.ReasonClientIDConflict)

	require.NoError(t, suite.client.Create(t.Context(), &v1alpha1.OAuthClientPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: first, Name: "no-secrets"},
		Spec:       v1alpha1.OAuthClientPolicySpec{AllowedAuthenticationMethods: []v1alpha1.AuthenticationMethodClass{v1alpha1.AuthClassPrivateKeyJWT}},
	}))
	waitReady(t, nsName(first, "shared"), metav1.ConditionFalse, v1alpha1.ReasonPolicyViolation)
	waitReady(t, nsName(second, "shared"), metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitServed(t, holder.Spec.ClientID, second+"/shared", nil)
}

func nsName(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}
