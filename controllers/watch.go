package controllers

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
)

// Field indexes on the manager's cache.
const (
	// indexClientSecret: OAuthClient by the names of the Secrets it reads (convert.SecretNames:
	// client secret, rotation state, key set; the namespace is the client's).
	indexClientSecret = "latchkey.clientSecretName"
	// indexClientID: OAuthClient by its effective client ID.
	indexClientID = "latchkey.clientID"
	// indexUserSecret: User by "namespace/name" of its password Secret.
	indexUserSecret = "latchkey.passwordSecret"
	// indexUsername: User by spec.username.
	indexUsername = "latchkey.username"
	// indexScopeName: Scope by spec.name.
	indexScopeName = "latchkey.scopeName"
	// indexClientSubject: OAuthClient by the workload identity it binds to
	// (convert.WorkloadSubjectIndexKey of convert.WorkloadSubjectKey).
	indexClientSubject = "latchkey.workloadSubject"
	// indexClientIssuer: OAuthClient by spec.workloadIdentity.issuerRef.name.
	indexClientIssuer = "latchkey.workloadIssuer"
	// indexIssuerSecret: WorkloadIssuer by "namespace/name" of its jwksSecretRef.
	indexIssuerSecret = "latchkey.issuerSecret"
)

// fieldIndex is one field index of the manager's cache.
type fieldIndex struct {
	obj     client.Object
	field   string
	extract client.IndexerFunc
}

// fieldIndexes lists every index setupIndexes registers (tests register them on a fake client).
func fieldIndexes() []fieldIndex {
	return append([]fieldIndex{
		{&v1alpha1.OAuthClient{}, indexClientSecret, func(o client.Object) []string {
			oc, ok := o.(*v1alpha1.OAuthClient)
			if !ok {
				return nil
			}
			return convert.SecretNames(oc)
		}},
		{&v1alpha1.OAuthClient{}, indexClientID, func(o client.Object) []string {
			oc, ok := o.(*v1alpha1.OAuthClient)
			if !ok {
				return nil
			}
			return []string{convert.ClientID(oc)}
		}},
		{&v1alpha1.User{}, indexUserSecret, func(o client.Object) []string {
			u, ok := o.(*v1alpha1.User)
			if !ok {
				return nil
			}
			ns, name, _, ok := convert.PasswordSecretRef(u)
			if !ok {
				return nil
			}
			return []string{convert.SourceKey(ns, name)}
		}},
		{&v1alpha1.User{}, indexUsername, func(o client.Object) []string {
			u, ok := o.(*v1alpha1.User)
			if !ok {
				return nil
			}
			return []string{u.Spec.Username}
		}},
		{&v1alpha1.Scope{}, indexScopeName, func(o client.Object) []string {
			s, ok := o.(*v1alpha1.Scope)
			if !ok {
				return nil
			}
			return []string{s.Spec.Name}
		}},
	}, slices.Concat(workloadIdentityIndexes(), scopeIndexes(), resourceIndexes())...)
}

func setupIndexes(ctx context.Context, idx client.FieldIndexer) error {
	for _, fi := range fieldIndexes() {
		if err := idx.IndexField(ctx, fi.obj, fi.field, fi.extract); err != nil {
			return fmt.Errorf("controllers: index %s: %w", fi.field, err)
		}
	}
	return nil
}

// clientsForSecret maps a Secret to the OAuthClients of its namespace that read it.
func clientsForSecret(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, secret client.Object) []reconcile.Request {
		var list v1alpha1.OAuthClientList
		if err := c.List(ctx, &list, client.InNamespace(secret.GetNamespace()),
			client.MatchingFields{indexClientSecret: secret.GetName()}); err != nil {
			log.FromContext(ctx).Error(err, "listing OAuthClients of a Secret", "secret", client.ObjectKeyFromObject(secret))
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
		return reqs
	}
}

// clientIDPeers maps an OAuthClient to the other OAuthClients claiming the same client ID.
func clientIDPeers(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		oc, ok := o.(*v1alpha1.OAuthClient)
		if !ok {
			return nil
		}
		var list v1alpha1.OAuthClientList
		if err := c.List(ctx, &list, client.MatchingFields{indexClientID: convert.ClientID(oc)}); err != nil {
			log.FromContext(ctx).Error(err, "listing OAuthClients of a client ID", "clientID", convert.ClientID(oc))
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			p := &list.Items[i]
			if p.Namespace == oc.Namespace && p.Name == oc.Name {
				continue
			}
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(p)})
		}
		return reqs
	}
}

