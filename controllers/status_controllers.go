package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
)

// scopeReconciler is the leader's Scope controller: it sets Ready.
type scopeReconciler struct {
	client client.Client
}

func (r *scopeReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("scope").
		For(&v1alpha1.Scope{}, builder.WithPredicates(specChanged())).
		Complete(r)
}

func (r *scopeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	var s v1alpha1.Scope
	if err := r.client.Get(ctx, req.NamespacedName, &s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !s.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	base := s.DeepCopy()
	defer func() { retErr = patchStatus(ctx, r.client, base, &s, base.Status, s.Status, retErr) }()
	setReady(&s.Status.Conditions, &s.Status.ObservedGeneration, s.Generation,
		metav1.ConditionTrue, v1alpha1.ReasonReady, fmt.Sprintf("scope %q is served", s.Spec.Name))
	return ctrl.Result{}, nil
}

// userReconciler is the leader's User controller: it sets Ready.
type userReconciler struct {
	client  client.Client
	secrets client.Reader
	events  events.EventRecorder
}

func (r *userReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("user").
		For(&v1alpha1.User{}, builder.WithPredicates(specChanged())).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(usersForSecret(r.client))).
		Complete(r)
}

func (r *userReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	var u v1alpha1.User
	if err := r.client.Get(ctx, req.NamespacedName, &u); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !u.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	base := u.DeepCopy()
	defer func() {
		recordReadyTransition(r.events, &u, base.Status.Conditions, u.Status.Conditions)
		retErr = patchStatus(ctx, r.client, base, &u, base.Status, u.Status, retErr)
	}()
	secret, err := userSecret(ctx, r.secrets, &u)
	if err != nil {
		return ctrl.Result{}, err
	}
	ready := func(status metav1.ConditionStatus, reason, msg string) {
		setReady(&u.Status.Conditions, &u.Status.ObservedGeneration, u.Generation, status, reason, msg)
	}
	_, err = convert.User(&u, secret)
	switch {
	case errors.Is(err, convert.ErrInvalidSpec):
		ready(metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, err.Error())
		return ctrl.Result{}, reconcile.TerminalError(err)
	case errors.Is(err, convert.ErrSecretNotFound):
		ready(metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, err.Error())
	case err != nil:
		return ctrl.Result{}, err
	case u.Spec.PasswordSecretRef == nil:
		ready(metav1.ConditionTrue, v1alpha1.ReasonReady, fmt.Sprintf("user %q is served; without a password it cannot log in", u.Spec.Username))
	default:
		ready(metav1.ConditionTrue, v1alpha1.ReasonReady, fmt.Sprintf("user %q is served", u.Spec.Username))
	}
	return ctrl.Result{}, nil
}
