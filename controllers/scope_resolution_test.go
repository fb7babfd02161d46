package controllers

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

// waitScopesResolved waits for the OAuthClient's ScopesResolved condition with the status and
// reason, of its current generation, and returns it.
// waitScopesResolved waits for the client's ScopesResolved condition with status and reason
// whose message mentions each of mentions, and returns it.
func waitScopesResolved(t *testing.T, key types.NamespacedName, status metav1.ConditionStatus, reason string, mentions ...string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var oc v1alpha1.OAuthClient
		if !assert.NoError(c, suite.client.Get(t.Context(), key, &oc)) {
			return
		}
		cond := meta.FindStatusCondition(oc.Status.Conditions, v1alpha1.ConditionScopesResolved)
		if !assert.NotNil(c, cond, "ScopesResolved condition") {
			return
		}
		assert.Equal(c, status, cond.Status, cond.Message)
		assert.Equal(c, reason, cond.Reason, cond.Message)
		assert.Equal(c, oc.Generation, cond.ObservedGeneration)
		for _, m := range mentions {
			assert.Contains(c, cond.Message, m)
		}
		got = *cond
	}, waitFor, tick)
	return got
}

func TestScopesResolvedSaysWhichListedScopesDoNotExist(t *testing.T) {
	ns := newNamespace(t)
	known := "known:" + ns
	createScope(t, known)
	elsewhere := "elsewhere:" + ns
	sc := &v1alpha1.Scope{
		ObjectMeta: metav1.ObjectMeta{Name: "elsewhere-" + ns},
		Spec:       v1alpha1.ScopeSpec{Name: elsewhere, AllowedNamespaces: []string{"another-team"}},
	}
	require.NoError(t, suite.client.Create(t.Context(), sc))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), sc) })

	tests := []struct {
		name    string
		scopes  []string
		status  metav1.ConditionStatus
		reason  string
		missing []string
	}{
		{name: "a client listing no scopes has them resolved", status: metav1.ConditionTrue, reason: v1alpha1.ReasonResolved},
		{name: "a client listing only built-in OIDC scopes has them resolved",
			scopes: []string{"openid", "profile", "email", "address", "phone", "offline_access"},
			status: metav1.ConditionTrue, reason: v1alpha1.ReasonResolved},
		{name: "a client listing a Scope resource's name has it resolved",
			scopes: []string{"openid", known}, status: metav1.ConditionTrue, reason: v1alpha1.ReasonResolved},
		{name: "a client listing scopes nothing defines is told which ones",
			scopes: []string{known, "missing:" + ns, "openid", "gone:" + ns},
			status: metav1.ConditionFalse, reason: v1alpha1.ReasonUnknownScope, missing: []string{"missing:" + ns, "gone:" + ns}},
		{name: "a client listing a scope whose Scope leaves its namespace out is told which one",
			scopes: []string{known, elsewhere},
			status: metav1.ConditionFalse, reason: v1alpha1.ReasonScopeNotAllowed, missing: []string{elsewhere}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oc := confidentialClient(ns, "client-"+string(rune('a'+i)), tt.scopes...)
			require.NoError(t, suite.client.Create(t.Context(), oc))
			key := client.ObjectKeyFromObject(oc)
			cond := waitScopesResolved(t, key, tt.status, tt.reason)
			for _, m := range tt.missing {
				assert.Contains(t, cond.Message, `"`+m+`"`)
			}
			assert.NotContains(t, cond.Message, `"`+known+`"`)
			// An unknown scope does not stop the client from being served.
			waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
		})
	}
}

func TestScopesResolvedFollowsScopesCreatedAndDeleted(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	a, b := "a:"+ns, "b:"+ns
	createScope(t, a)
	oc := confidentialClient(ns, "reports", a, b)
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	id := "reports." + ns
	outer := t

	cond := waitScopesResolved(t, key, metav1.ConditionFalse, v1alpha1.ReasonUnknownScope)
	assert.Contains(t, cond.Message, `"`+b+`"`)
	assert.NotContains(t, cond.Message, `"`+a+`"`)
	waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)

	// Served without the unknown scope: asking for it is invalid_scope, for the known one a token.
	secret := secretValue(t, ns, "reports-oauth-client", "client-secret")
	srv := tokenServer(t, suite.replicas[0])
	require.Eventually(t, suite.replicas[0].keyring.Loaded, waitFor, tick)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := requestToken(ctx, srv, id, secret, a)
		assert.NoError(c, err)
	}, waitFor, tick)
	_, err := requestToken(ctx, srv, id, secret, b)
	assertOAuthError(t, err, "invalid_scope")

	t.Run("a Scope created with the missing name resolves it", func(t *testing.T) {
		createScope(outer, b) // kept for the subtests that follow
		waitScopesResolved(t, key, metav1.ConditionTrue, v1alpha1.ReasonResolved)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			_, err := requestToken(ctx, srv, id, secret, b)
			assert.NoError(c, err)
		}, waitFor, tick)
	})

	t.Run("a listed Scope deleted makes it unknown again", func(t *testing.T) {
		var sc v1alpha1.Scope
		require.NoError(t, suite.client.Get(ctx, types.NamespacedName{Name: "a-" + ns}, &sc))
		require.NoError(t, suite.client.Delete(ctx, &sc))
		cond := waitScopesResolved(t, key, metav1.ConditionFalse, v1alpha1.ReasonUnknownScope)
		assert.Contains(t, cond.Message, `"`+a+`"`)
		assert.NotContains(t, cond.Message, `"`+b+`"`)
		waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	})

	t.Run("a Scope renamed away from a listed name makes it unknown", func(t *testing.T) {
		var sc v1alpha1.Scope
		require.NoError(t, suite.client.Get(ctx, types.NamespacedName{Name: "b-" + ns}, &sc))
		sc.Spec.Name = "c:" + ns
		require.NoError(t, suite.client.Update(ctx, &sc))
		waitScopesResolved(t, key, metav1.ConditionFalse, v1alpha1.ReasonUnknownScope, `"`+b+`"`)
	})
}
