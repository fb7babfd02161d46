package controllers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/controllers/feed"
	"github.com/latchkey-dev/latchkey/controllers/policy"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// registryWorkers is how many objects of one kind a registry controller takes in at once: each
// reconcile mostly waits for its Secret's GET, and start-up takes every object in.
const registryWorkers = 16

// everyReplica is the option of the controllers that run on every replica, leader or not.
// Reconciles of one object never overlap (controller-runtime's queue); the registry publishes
// concurrent writes together.
func everyReplica() controller.Options {
	return controller.Options{NeedLeaderElection: ptr.To(false), MaxConcurrentReconciles: registryWorkers}
}

// clientRegistryReconciler keeps one replica's registry in step with the OAuthClients.
type clientRegistryReconciler struct {
	cache    client.Reader // the manager's cache (OAuthClients)
	secrets  client.Reader // the API reader (Secrets)
	registry ClientRegistry
	ready    *Readiness
	policies clientPolicies
	// locks serialise the reconciles of one client (striped by key).
	locks [64]sync.Mutex
}

// policyRegistryReconciler applies an OAuthClientPolicy's change on one replica: it takes in
// again every OAuthClient the policy applies to, then records the policy's generation as served
// (the policy's propagation status).
type policyRegistryReconciler struct {
	cache   client.Reader
	clients *clientRegistryReconciler
	ready   *Readiness
}

func (r *policyRegistryReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("oauthclientpolicy-registry").
		For(&v1alpha1.OAuthClientPolicy{}, builder.WithPredicates(specChanged())).
		WithOptions(everyReplica()).
		Complete(r)
}

func (r *policyRegistryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.ready.takeIn(ctx, r.cache, kindOAuthClientPolicy, req.NamespacedName, &v1alpha1.OAuthClientPolicy{}, nil, func(client.Reader) (ctrl.Result, error) {
		// Deleted or not, the policy's clients are those of its namespace (or all, for the default).
		clients, err := r.clients.policies.listClientsOf(ctx, r.cache, req.NamespacedName)
		if err != nil {
			return ctrl.Result{}, err
		}
		for _, c := range clients {
			if _, err := r.clients.Reconcile(ctx, c); err != nil {
				return ctrl.Result{}, fmt.Errorf("OAuthClient %s: %w", c.NamespacedName, err)
			}
		}
		return ctrl.Result{}, nil
	})
}

func (r *clientRegistryReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("oauthclient-registry").
		// Labels too: the registered label (v1alpha1.LabelRegistered) is served (the consent page's
		// unverified note) and changes no generation.
		For(&v1alpha1.OAuthClient{}, builder.WithPredicates(predicate.Or(specChanged(), predicate.LabelChangedPredicate{}))).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(clientsForSecret(r.cache))).
		// A policy change re-evaluates the clients it applies to: policyRegistryReconciler.
		WithOptions(everyReplica()).
		Complete(r)
}

// Reconcile takes the client in. The policy registry controller calls it too; one client's
// reconciles never overlap, so the last one reads the newest cache and its decision stands.
func (r *clientRegistryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(req.String()))
	mu := &r.locks[h.Sum32()%uint32(len(r.locks))]
	mu.Lock()
	defer mu.Unlock()
	return r.ready.takeIn(ctx, r.cache, kindOAuthClient, req.NamespacedName, &v1alpha1.OAuthClient{}, r.secrets, func(secrets client.Reader) (ctrl.Result, error) {
		return r.reconcile(ctx, req, secrets)
	})
}

