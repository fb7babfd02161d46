package controllers

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestGeneratedClientBecomesReadyAndServed(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	createScope(t, "read:projects-"+ns)
	oc := confidentialClient(ns, "billing", "read:projects-"+ns)
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)

	got := waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	assert.Equal(t, int64(1), got.Status.ObservedGeneration)
	assert.Equal(t, "billing."+ns, got.Status.ClientID)
	assert.Equal(t, "billing-oauth-client", got.Status.SecretName)

	var s corev1.Secret
	require.NoError(t, suite.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "billing-oauth-client"}, &s))
	assert.ElementsMatch(t, []string{"client-id", "client-secret", "token-url"}, mapKeys(s.Data))
	assert.Equal(t, "billing."+ns, string(s.Data["client-id"]))
	assert.Equal(t, testTokenURL, string(s.Data["token-url"]))
	assert.Len(t, s.Data["client-secret"], 43, "32 random bytes in unpadded base64url")
	require.Len(t, s.OwnerReferences, 1)
	owner := s.OwnerReferences[0]
	assert.Equal(t, "OAuthClient", owner.Kind)
	assert.Equal(t, got.UID, owner.UID)
	assert.True(t, ptrTrue(owner.Controller))

	secret := string(s.Data["client-secret"])
	waitServed(t, "billing."+ns, ns+"/billing", func(c *assert.CollectT, cl *registry.Client) {
		assert.True(c, cl.CheckSecret(secret), "the generated secret authenticates")
		assert.False(c, cl.CheckSecret(secret+"x"))
		assert.Equal(c, []string{"read:projects-" + ns}, cl.Scopes)
	})
	waitEvent(t, ns, "billing", EventSecretGenerated)

	// A real token request against the follower's and the leader's registries alike.
	for i, r := range suite.replicas {
		srv := tokenServer(t, r)
		require.Eventually(t, r.keyring.Loaded, waitFor, tick)
		tok, err := requestToken(ctx, srv, "billing."+ns, secret, "read:projects-"+ns)
		require.NoError(t, err, "replica %d", i)
		assert.NotEmpty(t, tok.AccessToken)
		assert.Equal(t, "read:projects-"+ns, tok.Extra("scope"))
		_, err = requestToken(ctx, srv, "billing."+ns, "wrong", "read:projects-"+ns)
		assertOAuthError(t, err, "invalid_client")
	}
}

func TestScopeChangeTakesEffect(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	oc := confidentialClient(ns, "reports", "a:read")
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitServed(t, "reports."+ns, ns+"/reports", func(c *assert.CollectT, cl *registry.Client) {
		assert.False(c, cl.AllowsScope("b:write"))
	})

	updateClient(t, key, func(oc *v1alpha1.OAuthClient) { oc.Spec.Scopes = append(oc.Spec.Scopes, "b:write") })

	waitServed(t, "reports."+ns, ns+"/reports", func(c *assert.CollectT, cl *registry.Client) {
		assert.True(c, cl.AllowsScope("a:read"))
		assert.True(c, cl.AllowsScope("b:write"))
		assert.True(c, cl.HasSecret)
	})
	got := waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	assert.Equal(t, int64(2), got.Status.ObservedGeneration)

	// A spec the CRD accepts but the server cannot serve: the client leaves the registry.
	updateClient(t, key, func(oc *v1alpha1.OAuthClient) { oc.Spec.DefaultScopes = []string{"c:admin"} })
	waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, r := range suite.replicas {
			_, ok := r.registry.Snapshot().Client("reports." + ns)
			assert.False(c, ok)
		}
	}, waitFor, tick)
}

func TestSecretRotation(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	oc := confidentialClient(ns, "rotate")
	require.NoError(t, suite.client.Create(ctx, oc))
	waitReady(t, client.ObjectKeyFromObject(oc), metav1.ConditionTrue, v1alpha1.ReasonReady)
	old := secretValue(t, ns, "rotate-oauth-client", "client-secret")
	waitServed(t, "rotate."+ns, ns+"/rotate", func(c *assert.CollectT, cl *registry.Client) {
		assert.True(c, cl.CheckSecret(old))
	})

	var s corev1.Secret
	require.NoError(t, suite.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "rotate-oauth-client"}, &s))
	const rotated = "rotated-secret-value-0123456789"
	s.Data["client-secret"] = []byte(rotated)
	require.NoError(t, suite.client.Update(ctx, &s))

	waitServed(t, "rotate."+ns, ns+"/rotate", func(c *assert.CollectT, cl *registry.Client) {
		assert.True(c, cl.CheckSecret(rotated), "the new secret works")
		assert.False(c, cl.CheckSecret(old), "the old secret stops working")
	})
	assert.Equal(t, rotated, secretValue(t, ns, "rotate-oauth-client", "client-secret"), "never overwritten")

	srv := tokenServer(t, suite.replicas[1])
	require.Eventually(t, suite.replicas[1].keyring.Loaded, waitFor, tick)
	_, err := requestToken(ctx, srv, "rotate."+ns, rotated)
	require.NoError(t, err)
	_, err = requestToken(ctx, srv, "rotate."+ns, old)
	assertOAuthError(t, err, "invalid_client")
}

