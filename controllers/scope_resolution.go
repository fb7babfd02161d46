package controllers

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/feed"
	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// This file is the OAuthClient controller's part about spec.scopes: the ScopesResolved condition
// says whether every scope a client lists exists (a built-in OIDC scope, or a Scope resource of
// that name). It does not gate Ready: the client is served without an unknown scope, and the
// token endpoint refuses requests for it with invalid_scope, as it would for any scope the
// registry does not hold.

// indexClientScope: OAuthClient by each name of spec.scopes.
const indexClientScope = "latchkey.clientScope"

// scopeIndexes are the field indexes of scope resolution (fieldIndexes).
func scopeIndexes() []fieldIndex {
	return []fieldIndex{
		{&v1alpha1.OAuthClient{}, indexClientScope, func(o client.Object) []string {
			oc, ok := o.(*v1alpha1.OAuthClient)
			if !ok {
				return nil
			}
			return slices.Clone(oc.Spec.Scopes)
		}},
	}
}

// scopesResolved sets the ScopesResolved condition (feed.ScopesResolved): a listed scope is
// defined when a Scope of that name exists and is not being deleted.
func (r *oauthClientReconciler) scopesResolved(ctx context.Context, oc *v1alpha1.OAuthClient) error {
	lookups := map[string]feed.ScopeLookup{}
	for _, name := range oc.Spec.Scopes {
		if oauth2.IsBuiltinScope(name) {
			continue
		}
		var list v1alpha1.ScopeList
		if err := r.client.List(ctx, &list, client.MatchingFields{indexScopeName: name}); err != nil {
			return fmt.Errorf("list Scopes named %q: %w", name, err)
		}
		for i := range list.Items {
			if list.Items[i].DeletionTimestamp.IsZero() {
				lookups[name] = max(lookups[name], feed.LookupScope(list.Items[i].Spec.AllowedNamespaces, oc.Namespace))
			}
		}
	}
	res := feed.ScopesResolved(oc.Spec.Scopes, func(name string) feed.ScopeLookup { return lookups[name] })
	status := metav1.ConditionTrue
	if !res.Resolved {
		status = metav1.ConditionFalse
		log.FromContext(ctx).Info("client lists unknown scopes", "scopes", res.Unknown)
	}
	meta.SetStatusCondition(&oc.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionScopesResolved, Status: status, Reason: res.Reason, Message: res.Message,
		ObservedGeneration: oc.Generation,
	})
	return nil
}

// clientsOfScope enqueues the OAuthClients listing a Scope's name when the Scope is created or
// deleted or its spec changes; on a rename, those listing the old name too.
func clientsOfScope(c client.Reader) handler.TypedEventHandler[client.Object, reconcile.Request] {
	enqueue := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
		for _, o := range objs {
			s, ok := o.(*v1alpha1.Scope)
			if !ok {
				continue
			}
			var list v1alpha1.OAuthClientList
			if err := c.List(ctx, &list, client.MatchingFields{indexClientScope: s.Spec.Name}); err != nil {
				log.FromContext(ctx).Error(err, "listing OAuthClients of a scope", "scope", s.Spec.Name)
				continue
			}
			for i := range list.Items {
				q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object)
		},
	}
}