// reconcile puts or withdraws the client, reading its Secrets with secrets.
func (r *clientRegistryReconciler) reconcile(ctx context.Context, req ctrl.Request, secrets client.Reader) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	source := convert.SourceKey(req.Namespace, req.Name)
	var oc v1alpha1.OAuthClient
	if err := r.cache.Get(ctx, req.NamespacedName, &oc); err != nil {
		if apierrors.IsNotFound(err) {
			r.registry.DeleteClient(source)
			logger.V(1).Info("client removed from registry")
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !oc.DeletionTimestamp.IsZero() {
		r.registry.DeleteClient(source)
		logger.V(1).Info("client being deleted, removed from registry")
		return ctrl.Result{}, nil
	}
	// A client that breaks a policy is not served (the leader reports PolicyViolation).
	violations, err := r.policies.violations(ctx, &oc)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(violations) > 0 {
		r.registry.DeleteClient(source)
		logger.Info("not served", "clientID", convert.ClientID(&oc), "reason", v1alpha1.ReasonPolicyViolation, "message", policy.Message(violations))
		return ctrl.Result{}, nil
	}
	in, err := clientInputs(ctx, secrets, &oc)
	if err != nil {
		return ctrl.Result{}, err
	}
	c, err := convert.ClientWith(&oc, in)
	d := feed.Client(c, err)
	if d.Put() {
		r.registry.PutClient(c)
	} else {
		r.registry.DeleteClient(source)
	}
	logDecision(logger, d, "clientID", convert.ClientID(&oc))
	// A previous secret or key stops being accepted by time, not by a change: convert again then.
	return ctrl.Result{RequeueAfter: untilNextExpiry(&c, in)}, nil
}

// clientInputs reads the Secrets an OAuthClient's conversion needs (convert.ClientInputs). A
// Secret that a Generate client would use but does not control is never used: someone else's
// Secret may hold a value known to whoever created it.
func clientInputs(ctx context.Context, secrets client.Reader, oc *v1alpha1.OAuthClient) (convert.ClientInputs, error) {
	in := convert.ClientInputs{Now: time.Now()}
	logger := log.FromContext(ctx)
	if convert.UsesClientSecret(oc) {
		name, _ := convert.SecretRef(oc)
		s, err := getSecret(ctx, secrets, oc.Namespace, name)
		if err != nil {
			return in, err
		}
		if foreignSecret(oc, s) {
			logger.Info("client served without a secret: its Secret is not controlled by it", "clientID", convert.ClientID(oc), "secret", name)
			s = nil
		}
		in.Secret = s
	}
	if oc.Spec.SecretRotation != nil {
		s, err := getSecret(ctx, secrets, oc.Namespace, convert.RotationSecretName(oc))
		if err != nil {
			return in, err
		}
		if s != nil && !metav1.IsControlledBy(s, oc) {
			s = nil // only the leader's own record counts
		}
		in.Rotation = s
	}
	if name, _, ok := convert.KeySecretRef(oc); ok {
		s, err := getSecret(ctx, secrets, oc.Namespace, name)
		if err != nil {
			return in, err
		}
		if s != nil && oc.Spec.KeyPolicy == v1alpha1.KeyPolicyGenerate && !metav1.IsControlledBy(s, oc) {
			logger.Info("client served without keys: its key Secret is not controlled by it", "clientID", convert.ClientID(oc), "secret", name)
			s = nil
		}
		in.Keys = s
	}
	return in, nil
}

// untilNextExpiry is how long until a credential the client accepts now stops being accepted
// (a previous secret's or generated key's grace period), at least a second; 0 when none will.
func untilNextExpiry(c *registry.Client, in convert.ClientInputs) time.Duration {
	var next time.Duration
	for _, until := range []time.Time{c.PreviousSecretUntil, convert.PreviousKeyUntil(in.Keys)} {
		if until.IsZero() || !in.Now.Before(until) {
			continue
		}
		if d := max(until.Sub(in.Now), time.Second); next == 0 || d < next {
			next = d
		}
	}
	return next
}

// logDecision logs what a registry controller did with a resource. The leader reports the same
// Decision in the Ready condition (and an Event); a problem is logged at Info level by every
// replica, an error convert does not classify as an error.
func logDecision(logger logr.Logger, d feed.Decision, keysAndValues ...any) {
	keysAndValues = append(keysAndValues, "action", d.Action.String(), "reason", d.Reason, "message", d.Message)
	switch {
	case d.Reason == "":
		logger.Error(errors.New(d.Message), "not served", keysAndValues...)
	case d.Action == feed.Withdraw:
		logger.Info("not served", keysAndValues...)
	case d.Action == feed.ServeWithoutCredentials:
		logger.Info("served without credentials", keysAndValues...)
	default:
		logger.V(1).Info("served", keysAndValues...)
	}
}

// scopeRegistryReconciler keeps one replica's registry in step with the Scopes.
type scopeRegistryReconciler struct {
	cache    client.Reader
	registry ScopeRegistry
	ready    *Readiness
}

func (r *scopeRegistryReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("scope-registry").
		For(&v1alpha1.Scope{}, builder.WithPredicates(specChanged())).
		WithOptions(everyReplica()).
		Complete(r)
}

func (r *scopeRegistryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.ready.takeIn(ctx, r.cache, kindScope, req.NamespacedName, &v1alpha1.Scope{}, nil, func(client.Reader) (ctrl.Result, error) {
		return r.reconcile(ctx, req)
	})
}

func (r *scopeRegistryReconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var s v1alpha1.Scope
	if err := r.cache.Get(ctx, req.NamespacedName, &s); err != nil {
		if apierrors.IsNotFound(err) {
			r.registry.DeleteScope(req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !s.DeletionTimestamp.IsZero() {
		r.registry.DeleteScope(req.Name)
		return ctrl.Result{}, nil
	}
	source, sc, err := convert.Scope(&s)
	d := feed.Scope(sc, err)
	if d.Put() {
		r.registry.PutScope(source, sc)
	} else {
		r.registry.DeleteScope(source)
	}
	logDecision(log.FromContext(ctx), d, "scope", s.Spec.Name)
	return ctrl.Result{}, nil
}

// userRegistryReconciler keeps one replica's registry in step with the Users.
type userRegistryReconciler struct {
	cache    client.Reader
	secrets  client.Reader
	registry UserRegistry
	ready    *Readiness
}

func (r *userRegistryReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("user-registry").
		For(&v1alpha1.User{}, builder.WithPredicates(specChanged())).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(usersForSecret(r.cache))).
		WithOptions(everyReplica()).
		Complete(r)
}

func (r *userRegistryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.ready.takeIn(ctx, r.cache, kindUser, req.NamespacedName, &v1alpha1.User{}, r.secrets, func(secrets client.Reader) (ctrl.Result, error) {
		return r.reconcile(ctx, req, secrets)
	})
}

// reconcile puts or withdraws the user, reading its password Secret with secrets.
func (r *userRegistryReconciler) reconcile(ctx context.Context, req ctrl.Request, secrets client.Reader) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	var u v1alpha1.User
	if err := r.cache.Get(ctx, req.NamespacedName, &u); err != nil {
		if apierrors.IsNotFound(err) {
			r.registry.DeleteUser(req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !u.DeletionTimestamp.IsZero() {
		r.registry.DeleteUser(req.Name)
		return ctrl.Result{}, nil
	}
	secret, err := userSecret(ctx, secrets, &u)
	if err != nil {
		return ctrl.Result{}, err
	}
	ru, err := convert.User(&u, secret)
	err = explainUnwatchedUser(r.secrets, &u, err)
	d := feed.User(ru, err)
	if d.Put() {
		r.registry.PutUser(ru)
	} else {
		r.registry.DeleteUser(req.Name)
	}
	logDecision(logger, d, "username", u.Spec.Username)
	return ctrl.Result{}, nil
}

// foreignSecret reports whether secret, found at the name a Generate client's Secret would have,
// is not controlled by the client: someone else's Secret is never used (its value may be known to
// whoever created it) nor adopted. External clients use whatever Secret they name.
func foreignSecret(oc *v1alpha1.OAuthClient, secret *corev1.Secret) bool {
	return secret != nil && convert.SecretPolicy(oc) == v1alpha1.SecretPolicyGenerate && !metav1.IsControlledBy(secret, oc)
}

// userSecret reads the User's password Secret; nil when it has none or it does not exist.
func userSecret(ctx context.Context, r client.Reader, u *v1alpha1.User) (*corev1.Secret, error) {
	ns, name, _, ok := convert.PasswordSecretRef(u)
	if !ok || ns == "" || name == "" {
		return nil, nil
	}
	return getSecret(ctx, r, ns, name)
}