func TestDeletedClientIsNoLongerServed(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	oc := confidentialClient(ns, "gone")
	require.NoError(t, suite.client.Create(ctx, oc))
	waitReady(t, client.ObjectKeyFromObject(oc), metav1.ConditionTrue, v1alpha1.ReasonReady)
	secret := secretValue(t, ns, "gone-oauth-client", "client-secret")
	// Ready is the leader's view; a replica may still serve the client without the Secret it
	// has not read yet.
	waitServed(t, "gone."+ns, ns+"/gone", func(c *assert.CollectT, cl *registry.Client) {
		assert.True(c, cl.CheckSecret(secret), "the replica serves the client with its secret")
	})
	srv := tokenServer(t, suite.replicas[0])
	require.Eventually(t, suite.replicas[0].keyring.Loaded, waitFor, tick)
	_, err := requestToken(ctx, srv, "gone."+ns, secret)
	require.NoError(t, err)

	require.NoError(t, suite.client.Delete(ctx, oc))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i, r := range suite.replicas {
			_, ok := r.registry.Snapshot().Client("gone." + ns)
			assert.False(c, ok, "replica %d still serves the client", i)
		}
	}, waitFor, tick)
	_, err = requestToken(ctx, srv, "gone."+ns, secret)
	assertOAuthError(t, err, "invalid_client")
}

func TestClientIDConflict(t *testing.T) {
	ctx := t.Context()
	// The first client also has the smaller source key, so it wins even within one second.
	namespaces := []string{newNamespace(t), newNamespace(t)}
	slices.Sort(namespaces)
	id := "shared-" + namespaces[0]
	first := confidentialClient(namespaces[0], "first")
	first.Spec.ClientID = id
	require.NoError(t, suite.client.Create(ctx, first))
	waitReady(t, client.ObjectKeyFromObject(first), metav1.ConditionTrue, v1alpha1.ReasonReady)
	firstSecret := secretValue(t, namespaces[0], "first-oauth-client", "client-secret")

	second := confidentialClient(namespaces[1], "second")
	second.Spec.ClientID = id
	require.NoError(t, suite.client.Create(ctx, second))
	secondKey := client.ObjectKeyFromObject(second)
	got := waitReady(t, secondKey, metav1.ConditionFalse, v1alpha1.ReasonClientIDConflict)
	_, cond := getClient(t, secondKey)
	assert.Contains(t, cond.Message, namespaces[0]+"/first")
	assert.Equal(t, id, got.Status.ClientID)
	waitEvent(t, namespaces[1], "second", v1alpha1.ReasonClientIDConflict)

	// Every replica keeps serving the first; the loser got no Secret.
	waitServed(t, id, namespaces[0]+"/first", func(c *assert.CollectT, cl *registry.Client) {
		assert.True(c, cl.CheckSecret(firstSecret))
	})
	err := suite.client.Get(ctx, types.NamespacedName{Namespace: namespaces[1], Name: "second-oauth-client"}, &corev1.Secret{})
	assert.True(t, apierrors.IsNotFound(err), "no Secret for a client that lost its ID: %v", err)
	_, cond = getClient(t, client.ObjectKeyFromObject(first))
	assert.Equal(t, v1alpha1.ReasonReady, cond.Reason, "the winner stays Ready")

	// The winner goes: the second becomes Ready and is served with its own secret.
	require.NoError(t, suite.client.Delete(ctx, first))
	waitReady(t, secondKey, metav1.ConditionTrue, v1alpha1.ReasonReady)
	secondSecret := secretValue(t, namespaces[1], "second-oauth-client", "client-secret")
	waitServed(t, id, namespaces[1]+"/second", func(c *assert.CollectT, cl *registry.Client) {
		assert.True(c, cl.CheckSecret(secondSecret))
		assert.False(c, cl.CheckSecret(firstSecret))
	})
	srv := tokenServer(t, suite.replicas[0])
	require.Eventually(t, suite.replicas[0].keyring.Loaded, waitFor, tick)
	_, err = requestToken(ctx, srv, id, secondSecret)
	require.NoError(t, err)
}

