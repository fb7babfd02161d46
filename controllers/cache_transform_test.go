package controllers

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

// TestTheCacheHoldsTrimmedObjects starts an informer cache with TrimForCache, as main.go's
// manager has it, against the API server: the objects it serves have no managedFields and no
// last-applied annotation, though the API server's have both.
func TestTheCacheHoldsTrimmedObjects(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	lastApplied := map[string]string{LastAppliedAnnotation: `{"kind":"OAuthClient"}`, "team": "billing"}
	oc := confidentialClient(ns, "trimmed")
	oc.Annotations = lastApplied
	require.NoError(t, suite.client.Create(ctx, oc, client.FieldOwner("kubectl-client-side-apply")))
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "trimmed", Annotations: lastApplied},
		StringData: map[string]string{"client-secret": "s"}}
	require.NoError(t, suite.client.Create(ctx, secret, client.FieldOwner("kubectl-client-side-apply")))

	var live v1alpha1.OAuthClient
	require.NoError(t, suite.client.Get(ctx, client.ObjectKeyFromObject(oc), &live))
	require.NotEmpty(t, live.ManagedFields, "the API server keeps managedFields")
	require.Contains(t, live.Annotations, LastAppliedAnnotation)

	c, err := cache.New(suite.cfg, cache.Options{Scheme: suite.scheme, DefaultTransform: TrimForCache})
	require.NoError(t, err)
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = c.Start(cctx) }()
	require.True(t, c.WaitForCacheSync(ctx))

	var cached v1alpha1.OAuthClient
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(oc), &cached)) // starts an informer and waits for its sync
	assert.Empty(t, cached.ManagedFields, "the cached OAuthClient has no managedFields")
	assert.Equal(t, map[string]string{"team": "billing"}, cached.Annotations, "only the last-applied annotation is dropped")
	assert.Equal(t, live.Spec, cached.Spec)

	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(secret), meta))
	assert.Empty(t, meta.ManagedFields, "the cached Secret metadata has no managedFields")
	assert.Equal(t, map[string]string{"team": "billing"}, meta.Annotations)
}
