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
