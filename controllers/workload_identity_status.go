package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/controllers/feed"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// This file is the OAuthClient controller's part about workload identities: a client bound to a
// subject of a WorkloadIssuer (spec.workloadIdentity) or to a ServiceAccount
// (spec.serviceAccount) is Ready=False when the server would refuse every assertion it sends
// for a reason its owner can fix: IssuerNotFound, NamespaceNotAllowed, SubjectConflict.

// workloadIdentityIndexes are the field indexes of workload identities (fieldIndexes).
func workloadIdentityIndexes() []fieldIndex {
	return []fieldIndex{
		{&v1alpha1.OAuthClient{}, indexClientSubject, func(o client.Object) []string {
			oc, ok := o.(*v1alpha1.OAuthClient)
			if !ok {
				return nil
			}
			if iss, sub, ok := convert.WorkloadSubjectKey(oc); ok {
				return []string{convert.WorkloadSubjectIndexKey(iss, sub)}
			}
			return nil
		}},
		{&v1alpha1.OAuthClient{}, indexClientIssuer, func(o client.Object) []string {
			oc, ok := o.(*v1alpha1.OAuthClient)
			if !ok || oc.Spec.WorkloadIdentity == nil {
				return nil
			}
			return []string{oc.Spec.WorkloadIdentity.IssuerRef.Name}
		}},
		{&v1alpha1.WorkloadIssuer{}, indexIssuerSecret, func(o client.Object) []string {
			wi, ok := o.(*v1alpha1.WorkloadIssuer)
			if !ok {
				return nil
			}
			if ns, name, _, ok := convert.IssuerKeySecretRef(wi); ok {
				return []string{convert.SourceKey(ns, name)}
			}
			return nil
		}},
	}
}

// workloadIdentityStatus sets the Ready condition of a valid client that cannot authenticate by
// its workload identity and reports done; a client bound to none, or whose binding is fine, is
// left to the rest of the reconcile. The order: the issuer must exist and allow the client's
// namespace, then the client must hold its (issuer, subject) pair.
func (r *oauthClientReconciler) workloadIdentityStatus(ctx context.Context, oc *v1alpha1.OAuthClient) (done bool, _ error) {
	iss, sub, ok := convert.WorkloadSubjectKey(oc)
	if !ok {
		return false, nil
	}
	logger := log.FromContext(ctx)
	var wi v1alpha1.WorkloadIssuer
	if oc.Spec.WorkloadIdentity != nil {
		err := r.client.Get(ctx, types.NamespacedName{Name: iss}, &wi)
		if err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("get WorkloadIssuer %s: %w", iss, err)
		}
		exists := err == nil && wi.DeletionTimestamp.IsZero()
		if c, bad := feed.Binding(oc.Namespace, iss, exists, wi.Spec.AllowedNamespaces); bad {
			setReady(&oc.Status.Conditions, &oc.Status.ObservedGeneration, oc.Generation, metav1.ConditionFalse, c.Reason, c.Message)
			logger.Info("client cannot use its WorkloadIssuer", "reason", c.Reason, "workloadIssuer", iss)
			return true, nil
		}
	}
	holder, err := r.subjectHolder(ctx, oc, iss, sub, wi.Spec.AllowedNamespaces)
	if err != nil {
		return false, err
	}
	if holder != "" {
		c := feed.SubjectConflict(iss, sub, holder)
		setReady(&oc.Status.Conditions, &oc.Status.ObservedGeneration, oc.Generation, metav1.ConditionFalse, c.Reason, c.Message)
		logger.Info("workload identity conflict", "heldBy", holder)
		return true, nil
	}
	return false, nil
}

// subjectHolder returns the source key of the OAuthClient that holds the workload identity
// (issuer, subject) instead of oc, or "" when oc holds it. The candidates are what the registries
// hold (valid, not being deleted), ordered by registry.Wins: registry.Snapshot.SubjectHolder's
// choice, so the client marked Ready is the one every replica lets authenticate. Of the clients
// bound to a WorkloadIssuer subject only those of the allowed namespaces count (registry's
// mayBind): a client the issuer does not allow can never keep the pair from one it does, and
// neither can one a policy withdraws.
func (r *oauthClientReconciler) subjectHolder(ctx context.Context, oc *v1alpha1.OAuthClient, issuer, subject string, allowed []string) (string, error) {
	key := convert.WorkloadSubjectIndexKey(issuer, subject)
	var peers v1alpha1.OAuthClientList
	if err := r.client.List(ctx, &peers, client.MatchingFields{indexClientSubject: key}); err != nil {
		return "", fmt.Errorf("list OAuthClients bound to a workload identity of %s: %w", issuer, err)
	}
	winner := registry.Client{Source: convert.SourceKey(oc.Namespace, oc.Name), Created: oc.CreationTimestamp.Time}
	self := winner.Source
	for i := range peers.Items {
		p := &peers.Items[i]
		if !p.DeletionTimestamp.IsZero() || convert.SourceKey(p.Namespace, p.Name) == self {
			continue
		}
		pc, err := convert.Client(p, nil)
		if errors.Is(err, convert.ErrInvalidSpec) {
			continue
		}
		if piss, psub, ok := pc.WorkloadSubjectKey(); !ok || piss != issuer || psub != subject {
			continue
		}
		if pc.WorkloadIssuer != "" && !slices.Contains(allowed, "*") && !slices.Contains(allowed, pc.Namespace) {
			continue
		}
		if vs, err := r.policies.violations(ctx, p); err != nil {
			return "", err
		} else if len(vs) > 0 {
			continue // not served: a policy withdraws it
		}
		if registry.Wins(&pc, &winner) {
			winner = pc
		}
	}
	if winner.Source == self {
		return "", nil
	}
	return winner.Source, nil
}

// subjectPeers maps an OAuthClient to the other OAuthClients bound to the same workload identity:
// a holder that goes (or changes its binding) hands the pair to the next one.
func subjectPeers(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		oc, ok := o.(*v1alpha1.OAuthClient)
		if !ok {
			return nil
		}
		iss, sub, ok := convert.WorkloadSubjectKey(oc)
		if !ok {
			return nil
		}
		var list v1alpha1.OAuthClientList
		if err := c.List(ctx, &list, client.MatchingFields{indexClientSubject: convert.WorkloadSubjectIndexKey(iss, sub)}); err != nil {
			log.FromContext(ctx).Error(err, "listing OAuthClients of a workload identity", "workloadIssuer", iss)
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if p := &list.Items[i]; p.Namespace != oc.Namespace || p.Name != oc.Name {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(p)})
			}
		}
		return reqs
	}
}

// clientsOfIssuer maps a WorkloadIssuer to the OAuthClients bound to its subjects: they are
// re-evaluated when it appears, goes, or changes its allowedNamespaces.
func clientsOfIssuer(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.OAuthClientList
		if err := c.List(ctx, &list, client.MatchingFields{indexClientIssuer: o.GetName()}); err != nil {
			log.FromContext(ctx).Error(err, "listing OAuthClients of a WorkloadIssuer", "workloadIssuer", o.GetName())
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
		return reqs
	}
}
