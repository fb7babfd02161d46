package controllers

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	latchkeyoauth2 "github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func protectedResource(ns, name, audience string) *v1alpha1.ProtectedResource {
	return &v1alpha1.ProtectedResource{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.ProtectedResourceSpec{Audience: audience},
	}
}

// waitResourceReady waits for the ProtectedResource's Ready condition with the reason and
// returns the object.
func waitResourceReady(t *testing.T, key types.NamespacedName, status metav1.ConditionStatus, reason string) *v1alpha1.ProtectedResource {
	t.Helper()
	var got v1alpha1.ProtectedResource
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		if !assert.NoError(c, suite.client.Get(context.Background(), key, &got)) {
			return
		}
		cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		if assert.NotNil(c, cond, "Ready condition") {
			assert.Equal(c, status, cond.Status)
			assert.Equal(c, reason, cond.Reason, cond.Message)
			assert.Equal(c, got.Generation, cond.ObservedGeneration)
			assert.Equal(c, got.Generation, got.Status.ObservedGeneration)
		}
	}, waitFor, tick)
	return &got
}

// waitResourceServed waits until every replica serves the audience from source and check
// passes on it.
func waitResourceServed(t *testing.T, audience, source string, check func(c *assert.CollectT, p *registry.ProtectedResource)) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i, r := range suite.replicas {
			p, ok := r.registry.Snapshot().ProtectedResource(audience)
			if !assert.True(c, ok, "replica %d serves %s", i, audience) {
				continue
			}
			assert.Equal(c, source, p.Source, "replica %d", i)
			if check != nil {
				check(c, p)
			}
		}
	}, waitFor, tick)
}

func updateResource(t *testing.T, key types.NamespacedName, change func(*v1alpha1.ProtectedResource)) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var pr v1alpha1.ProtectedResource
		if err := suite.client.Get(t.Context(), key, &pr); err != nil {
			return err
		}
		change(&pr)
		return suite.client.Update(t.Context(), &pr)
	}))
}

