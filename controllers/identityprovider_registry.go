package controllers

import (
	"context"
	"reflect"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/latchkey-dev/latchkey/controllers/feed"
)

// providerRegistryReconciler keeps one replica's registry in step with the identity providers
// of one kind (cluster-scoped, one Secret each): P is the resource, V its registry value. The
// OIDC, LDAP and GitHub kinds differ only in the fields below.
type providerRegistryReconciler[P client.Object, V any] struct {
	cache   client.Reader // the manager's cache (the providers)
	secrets client.Reader // the API reader (Secrets)
	ready   *Readiness

	kind      string                              // the kind, for readiness
	name      string                              // the controller's name
	newObject func() P                            // an empty provider
	forSecret func(client.Reader) handler.MapFunc // the providers whose Secret it is
	// convert reads the provider's Secret and converts it; err is only a failure to read the
	// Secret (retried).
	convert func(context.Context, client.Reader, P) (V, feed.Decision, error)
	put     func(V)
	delete  func(name string)

	mu   sync.Mutex
	last map[string]V // what was put, by name
}

func (r *providerRegistryReconciler[P, V]) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(r.name).
		For(r.newObject(), builder.WithPredicates(specChanged())).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.forSecret(r.cache))).
		WithOptions(everyReplica()).
		Complete(r)
}

func (r *providerRegistryReconciler[P, V]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.ready.takeIn(ctx, r.cache, r.kind, req.NamespacedName, r.newObject(), r.secrets, func(secrets client.Reader) (ctrl.Result, error) {
		p := r.newObject()
		if err := r.cache.Get(ctx, req.NamespacedName, p); err != nil {
			if apierrors.IsNotFound(err) {
				r.withdraw(req.Name)
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, err
		}
		if !p.GetDeletionTimestamp().IsZero() {
			r.withdraw(req.Name)
			return ctrl.Result{}, nil
		}
		u, d, err := r.convert(ctx, secrets, p)
		if err != nil {
			return ctrl.Result{}, err
		}
		if d.Put() {
			r.serve(req.Name, u)
		} else {
			r.withdraw(req.Name)
		}
		logDecision(log.FromContext(ctx), d, "identityProvider", p.GetName())
		return ctrl.Result{}, nil
	})
}

// serve puts u unless the registry holds the same value.
func (r *providerRegistryReconciler[P, V]) serve(name string, u V) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.last[name]; ok && reflect.DeepEqual(prev, u) {
		return
	}
	if r.last == nil {
		r.last = map[string]V{}
	}
	r.last[name] = u
	r.put(u)
}

func (r *providerRegistryReconciler[P, V]) withdraw(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.last, name)
	r.delete(name)
}
