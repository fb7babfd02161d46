package controllers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/controllers/feed"
	"github.com/latchkey-dev/latchkey/controllers/policy"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// Event reasons besides the Ready condition's reasons.
const (
	EventSecretGenerated      = "SecretGenerated"
	EventSigningKeysGenerated = "SigningKeysGenerated"
	EventSigningKeysInvalid   = "SigningKeysInvalid"
	EventSigningKeysRestored  = "SigningKeysRestored"
	EventSigningKeyRotated    = "SigningKeyRotated"
	EventSigningKeyRetired    = "SigningKeyRetired"
	// EventSigningKeyRetireFailed: the retire-keys annotation is unreadable or names unknown keys.
	EventSigningKeyRetireFailed = "SigningKeyRetireFailed"
)

// Labels on the Secrets the controllers create.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	labelClient    = "oauth.latchkey.dev/client"
	managedBy      = "latchkey"
)

// clientSecretBytes is the entropy of a generated client secret.
const clientSecretBytes = 32

// oauthClientReconciler is the leader's OAuthClient controller: status, generated Secret, Events.
type oauthClientReconciler struct {
	client   client.Client // cached reads of OAuthClients, all writes
	secrets  client.Reader // the API reader (Secrets)
	scheme   *runtime.Scheme
	events   events.EventRecorder
	tokenURL string
	policies clientPolicies
}

func (r *oauthClientReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("oauthclient").
		// The rotate annotation changes no generation.
		For(&v1alpha1.OAuthClient{}, builder.WithPredicates(predicate.Or(specChanged(), annotationChanged(v1alpha1.AnnotationRotate)))).
		Watches(&v1alpha1.OAuthClient{}, handler.EnqueueRequestsFromMapFunc(clientIDPeers(r.client)),
			builder.WithPredicates(specChanged())).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(clientsForSecret(r.client))).
		// Workload identities (workload_identity_status.go): peers of a pair, clients of an issuer.
		Watches(&v1alpha1.OAuthClient{}, handler.EnqueueRequestsFromMapFunc(subjectPeers(r.client)),
			builder.WithPredicates(specChanged())).
		Watches(&v1alpha1.WorkloadIssuer{}, handler.EnqueueRequestsFromMapFunc(clientsOfIssuer(r.client)),
			builder.WithPredicates(specChanged())).
		// A policy change re-evaluates the clients it applies to, and their client-ID peers.
		Watches(&v1alpha1.OAuthClientPolicy{}, handler.EnqueueRequestsFromMapFunc(r.policies.clientsAndPeersOfPolicy(r.client)),
			builder.WithPredicates(specChanged())).
		// ScopesResolved (scope_resolution.go): the clients listing a Scope's name.
		Watches(&v1alpha1.Scope{}, clientsOfScope(r.client), builder.WithPredicates(specChanged())).
		Complete(retryConflicts(r))
}

