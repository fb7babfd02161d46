package controllers

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// LastAppliedAnnotation is the annotation in which kubectl apply keeps the whole object it
// applied last: as large as the object itself, and read by nothing here.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// TrimForCache is the transform of every informer of the manager (main.go sets it as
// cache.Options.DefaultTransform): it drops from each object, before the cache stores it, what
// no controller reads but every object carries, managedFields (server-side apply's field
// owners, often larger than the spec) and the last-applied annotation, so that the cache of
// 100,000 OAuthClients holds their specs, not their histories. Secrets are cached metadata-only
// already; their metadata is trimmed the same way.
//
// The controllers write objects they read from the cache with patches (a patch computed against
// the trimmed copy leaves both fields alone) or, for the Leases of the replicas' reports, with an
// Update of an object only the replicas write: an Update without managedFields keeps the API
// server's. Objects that are updated whole (Secrets, OAuthClients by the registrar) are read
// through the API reader, untrimmed.
func TrimForCache(obj any) (any, error) {
	if _, tombstone := obj.(toolscache.DeletedFinalStateUnknown); tombstone {
		return obj, nil // its object was trimmed when it was cached
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil
	}
	m.SetManagedFields(nil)
	if a := m.GetAnnotations(); a != nil {
		if _, has := a[LastAppliedAnnotation]; has {
			delete(a, LastAppliedAnnotation) // the object is the informer's own, just decoded
			if len(a) == 0 {
				m.SetAnnotations(nil)
			}
		}
	}
	return obj, nil
}

var _ toolscache.TransformFunc = TrimForCache
