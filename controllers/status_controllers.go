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
		Complete(retryConflicts(r))
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
	_, sc, err := convert.Scope(&s)
	return setNamedReady(ctx, &s.Status.Conditions, &s.Status.ObservedGeneration, s.Generation, feed.Scope(sc, err), err,
		func(ctx context.Context) (string, error) { return r.nameWinner(ctx, &s) },
		func(winner string) feed.Conflict { return feed.ScopeNameConflict(s.Spec.Name, winner) })
}

// setNamedReady sets the Ready condition of a Scope or User from the feed policy's decision d
// about it (err is convert's) and returns what Reconcile returns: an invalid resource is
// terminal; a served one that does not hold its name (winner names the resource that does, or
// is "") gets the conflict.
func setNamedReady(ctx context.Context, conds *[]metav1.Condition, observed *int64, generation int64, d feed.Decision, err error,
	winner func(context.Context) (string, error), conflict func(winner string) feed.Conflict) (ctrl.Result, error) {
	switch {
	case d.Reason == "":
		return ctrl.Result{}, err
	case !d.Put():
		setDecision(conds, observed, generation, d)
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	// Served (for a User with or without a password): does it hold its name?
	w, err := winner(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if w != "" {
		c := conflict(w)
		setReady(conds, observed, generation, metav1.ConditionFalse, c.Reason, c.Message)
		log.FromContext(ctx).Info("name conflict", "reason", c.Reason, "servedBy", w)
		return ctrl.Result{}, nil
	}
	setDecision(conds, observed, generation, d)
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
		Complete(retryConflicts(r))
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
	ru, err := convert.User(&u, secret)
	err = explainUnwatchedUser(r.secrets, &u, err)
	return setNamedReady(ctx, &u.Status.Conditions, &u.Status.ObservedGeneration, u.Generation, feed.User(ru, err), err,
		func(ctx context.Context) (string, error) { return r.usernameWinner(ctx, &u) },
		func(winner string) feed.Conflict { return feed.UsernameConflict(u.Spec.Username, winner) })
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