func TestProtectedResourceIsServedWithItsClientsAndMetadata(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	aud := "https://" + ns + ".api.example"
	billing := confidentialClient(ns, "billing")
	billing.Labels = map[string]string{"team": "payments"}
	require.NoError(t, suite.client.Create(ctx, billing))
	other := confidentialClient(ns, "other")
	require.NoError(t, suite.client.Create(ctx, other))
	createScope(t, "payments:read-"+ns)

	pr := protectedResource(ns, "payments", aud)
	pr.Spec.Scopes = []string{"payments:read-" + ns, "payments:write-" + ns}
	pr.Spec.AllowedClients = []v1alpha1.ClientReference{{Name: "named"}}
	pr.Spec.AllowedClientSelector = &v1alpha1.ClientSelector{MatchLabels: map[string]string{"team": "payments"}}
	pr.Spec.Metadata = &v1alpha1.ProtectedResourceMetadata{ResourceName: "Payments"}
	require.NoError(t, suite.client.Create(ctx, pr))
	key := client.ObjectKeyFromObject(pr)

	got := waitResourceReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	assert.Contains(t, meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message, ns+"/named",
		"a named client that does not exist is named in the message")
	sr := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionScopesResolved)
	require.NotNil(t, sr)
	assert.Equal(t, v1alpha1.ReasonUnknownScope, sr.Reason)
	assert.Contains(t, sr.Message, "payments:write-"+ns)
	waitResourceServed(t, aud, ns+"/payments", func(c *assert.CollectT, p *registry.ProtectedResource) {
		assert.Equal(c, []string{ns + "/billing", ns + "/named"}, p.AllowedClients)
	})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var cur v1alpha1.ProtectedResource
		if assert.NoError(c, suite.client.Get(ctx, key, &cur)) {
			assert.Equal(c, int32(1), cur.Status.ClientsResolved, "billing exists, named does not")
			assert.Equal(c, "2/2", cur.Status.Served, "both replicas serve it")
			if p := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionPropagated); assert.NotNil(c, p) {
				assert.Equal(c, v1alpha1.ReasonPropagated, p.Reason)
			}
		}
	}, waitFor, tick)

	t.Run("the metadata ConfigMap is written, owned by the resource", func(t *testing.T) {
		var cm corev1.ConfigMap
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.NoError(c, suite.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "payments" + ResourceMetadataSuffix}, &cm))
		}, waitFor, tick)
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(cm.Data[latchkeyoauth2.ProtectedResourceMetadataKey]), &doc))
		assert.Equal(t, aud, doc["resource"])
		assert.Equal(t, []any{testIssuer}, doc["authorization_servers"])
		assert.Equal(t, "Payments", doc["resource_name"])
		assert.True(t, metav1.IsControlledBy(&cm, got), "deleted with the resource")
		require.NoError(t, suite.client.Delete(ctx, &cm))
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.NoError(c, suite.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "payments" + ResourceMetadataSuffix}, &cm))
		}, waitFor, tick, "a deleted ConfigMap is written again")
	})
	t.Run("a label change takes a client in and out of the selector", func(t *testing.T) {
		updateClient(t, client.ObjectKeyFromObject(other), func(oc *v1alpha1.OAuthClient) {
			oc.Labels = map[string]string{"team": "payments"}
		})
		waitResourceServed(t, aud, ns+"/payments", func(c *assert.CollectT, p *registry.ProtectedResource) {
			assert.Equal(c, []string{ns + "/billing", ns + "/named", ns + "/other"}, p.AllowedClients)
		})
		updateClient(t, client.ObjectKeyFromObject(billing), func(oc *v1alpha1.OAuthClient) { oc.Labels = nil })
		waitResourceServed(t, aud, ns+"/payments", func(c *assert.CollectT, p *registry.ProtectedResource) {
			assert.Equal(c, []string{ns + "/named", ns + "/other"}, p.AllowedClients)
		})
	})
	t.Run("a later resource claiming the audience conflicts until the holder goes", func(t *testing.T) {
		createdAfter(got.CreationTimestamp) // creation times have seconds: then the source would decide
		ns2 := newNamespace(t)
		squatter := protectedResource(ns2, "squatter", aud)
		squatter.Spec.AllowedClients = []v1alpha1.ClientReference{{Name: "evil"}}
		require.NoError(t, suite.client.Create(ctx, squatter))
		cond := meta.FindStatusCondition(waitResourceReady(t, client.ObjectKeyFromObject(squatter), metav1.ConditionFalse,
			v1alpha1.ReasonAudienceConflict).Status.Conditions, v1alpha1.ConditionReady)
		assert.Contains(t, cond.Message, ns+"/payments")
		waitEvent(t, ns2, "squatter", v1alpha1.ReasonAudienceConflict)
		waitResourceServed(t, aud, ns+"/payments", nil)
		var cm corev1.ConfigMap
		err := suite.client.Get(ctx, types.NamespacedName{Namespace: ns2, Name: "squatter" + ResourceMetadataSuffix}, &cm)
		assert.True(t, apierrors.IsNotFound(err), "no metadata for a resource that does not hold its audience: %v", err)

		require.NoError(t, suite.client.Delete(ctx, pr))
		waitResourceReady(t, client.ObjectKeyFromObject(squatter), metav1.ConditionTrue, v1alpha1.ReasonReady)
		waitResourceServed(t, aud, ns2+"/squatter", nil)
	})
}

func TestProtectedResourceBreakingItsNamespacesAudiencePolicyIsNotServed(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	pol := &v1alpha1.OAuthClientPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "internal"},
		Spec: v1alpha1.OAuthClientPolicySpec{AllowedAudiences: []string{"https://internal.example/*"}}}
	require.NoError(t, suite.client.Create(ctx, pol))
	pr := protectedResource(ns, "bank", "https://bank.example/"+ns)
	require.NoError(t, suite.client.Create(ctx, pr))
	got := waitResourceReady(t, client.ObjectKeyFromObject(pr), metav1.ConditionFalse, v1alpha1.ReasonPolicyViolation)
	assert.Contains(t, meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message, ns+"/internal")
	for _, r := range suite.replicas {
		_, ok := r.registry.Snapshot().ProtectedResourceBySource(ns + "/bank")
		assert.False(t, ok)
	}
	updateResource(t, client.ObjectKeyFromObject(pr), func(p *v1alpha1.ProtectedResource) {
		p.Spec.Audience = "https://internal.example/" + ns
	})
	waitResourceReady(t, client.ObjectKeyFromObject(pr), metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitResourceServed(t, "https://internal.example/"+ns, ns+"/bank", nil)
	cmKey := types.NamespacedName{Namespace: ns, Name: "bank" + ResourceMetadataSuffix}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, suite.client.Get(ctx, cmKey, &corev1.ConfigMap{}))
	}, waitFor, tick)

	// Out of policy again: not served, and its metadata ConfigMap goes.
	updateResource(t, client.ObjectKeyFromObject(pr), func(p *v1alpha1.ProtectedResource) {
		p.Spec.Audience = "https://bank.example/" + ns
	})
	waitResourceReady(t, client.ObjectKeyFromObject(pr), metav1.ConditionFalse, v1alpha1.ReasonPolicyViolation)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.True(c, apierrors.IsNotFound(suite.client.Get(ctx, cmKey, &corev1.ConfigMap{})))
	}, waitFor, tick)
}