func TestExternalSecretIsWaitedFor(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	oc := confidentialClient(ns, "ext")
	oc.Spec.SecretPolicy = v1alpha1.SecretPolicyExternal
	oc.Spec.SecretRef = &v1alpha1.LocalSecretKeyRef{Name: "ext-creds", Key: "password"}
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)

	got := waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	assert.Equal(t, "ext-creds", got.Status.SecretName)
	err := suite.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "ext-creds"}, &corev1.Secret{})
	assert.True(t, apierrors.IsNotFound(err), "External never generates: %v", err)
	// Served without a secret: the ID is held, nothing authenticates.
	waitServed(t, "ext."+ns, ns+"/ext", func(c *assert.CollectT, cl *registry.Client) {
		assert.False(c, cl.HasSecret)
	})

	// A Secret without the key is still not enough.
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ext-creds"},
		Data:       map[string][]byte{"other": []byte("x")},
	}
	require.NoError(t, suite.client.Create(ctx, s))
	waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)

	s.Data["password"] = []byte("external-secret")
	require.NoError(t, suite.client.Update(ctx, s))
	waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitServed(t, "ext."+ns, ns+"/ext", func(c *assert.CollectT, cl *registry.Client) {
		assert.True(c, cl.CheckSecret("external-secret"))
	})
	require.NoError(t, suite.client.Get(ctx, client.ObjectKeyFromObject(s), s))
	assert.Empty(t, s.OwnerReferences, "an External Secret is not adopted")

	// Deleting the Secret stops authentication at once.
	require.NoError(t, suite.client.Delete(ctx, s))
	waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	waitServed(t, "ext."+ns, ns+"/ext", func(c *assert.CollectT, cl *registry.Client) {
		assert.False(c, cl.CheckSecret("external-secret"))
	})
}

func TestPublicClientNeedsNoSecret(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	oc := &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "spa"},
		Spec: v1alpha1.OAuthClientSpec{
			Type:         v1alpha1.ClientTypePublic,
			GrantTypes:   []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode},
			RedirectURIs: []string{"https://app.example/callback"},
		},
	}
	require.NoError(t, suite.client.Create(ctx, oc))
	got := waitReady(t, client.ObjectKeyFromObject(oc), metav1.ConditionTrue, v1alpha1.ReasonReady)
	assert.Empty(t, got.Status.SecretName)
	waitServed(t, "spa."+ns, ns+"/spa", func(c *assert.CollectT, cl *registry.Client) {
		assert.Equal(c, registry.Public, cl.Type)
		assert.Equal(c, "none", cl.AuthMethod)
	})
	err := suite.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "spa-oauth-client"}, &corev1.Secret{})
	assert.True(t, apierrors.IsNotFound(err), "no Secret for a public client: %v", err)
}

func TestGenerateNeverUsesASecretItDoesNotControl(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	// Someone who may create Secrets but not read the generated one plants a known value.
	planted := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken-oauth-client"},
		Data:       map[string][]byte{"client-secret": []byte("known-to-the-planter")},
	}
	require.NoError(t, suite.client.Create(ctx, planted))
	oc := confidentialClient(ns, "taken")
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)

	waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonSecretConflict)
	_, cond := getClient(t, key)
	assert.Contains(t, cond.Message, "taken-oauth-client")
	waitEvent(t, ns, "taken", v1alpha1.ReasonSecretConflict)
	waitServed(t, "taken."+ns, ns+"/taken", func(c *assert.CollectT, cl *registry.Client) {
		assert.False(c, cl.HasSecret, "served without a secret")
		assert.False(c, cl.CheckSecret("known-to-the-planter"))
	})
	var s corev1.Secret
	require.NoError(t, suite.client.Get(ctx, client.ObjectKeyFromObject(planted), &s))
	assert.Empty(t, s.OwnerReferences, "not adopted")
	assert.Equal(t, "known-to-the-planter", string(s.Data["client-secret"]), "not overwritten")

	// Once it is gone, the client gets its own.
	require.NoError(t, suite.client.Delete(ctx, planted))
	got := waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	require.NoError(t, suite.client.Get(ctx, client.ObjectKeyFromObject(planted), &s))
	require.Len(t, s.OwnerReferences, 1)
	assert.Equal(t, got.UID, s.OwnerReferences[0].UID)
	generated := string(s.Data["client-secret"])
	assert.NotEqual(t, "known-to-the-planter", generated)
	waitServed(t, "taken."+ns, ns+"/taken", func(c *assert.CollectT, cl *registry.Client) {
		assert.True(c, cl.CheckSecret(generated))
	})
}

