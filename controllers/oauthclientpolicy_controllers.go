package controllers

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/policy"
)

// clientPolicies are the OAuthClientPolicies that apply to the OAuthClients of a namespace:
// those of the namespace and the default policy (when named and it exists).
type clientPolicies struct {
	reader client.Reader // the manager's cache
	// def is the default policy, applying to every namespace; zero when there is none.
	def types.NamespacedName
}

// of returns the policies that apply to the OAuthClients of the namespace.
func (p clientPolicies) of(ctx context.Context, namespace string) ([]v1alpha1.OAuthClientPolicy, error) {
	var list v1alpha1.OAuthClientPolicyList
	if err := p.reader.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list OAuthClientPolicies of namespace %s: %w", namespace, err)
	}
	if p.def.Name == "" || p.def.Namespace == namespace {
		return list.Items, nil
	}
	var def v1alpha1.OAuthClientPolicy
	if err := p.reader.Get(ctx, p.def, &def); err != nil {
		if apierrors.IsNotFound(err) {
			return list.Items, nil
		}
		return nil, fmt.Errorf("get default OAuthClientPolicy %s: %w", p.def, err)
	}
	return append(list.Items, def), nil
}

// violations returns the rules of the applicable policies that oc breaks.
func (p clientPolicies) violations(ctx context.Context, oc *v1alpha1.OAuthClient) ([]policy.Violation, error) {
	ps, err := p.of(ctx, oc.Namespace)
	if err != nil {
		return nil, err
	}
	return policy.Evaluate(oc, ps), nil
}

// clientsOfPolicy maps an OAuthClientPolicy to the OAuthClients it applies to: those of its
// namespace, or every one for the default policy. A policy change re-evaluates them.
func (p clientPolicies) clientsOfPolicy(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		reqs, err := p.listClientsOf(ctx, c, client.ObjectKeyFromObject(o))
		if err != nil {
			log.FromContext(ctx).Error(err, "listing the OAuthClients of a policy", "policy", client.ObjectKeyFromObject(o))
		}
		return reqs
	}
}

// listClientsOf lists the OAuthClients the policy at key applies to.
func (p clientPolicies) listClientsOf(ctx context.Context, c client.Reader, key types.NamespacedName) ([]reconcile.Request, error) {
	var opts []client.ListOption
	if p.def.Name == "" || key != p.def {
		opts = append(opts, client.InNamespace(key.Namespace))
	}
	var list v1alpha1.OAuthClientList
	if err := c.List(ctx, &list, opts...); err != nil {
		return nil, fmt.Errorf("list the OAuthClients of OAuthClientPolicy %s: %w", key, err)
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs, nil
}

// clientsAndPeersOfPolicy is clientsOfPolicy plus, for each client, the other clients claiming
// its client ID or bound to its workload identity: a client a policy withdraws (or serves again)
// gives its client ID or workload identity to (or takes it from) a peer, whose conflict
// condition changes too.
func (p clientPolicies) clientsAndPeersOfPolicy(c client.Reader) handler.MapFunc {
	clients, idPeers, subjects := p.clientsOfPolicy(c), clientIDPeers(c), subjectPeers(c)
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		reqs := clients(ctx, o)
		for _, req := range slices.Clone(reqs) {
			var oc v1alpha1.OAuthClient
			if err := c.Get(ctx, req.NamespacedName, &oc); err != nil {
				continue
			}
			reqs = append(reqs, idPeers(ctx, &oc)...)
			reqs = append(reqs, subjects(ctx, &oc)...)
		}
		return reqs
	}
}

// policyReconciler is the leader's OAuthClientPolicy controller: Ready when the policy can be
// applied as written (policy.Check), InvalidSpec otherwise.
type policyReconciler struct {
	client client.Client
	events events.EventRecorder
	def    types.NamespacedName // the default policy; zero: none
}

func (r *policyReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("oauthclientpolicy").
		For(&v1alpha1.OAuthClientPolicy{}, builder.WithPredicates(specChanged())).
		Complete(retryConflicts(r))
}

func (r *policyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	var p v1alpha1.OAuthClientPolicy
	if err := r.client.Get(ctx, req.NamespacedName, &p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !p.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	base := p.DeepCopy()
	defer func() {
		var written bool
		written, retErr = patchStatus(ctx, r.client, base, &p, base.Status, p.Status, retErr)
		if written {
			recordReadyTransition(r.events, &p, base.Status.Conditions, p.Status.Conditions)
		}
	}()
	if err := policy.Check(&p); err != nil {
		setReady(&p.Status.Conditions, &p.Status.ObservedGeneration, p.Generation,
			metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, err.Error())
		return ctrl.Result{}, nil
	}
	applies := "the policy applies to the OAuthClients of namespace " + p.Namespace
	if req.NamespacedName == r.def {
		applies = "the default policy applies to the OAuthClients of every namespace"
	}
	setReady(&p.Status.Conditions, &p.Status.ObservedGeneration, p.Generation, metav1.ConditionTrue, v1alpha1.ReasonReady, applies)
	return ctrl.Result{}, nil
}