// usernamePeers maps a User to the other Users claiming the same username.
func usernamePeers(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		u, ok := o.(*v1alpha1.User)
		if !ok {
			return nil
		}
		var list v1alpha1.UserList
		if err := c.List(ctx, &list, client.MatchingFields{indexUsername: u.Spec.Username}); err != nil {
			log.FromContext(ctx).Error(err, "listing Users of a username", "user", u.Name)
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if p := &list.Items[i]; p.Name != u.Name {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(p)})
			}
		}
		return reqs
	}
}

// scopeNamePeers maps a Scope to the other Scopes claiming the same scope name.
func scopeNamePeers(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		s, ok := o.(*v1alpha1.Scope)
		if !ok {
			return nil
		}
		var list v1alpha1.ScopeList
		if err := c.List(ctx, &list, client.MatchingFields{indexScopeName: s.Spec.Name}); err != nil {
			log.FromContext(ctx).Error(err, "listing Scopes of a scope name", "scope", s.Name)
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if p := &list.Items[i]; p.Name != s.Name {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(p)})
			}
		}
		return reqs
	}
}

// usersAndPeersForSecret maps a Secret to the Users whose password it holds and the other Users
// claiming their usernames: a password that becomes invalid (or valid) takes a User out of (or
// into) the registry, which can change who wins its username.
func usersAndPeersForSecret(c client.Reader) handler.MapFunc {
	users, peers := usersForSecret(c), usernamePeers(c)
	return func(ctx context.Context, secret client.Object) []reconcile.Request {
		reqs := users(ctx, secret)
		for _, req := range slices.Clone(reqs) {
			var u v1alpha1.User
			if err := c.Get(ctx, req.NamespacedName, &u); err != nil {
				continue
			}
			reqs = append(reqs, peers(ctx, &u)...)
		}
		return reqs
	}
}

// usersForSecret maps a Secret to the Users whose password it holds.
func usersForSecret(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, secret client.Object) []reconcile.Request {
		var list v1alpha1.UserList
		if err := c.List(ctx, &list, client.MatchingFields{
			indexUserSecret: convert.SourceKey(secret.GetNamespace(), secret.GetName()),
		}); err != nil {
			log.FromContext(ctx).Error(err, "listing Users of a Secret", "secret", client.ObjectKeyFromObject(secret))
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
		return reqs
	}
}

// specChanged passes creates, deletes and the updates that change the spec (generation) or
// start a deletion, not the status writes.
func specChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		if e.ObjectOld == nil || e.ObjectNew == nil {
			return true
		}
		return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
			!e.ObjectOld.GetDeletionTimestamp().Equal(e.ObjectNew.GetDeletionTimestamp())
	}}
}

// annotationChanged passes the updates that change the annotation key (set, changed or
// removed); with specChanged, a request on the resource that changes no generation.
func annotationChanged(key string) predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		if e.ObjectOld == nil || e.ObjectNew == nil {
			return true
		}
		return e.ObjectOld.GetAnnotations()[key] != e.ObjectNew.GetAnnotations()[key]
	}}
}

// isObject passes the events of one object.
func isObject(key types.NamespacedName) predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetNamespace() == key.Namespace && o.GetName() == key.Name
	})
}

// getSecret reads a Secret (live, through the API reader: Secrets are cached metadata-only);
// it returns nil, nil when the Secret does not exist.
func getSecret(ctx context.Context, r client.Reader, namespace, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get Secret %s/%s: %w", namespace, name, err)
	}
	return &s, nil
}

// patchStatus patches obj's status from base when status differs, after a reconcile that
// returned recErr. A failed patch is returned in place of recErr (so it is retried even when
// recErr is terminal); a vanished object is not an error. written reports whether the API server
// now holds status (unchanged, or patched), so Events about it may be emitted.
//
// The patch carries base's resourceVersion (an optimistic lock): a merge patch replaces the
// conditions list whole, so one made from a stale read would drop a condition another
// controller wrote since (Propagated, written by the leader's propagation controller). A lost
// race is a conflict, which retryConflicts turns into a quiet requeue.
func patchStatus(ctx context.Context, c client.Client, base, obj client.Object, baseStatus, status any, recErr error) (written bool, _ error) {
	if equality.Semantic.DeepEqual(baseStatus, status) {
		return true, recErr
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return false, recErr
		}
		if recErr != nil {
			return false, fmt.Errorf("patch status: %w (after: %s)", err, recErr.Error()) // recErr unwrapped: a terminal recErr must not stop the retry
		}
		return false, fmt.Errorf("patch status: %w", err)
	}
	return true, recErr
}

// retryConflicts runs r and turns a lost optimistic lock (a status patch made from a read that
// another writer overtook) into a quiet requeue: the next reconcile reads the newer object.
func retryConflicts(r reconcile.Reconciler) reconcile.Reconciler {
	return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		res, err := r.Reconcile(ctx, req)
		if err != nil && apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: conflictRequeue}, nil
		}
		return res, err
	})
}
