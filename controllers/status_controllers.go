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
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/controllers/feed"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// scopeReconciler is the leader's Scope controller: it sets Ready.
type scopeReconciler struct {
	client client.Client
	events events.EventRecorder
}

func (r *scopeReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("scope").
		For(&v1alpha1.Scope{}, builder.WithPredicates(specChanged())).
		Watches(&v1alpha1.Scope{}, handler.EnqueueRequestsFromMapFunc(scopeNamePeers(r.client)),
			builder.WithPredicates(specChanged())).
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
	defer func() {
		var written bool
		written, retErr = patchStatus(ctx, r.client, base, &s, base.Status, s.Status, retErr)
		if written {
			recordReadyTransition(r.events, &s, base.Status.Conditions, s.Status.Conditions)
		}
	}()
	ready := func(status metav1.ConditionStatus, reason, msg string) {
		setReady(&s.Status.Conditions, &s.Status.ObservedGeneration, s.Generation, status, reason, msg)
	}
	_, sc, err := convert.Scope(&s)
	d := feed.Scope(sc, err)
	switch {
	case d.Reason == "":
		return ctrl.Result{}, err
	case !d.Put():
		setDecision(&s.Status.Conditions, &s.Status.ObservedGeneration, s.Generation, d)
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	winner, err := r.nameWinner(ctx, &s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if winner != "" {
		conflict := feed.ScopeNameConflict(s.Spec.Name, winner)
		ready(metav1.ConditionFalse, conflict.Reason, conflict.Message)
		log.FromContext(ctx).Info("scope name conflict", "scope", s.Spec.Name, "servedBy", winner)
		return ctrl.Result{}, nil
	}
	setDecision(&s.Status.Conditions, &s.Status.ObservedGeneration, s.Generation, d)
	return ctrl.Result{}, nil
}

// nameWinner returns the name of the Scope that serves s's scope name instead of s, or "" when s
// wins. The candidates are what the registries hold: valid, not being deleted.
func (r *scopeReconciler) nameWinner(ctx context.Context, s *v1alpha1.Scope) (string, error) {
	var peers v1alpha1.ScopeList
	if err := r.client.List(ctx, &peers, client.MatchingFields{indexScopeName: s.Spec.Name}); err != nil {
		return "", fmt.Errorf("list Scopes named %q: %w", s.Spec.Name, err)
	}
	winner, winnerCreated := s.Name, s.CreationTimestamp.Time
	for i := range peers.Items {
		p := &peers.Items[i]
		if p.Name == s.Name || !p.DeletionTimestamp.IsZero() {
			continue
		}
		if _, _, err := convert.Scope(p); err != nil {
			continue
		}
		if registry.Precedes(p.CreationTimestamp.Time, p.Name, winnerCreated, winner) {
			winner, winnerCreated = p.Name, p.CreationTimestamp.Time
		}
	}
	if winner == s.Name {
		return "", nil
	}
	return winner, nil
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
		Watches(&v1alpha1.User{}, handler.EnqueueRequestsFromMapFunc(usernamePeers(r.client)),
			builder.WithPredicates(specChanged())).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(usersAndPeersForSecret(r.client))).
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
		var written bool
		written, retErr = patchStatus(ctx, r.client, base, &u, base.Status, u.Status, retErr)
		if written {
			recordReadyTransition(r.events, &u, base.Status.Conditions, u.Status.Conditions)
		}
	}()
	secret, err := userSecret(ctx, r.secrets, &u)
	if err != nil {
		return ctrl.Result{}, err
	}
	ready := func(status metav1.ConditionStatus, reason, msg string) {
		setReady(&u.Status.Conditions, &u.Status.ObservedGeneration, u.Generation, status, reason, msg)
	}
	ru, err := convert.User(&u, secret)
	d := feed.User(ru, err)
	switch {
	case d.Reason == "":
		return ctrl.Result{}, err
	case !d.Put():
		setDecision(&u.Status.Conditions, &u.Status.ObservedGeneration, u.Generation, d)
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	// Served (with or without a password): does it hold its username?
	winner, err := r.usernameWinner(ctx, &u)
	if err != nil {
		return ctrl.Result{}, err
	}
	if winner != "" {
		conflict := feed.UsernameConflict(u.Spec.Username, winner)
		ready(metav1.ConditionFalse, conflict.Reason, conflict.Message)
		log.FromContext(ctx).Info("username conflict", "username", u.Spec.Username, "servedBy", winner)
		return ctrl.Result{}, nil
	}
	setDecision(&u.Status.Conditions, &u.Status.ObservedGeneration, u.Generation, d)
	return ctrl.Result{}, nil
}

// usernameWinner returns the name of the User that serves u's username instead of u, or "" when u
// wins. The candidates are what the registries hold: not being deleted and not invalid, which for
// a User with a password takes its Secret (read only when there are peers).
func (r *userReconciler) usernameWinner(ctx context.Context, u *v1alpha1.User) (string, error) {
	var peers v1alpha1.UserList
	if err := r.client.List(ctx, &peers, client.MatchingFields{indexUsername: u.Spec.Username}); err != nil {
		return "", fmt.Errorf("list Users with username %q: %w", u.Spec.Username, err)
	}
	winner, winnerCreated := u.Name, u.CreationTimestamp.Time
	for i := range peers.Items {
		p := &peers.Items[i]
		if p.Name == u.Name || !p.DeletionTimestamp.IsZero() ||
			!registry.Precedes(p.CreationTimestamp.Time, p.Name, winnerCreated, winner) {
			continue
		}
		secret, err := userSecret(ctx, r.secrets, p)
		if err != nil {
			return "", err
		}
		if _, err := convert.User(p, secret); err != nil && !errors.Is(err, convert.ErrSecretNotFound) {
			continue
		}
		winner, winnerCreated = p.Name, p.CreationTimestamp.Time
	}
	if winner == u.Name {
		return "", nil
	}
	return winner, nil
}