func TestTheCRDRefusesAnInvalidProtectedResource(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name   string
		mutate func(p *v1alpha1.ProtectedResource)
	}{
		{"a relative audience is refused", func(p *v1alpha1.ProtectedResource) { p.Spec.Audience = "/payments" }},
		{"an audience with a fragment is refused", func(p *v1alpha1.ProtectedResource) { p.Spec.Audience = "https://p.example/#x" }},
		{"an audience with a space is refused", func(p *v1alpha1.ProtectedResource) { p.Spec.Audience = "https://p.example/a b" }},
		{"a requester without subject token sources is refused", func(p *v1alpha1.ProtectedResource) {
			p.Spec.TokenExchange = &v1alpha1.TokenExchangePolicy{AllowedRequesters: []v1alpha1.ExchangeRequester{{
				Client: v1alpha1.ClientReference{Name: "gateway"}}}}
		}},
		{"an unknown subject token source is refused", func(p *v1alpha1.ProtectedResource) {
			p.Spec.TokenExchange = &v1alpha1.TokenExchangePolicy{AllowedRequesters: []v1alpha1.ExchangeRequester{{
				Client: v1alpha1.ClientReference{Name: "gateway"}, SubjectTokenSources: []v1alpha1.SubjectTokenSource{"SAML"}}}}
		}},
		{"workload issuers without the WorkloadIssuer source are refused", func(p *v1alpha1.ProtectedResource) {
			p.Spec.TokenExchange = &v1alpha1.TokenExchangePolicy{AllowedRequesters: []v1alpha1.ExchangeRequester{{
				Client:              v1alpha1.ClientReference{Name: "gateway"},
				SubjectTokenSources: []v1alpha1.SubjectTokenSource{v1alpha1.SubjectTokenAccessToken}, WorkloadIssuers: []string{"github"}}}}
		}},
		{"a selector requirement In without values is refused", func(p *v1alpha1.ProtectedResource) {
			p.Spec.AllowedClientSelector = &v1alpha1.ClientSelector{MatchExpressions: []v1alpha1.ClientSelectorRequirement{{Key: "team", Operator: "In"}}}
		}},
		{"an unknown selector operator is refused", func(p *v1alpha1.ProtectedResource) {
			p.Spec.AllowedClientSelector = &v1alpha1.ClientSelector{MatchExpressions: []v1alpha1.ClientSelectorRequirement{{Key: "team", Operator: "Near"}}}
		}},
		{"a client name with a slash is refused", func(p *v1alpha1.ProtectedResource) {
			p.Spec.AllowedClients = []v1alpha1.ClientReference{{Name: "team/billing"}}
		}},
		{"an unknown bearer method is refused", func(p *v1alpha1.ProtectedResource) {
			p.Spec.Metadata = &v1alpha1.ProtectedResourceMetadata{BearerMethodsSupported: []string{"cookie"}}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := protectedResource(ns, "bad-"+string(rune('a'+i)), "https://ok.example/")
			tt.mutate(p)
			err := suite.client.Create(t.Context(), p)
			require.Error(t, err)
			assert.True(t, apierrors.IsInvalid(err), "%v", err)
		})
	}
	ok := protectedResource(ns, "good", "urn:example:payments")
	ok.Spec.TokenExchange = &v1alpha1.TokenExchangePolicy{AllowedRequesters: []v1alpha1.ExchangeRequester{{
		Client:              v1alpha1.ClientReference{Name: "gateway"},
		SubjectTokenSources: []v1alpha1.SubjectTokenSource{v1alpha1.SubjectTokenWorkloadIssuer}, WorkloadIssuers: []string{"github"}}}}
	require.NoError(t, suite.client.Create(t.Context(), ok), "a URN audience and a WorkloadIssuer requester are valid")
}