func TestRecreatedClientWaitsForItsPredecessorsSecret(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	oc := confidentialClient(ns, "again")
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	old := secretValue(t, ns, "again-oauth-client", "client-secret")

	require.NoError(t, suite.client.Delete(ctx, oc))
	require.Eventually(t, func() bool {
		return apierrors.IsNotFound(suite.client.Get(ctx, key, &v1alpha1.OAuthClient{}))
	}, waitFor, tick)
	again := confidentialClient(ns, "again")
	require.NoError(t, suite.client.Create(ctx, again))

	// envtest runs no garbage collector, so the predecessor's Secret stays: the new client must
	// neither use it nor adopt it, and waits.
	waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonSecretConflict)
	_, cond := getClient(t, key)
	assert.Contains(t, cond.Message, "gone or being deleted")
	waitServed(t, "again."+ns, ns+"/again", func(c *assert.CollectT, cl *registry.Client) {
		assert.False(c, cl.CheckSecret(old), "the predecessor's secret does not authenticate the new client")
	})

	// The garbage collector's part: the orphan goes, the new client generates its own.
	require.NoError(t, suite.client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "again-oauth-client"}}))
	got := waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	var s corev1.Secret
	require.NoError(t, suite.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "again-oauth-client"}, &s))
	require.Len(t, s.OwnerReferences, 1)
	assert.Equal(t, got.UID, s.OwnerReferences[0].UID)
	fresh := string(s.Data["client-secret"])
	assert.NotEqual(t, old, fresh)
	waitServed(t, "again."+ns, ns+"/again", func(c *assert.CollectT, cl *registry.Client) {
		assert.True(c, cl.CheckSecret(fresh))
		assert.False(c, cl.CheckSecret(old))
	})
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func ptrTrue(b *bool) bool { return b != nil && *b }

// The registered label changes no generation; every replica still serves its change (the
// consent page's unverified note depends on it).
func TestTheRegisteredLabelReachesEveryReplica(t *testing.T) {
	ns := newNamespace(t)
	oc := confidentialClient(ns, "labelled", "a:read")
	require.NoError(t, suite.client.Create(t.Context(), oc))
	key := client.ObjectKeyFromObject(oc)
	waitServed(t, "labelled."+ns, ns+"/labelled", func(c *assert.CollectT, cl *registry.Client) { assert.False(c, cl.Registered) })
	updateClient(t, key, func(oc *v1alpha1.OAuthClient) {
		oc.Labels = map[string]string{v1alpha1.LabelRegistered: "true"}
	})
	waitServed(t, "labelled."+ns, ns+"/labelled", func(c *assert.CollectT, cl *registry.Client) { assert.True(c, cl.Registered) })
	updateClient(t, key, func(oc *v1alpha1.OAuthClient) { delete(oc.Labels, v1alpha1.LabelRegistered) })
	waitServed(t, "labelled."+ns, ns+"/labelled", func(c *assert.CollectT, cl *registry.Client) { assert.False(c, cl.Registered) })
}

func TestTheDPoPPolicyIsServedAndTheCRDRefusesUnknownValues(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	oc := &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "spa"},
		Spec: v1alpha1.OAuthClientSpec{
			Type:         v1alpha1.ClientTypePublic,
			GrantTypes:   []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode},
			RedirectURIs: []string{"https://app.example/callback"},
			DPoP:         v1alpha1.DPoPRequired,
		},
	}
	require.NoError(t, suite.client.Create(ctx, oc))
	waitReady(t, client.ObjectKeyFromObject(oc), metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitServed(t, "spa."+ns, ns+"/spa", func(c *assert.CollectT, cl *registry.Client) {
		assert.Equal(c, registry.DPoPRequired, cl.DPoP)
	})

	bad := oc.DeepCopy()
	bad.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "bad"}
	bad.Spec.DPoP = "Sometimes"
	err := suite.client.Create(ctx, bad)
	require.Error(t, err)
	assert.True(t, apierrors.IsInvalid(err), "the CRD's enum refuses it: %v", err)
}