func (r *oauthClientReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	var oc v1alpha1.OAuthClient
	if err := r.client.Get(ctx, req.NamespacedName, &oc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !oc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	base := oc.DeepCopy()
	defer func() {
		var written bool
		written, retErr = patchStatus(ctx, r.client, base, &oc, base.Status, oc.Status, retErr)
		if written { // an Event about a condition the API server does not hold would mislead
			recordReadyTransition(r.events, &oc, base.Status.Conditions, oc.Status.Conditions)
		}
	}()
	return r.reconcile(ctx, &oc)
}

func (r *oauthClientReconciler) reconcile(ctx context.Context, oc *v1alpha1.OAuthClient) (ctrl.Result, error) {
	id := convert.ClientID(oc)
	confidential := convert.UsesClientSecret(oc)
	secretName, key := convert.SecretRef(oc)
	oc.Status.ClientID = id
	oc.Status.SecretName = ""
	if confidential {
		oc.Status.SecretName = secretName
	}
	logger := log.FromContext(ctx).WithValues("clientID", id)
	// ScopesResolved (scope_resolution.go) does not gate Ready: set on every path.
	if err := r.scopesResolved(ctx, oc); err != nil {
		return ctrl.Result{}, err
	}

	if c, err := convert.Client(oc, nil); errors.Is(err, convert.ErrInvalidSpec) {
		setDecision(&oc.Status.Conditions, &oc.Status.ObservedGeneration, oc.Generation, feed.Client(c, err))
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	// A client that breaks a policy is not served; it holds no client ID either.
	violations, err := r.policies.violations(ctx, oc)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(violations) > 0 {
		setReady(&oc.Status.Conditions, &oc.Status.ObservedGeneration, oc.Generation,
			metav1.ConditionFalse, v1alpha1.ReasonPolicyViolation, policy.Message(violations))
		logger.Info("policy violation", "message", policy.Message(violations))
		return ctrl.Result{}, nil
	}

	winner, err := r.clientIDWinner(ctx, oc, id)
	if err != nil {
		return ctrl.Result{}, err
	}
	if winner != "" {
		conflict := feed.ClientIDConflict(id, winner)
		setReady(&oc.Status.Conditions, &oc.Status.ObservedGeneration, oc.Generation,
			metav1.ConditionFalse, conflict.Reason, conflict.Message)
		logger.Info("client ID conflict", "servedBy", winner)
		return ctrl.Result{}, nil
	}
	// IssuerNotFound, NamespaceNotAllowed, SubjectConflict (workload_identity_status.go).
	if done, err := r.workloadIdentityStatus(ctx, oc); done || err != nil {
		return ctrl.Result{}, err
	}

	var secret *corev1.Secret
	if confidential {
		if secret, err = getSecret(ctx, r.secrets, oc.Namespace, secretName); err != nil {
			return ctrl.Result{}, err
		}
		if foreignSecret(oc, secret) {
			return r.secretConflict(ctx, oc, secret)
		}
		if secret == nil && convert.SecretPolicy(oc) == v1alpha1.SecretPolicyGenerate {
			if secret, err = r.generateSecret(ctx, oc, id, secretName, key); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	// keyPolicy Generate: the key pair's Secret, its rotation and status.credentials (keypair.go).
	keyResult, ok, err := r.reconcileKeyPair(ctx, oc, id)
	if !ok {
		return keyResult, err
	}
	// Secret rotation (rotation.go): regeneration on demand, the rotation state, status.credentials.
	rot, err := r.rotate(ctx, oc, secret)
	if err != nil || rot.stop {
		return rot.result, err
	}
	secret = rot.secret
	in, err := clientInputs(ctx, r.secrets, oc)
	if err != nil {
		return ctrl.Result{}, err
	}
	in.Secret = secret
	c, err := convert.ClientWith(oc, in)
	d := feed.Client(c, err)
	if d.Reason == "" {
		return ctrl.Result{}, err
	}
	setDecision(&oc.Status.Conditions, &oc.Status.ObservedGeneration, oc.Generation, d)
	return soonest(keyResult, rot.result), nil
}

// clientIDWinner returns the source key of the OAuthClient that serves the client ID instead of
// oc, or "" when oc wins. The candidates are what the registries hold: valid, not being deleted.
func (r *oauthClientReconciler) clientIDWinner(ctx context.Context, oc *v1alpha1.OAuthClient, id string) (string, error) {
	var peers v1alpha1.OAuthClientList
	if err := r.client.List(ctx, &peers, client.MatchingFields{indexClientID: id}); err != nil {
		return "", fmt.Errorf("list OAuthClients with client ID %q: %w", id, err)
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
		if vs, err := r.policies.violations(ctx, p); err != nil {
			return "", err
		} else if len(vs) > 0 {
			continue // not served
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

// secretConflict handles a Generate client whose Secret name is taken by a Secret it does not
// control: Ready=False (SecretConflict), the Secret is neither used nor adopted nor overwritten.
// When that Secret is on its way out (being deleted, or controlled by an OAuthClient that is gone
// or being deleted, typically this client's previous incarnation waiting for the garbage
// collector), it requeues, so the client gets its own Secret once the old one is gone (the Secret
// watch usually gets there first).
func (r *oauthClientReconciler) secretConflict(ctx context.Context, oc *v1alpha1.OAuthClient, secret *corev1.Secret) (ctrl.Result, error) {
	gone, err := r.secretGoing(ctx, secret)
	if err != nil {
		return ctrl.Result{}, err
	}
	if gone {
		setReady(&oc.Status.Conditions, &oc.Status.ObservedGeneration, oc.Generation,
			metav1.ConditionFalse, v1alpha1.ReasonSecretConflict,
			fmt.Sprintf("Secret %s belongs to an OAuthClient that is gone or being deleted; waiting for it to be deleted to generate a new one", secret.Name))
		return ctrl.Result{RequeueAfter: secretGoneRequeue}, nil
	}
	owner := "no controller"
	if ref := metav1.GetControllerOf(secret); ref != nil {
		owner = fmt.Sprintf("controller %s %s", ref.Kind, ref.Name)
	}
	setReady(&oc.Status.Conditions, &oc.Status.ObservedGeneration, oc.Generation,
		metav1.ConditionFalse, v1alpha1.ReasonSecretConflict,
		fmt.Sprintf("Secret %s exists and is not controlled by this OAuthClient (%s); it is not used. "+
			"Delete it to have one generated, or set secretPolicy External to use it", secret.Name, owner))
	log.FromContext(ctx).Info("Secret name taken by a Secret the client does not control", "secret", secret.Name, "owner", owner)
	return ctrl.Result{}, nil
}

// secretGoneRequeue is how soon a client waiting for its predecessor's Secret to go looks again.
const secretGoneRequeue = 5 * time.Second

// secretGoing reports whether the Secret is being deleted or its controller is an OAuthClient that
// no longer exists (other UID) or is being deleted, so the garbage collector will remove it.
func (r *oauthClientReconciler) secretGoing(ctx context.Context, secret *corev1.Secret) (bool, error) {
	if !secret.DeletionTimestamp.IsZero() {
		return true, nil
	}
	ref := metav1.GetControllerOf(secret)
	if ref == nil || ref.Kind != "OAuthClient" || !strings.HasPrefix(ref.APIVersion, v1alpha1.GroupVersion.Group+"/") {
		return false, nil
	}
	var owner v1alpha1.OAuthClient
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: secret.Namespace, Name: ref.Name}, &owner); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("get owner of Secret %s: %w", secret.Name, err)
	}
	return owner.UID != ref.UID || !owner.DeletionTimestamp.IsZero(), nil
}

// generateSecret creates the client's Secret. It never overwrites: when the Secret appeared
// meanwhile, it returns that one.
func (r *oauthClientReconciler) generateSecret(ctx context.Context, oc *v1alpha1.OAuthClient, id, name, key string) (*corev1.Secret, error) {
	raw := make([]byte, clientSecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate client secret: %w", err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   oc.Namespace,
			Name:        name,
			Labels:      map[string]string{labelManagedBy: managedBy, labelClient: oc.Name},
			Annotations: rotatedFor(oc), // rotation.go
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			convert.GeneratedClientIDKey: []byte(id),
			key:                          []byte(base64.RawURLEncoding.EncodeToString(raw)),
		},
	}
	if r.tokenURL != "" {
		s.Data[convert.GeneratedTokenURLKey] = []byte(r.tokenURL)
	}
	if err := controllerutil.SetControllerReference(oc, s, r.scheme); err != nil {
		return nil, fmt.Errorf("own Secret %s: %w", name, err)
	}
	if err := r.client.Create(ctx, s); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Appeared meanwhile: use it only if it is ours (the next reconcile, triggered by its
			// watch event, reports a conflict otherwise).
			got, err := getSecret(ctx, r.secrets, oc.Namespace, name)
			if err != nil || foreignSecret(oc, got) {
				return nil, err
			}
			return got, nil
		}
		return nil, fmt.Errorf("create Secret %s/%s: %w", oc.Namespace, name, err)
	}
	log.FromContext(ctx).Info("generated client Secret", "secret", name)
	r.events.Eventf(oc, s, corev1.EventTypeNormal, EventSecretGenerated, "GenerateSecret",
		"Generated Secret %s with the client's credentials", name)
	return s, nil
}

// recordReadyTransition emits one Event when the Ready condition's status or reason changed. Call
// it only after the status was written.
func recordReadyTransition(rec events.EventRecorder, obj runtime.Object, before, after []metav1.Condition) {
	now := meta.FindStatusCondition(after, v1alpha1.ConditionReady)
	if now == nil {
		return
	}
	if old := meta.FindStatusCondition(before, v1alpha1.ConditionReady); old != nil &&
		old.Status == now.Status && old.Reason == now.Reason {
		return
	}
	typ := corev1.EventTypeNormal
	if now.Status != metav1.ConditionTrue {
		typ = corev1.EventTypeWarning
	}
	rec.Eventf(obj, nil, typ, now.Reason, "Reconcile", "%s", now.Message)
}

// setDecision sets the Ready condition to the feed policy's decision: True when it is Ready.
func setDecision(conds *[]metav1.Condition, observed *int64, generation int64, d feed.Decision) {
	status := metav1.ConditionFalse
	if d.Reason == v1alpha1.ReasonReady {
		status = metav1.ConditionTrue
	}
	setReady(conds, observed, generation, status, d.Reason, d.Message)
}

// setReady sets the Ready condition and the observed generation it describes.
func setReady(conds *[]metav1.Condition, observed *int64, generation int64, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: generation,
	})
	*observed = generation
}

// soonest is the result that requeues first: the earliest non-zero RequeueAfter.
func soonest(a, b ctrl.Result) ctrl.Result {
	if a.RequeueAfter == 0 || (b.RequeueAfter > 0 && b.RequeueAfter < a.RequeueAfter) {
		return b
	}
	return a
}
