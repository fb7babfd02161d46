package controllers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
)

// EventSecretRotated: a client's secret changed (an External Secret's value, a Generate
// client's secret regenerated on demand) and the leader recorded it; the message says until when
// the previous secret is accepted.
const EventSecretRotated = "SecretRotated"

// rotationOutcome is what the rotation step (rotate) tells the OAuthClient reconcile.
type rotationOutcome struct {
	// secret is the client secret's Secret, regenerated when that was asked for.
	secret *corev1.Secret
	// stop: Ready is set (the rotation state's name is taken); reconcile returns result.
	stop bool
	// result requeues when the previous secret stops being accepted.
	result ctrl.Result
}

// rotate is the leader's part of client secret rotation, called for every client reconcile
// serves (a client without a client secret only has a stale state emptied), with the client
// secret's Secret (nil when missing) that reconcile has read and checked: it regenerates a
// Generate client's secret when the annotation v1alpha1.AnnotationRotate asks for it, keeps
// the rotation state Secret (convert.RotationSecretName: hashes and times, never a secret) of a
// client with spec.secretRotation by convert.RotationState.Next, writes
// status.credentials.currentSince and previousAcceptedUntil and emits EventSecretRotated. A
// state Secret the client does not control is never used nor written (Ready=False,
// SecretConflict). Without spec.secretRotation the state is emptied, so that turning it on
// again later starts from the secret of that time and never revives an older one.
func (r *oauthClientReconciler) rotate(ctx context.Context, oc *v1alpha1.OAuthClient, secret *corev1.Secret) (rotationOutcome, error) {
	out := rotationOutcome{secret: secret}
	if !convert.UsesClientSecret(oc) || oc.Spec.SecretRotation == nil {
		if convert.UsesClientSecret(oc) {
			oc.Status.Credentials = nil
			s, regenerated, err := r.regenerateOnDemand(ctx, oc, secret)
			if err != nil {
				return out, err
			}
			if regenerated {
				out.secret = s
				r.events.Eventf(oc, s, corev1.EventTypeNormal, EventSecretRotated, "RotateSecret",
					"Generated a new client secret in Secret %s (annotation %s); the previous secret is no longer accepted", s.Name, v1alpha1.AnnotationRotate)
			}
		}
		return out, r.emptyRotationState(ctx, oc)
	}

	name := convert.RotationSecretName(oc)
	state, err := getSecret(ctx, r.secrets, oc.Namespace, name)
	if err != nil {
		return out, err
	}
	if state != nil && !metav1.IsControlledBy(state, oc) {
		out.stop = true
		out.result, err = r.rotationConflict(ctx, oc, state)
		return out, err
	}
	var st convert.RotationState
	if state != nil {
		st = convert.ParseRotationState(state.Data)
	}
	now, grace := time.Now(), convert.GracePeriod(oc)
	// The secret before an on-demand regeneration first, so that it becomes the previous one.
	hash, ok := convert.ClientSecretHash(oc, secret)
	next, rotated := st.Next(hash, ok, now, grace)
	s, regenerated, err := r.regenerateOnDemand(ctx, oc, secret)
	if err != nil {
		return out, err
	}
	if regenerated {
		out.secret = s
		hash, ok = convert.ClientSecretHash(oc, s)
		var again bool
		next, again = next.Next(hash, ok, now, grace)
		rotated = rotated || again
	}
	if err := r.writeRotationState(ctx, oc, state, next); err != nil {
		return out, err
	}
	setCredentialTimes(oc, next)
	if rotated || regenerated {
		secretName, _ := convert.SecretRef(oc)
		what := fmt.Sprintf("The client secret in Secret %s changed", secretName)
		if regenerated {
			what = fmt.Sprintf("Generated a new client secret in Secret %s (annotation %s)", secretName, v1alpha1.AnnotationRotate)
		}
		until := "the previous secret is no longer accepted"
		if next.HasPrevious {
			until = "the previous secret is accepted until " + next.PreviousUntil.Format(time.RFC3339)
		}
		r.events.Eventf(oc, nil, corev1.EventTypeNormal, EventSecretRotated, "RotateSecret", "%s; %s", what, until)
		log.FromContext(ctx).Info("client secret rotated", "previousAcceptedUntil", next.PreviousUntil)
	}
	if next.HasPrevious {
		out.result.RequeueAfter = max(next.PreviousUntil.Sub(now), time.Second)
	}
	return out, nil
}

// setCredentialTimes writes the state's times into status.credentials, keeping the last-used
// times (credentialStatusWriter's).
func setCredentialTimes(oc *v1alpha1.OAuthClient, st convert.RotationState) {
	c := oc.Status.Credentials
	if c == nil {
		c = &v1alpha1.CredentialStatus{}
	}
	c.CurrentSince, c.PreviousAcceptedUntil = nil, nil
	if st.HasCurrent {
		c.CurrentSince = &metav1.Time{Time: st.CurrentSince}
	}
	if st.HasPrevious {
		c.PreviousAcceptedUntil = &metav1.Time{Time: st.PreviousUntil}
	}
	if *c == (v1alpha1.CredentialStatus{}) {
		c = nil
	}
	oc.Status.Credentials = c
}

// regenerateOnDemand writes a new random client secret into a Generate client's Secret when
// the client's v1alpha1.AnnotationRotate differs from the value the Secret records
// (v1alpha1.AnnotationRotatedFor), and records it. The update carries the Secret's
// resourceVersion: a concurrent change fails it and the reconcile is retried.
func (r *oauthClientReconciler) regenerateOnDemand(ctx context.Context, oc *v1alpha1.OAuthClient, secret *corev1.Secret) (*corev1.Secret, bool, error) {
	want := oc.Annotations[v1alpha1.AnnotationRotate]
	if want == "" || secret == nil || convert.SecretPolicy(oc) != v1alpha1.SecretPolicyGenerate ||
		!metav1.IsControlledBy(secret, oc) || secret.Annotations[v1alpha1.AnnotationRotatedFor] == want {
		return secret, false, nil
	}
	raw := make([]byte, clientSecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, false, fmt.Errorf("generate client secret: %w", err)
	}
	_, key := convert.SecretRef(oc)
	s := secret.DeepCopy()
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[key] = []byte(base64.RawURLEncoding.EncodeToString(raw))
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[v1alpha1.AnnotationRotatedFor] = want
	if err := r.client.Update(ctx, s); err != nil {
		return nil, false, fmt.Errorf("regenerate the client secret in Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	log.FromContext(ctx).Info("regenerated client secret on demand", "secret", s.Name)
	return s, true, nil
}

// rotatedFor is the annotation of a Secret generated for oc: the rotation it already answers,
// so that a client created with v1alpha1.AnnotationRotate is not rotated once more at once.
func rotatedFor(oc *v1alpha1.OAuthClient) map[string]string {
	if v := oc.Annotations[v1alpha1.AnnotationRotate]; v != "" {
		return map[string]string{v1alpha1.AnnotationRotatedFor: v}
	}
	return nil
}

// writeRotationState creates the state Secret (controlled by oc) or updates it when its data
// differs from st's. An update carries the resourceVersion read: a concurrent change fails it.
func (r *oauthClientReconciler) writeRotationState(ctx context.Context, oc *v1alpha1.OAuthClient, existing *corev1.Secret, st convert.RotationState) error {
	data := st.Data()
	if existing != nil {
		if maps.EqualFunc(existing.Data, data, func(a, b []byte) bool { return string(a) == string(b) }) {
			return nil
		}
		s := existing.DeepCopy()
		s.Data = data
		if err := r.client.Update(ctx, s); err != nil {
			return fmt.Errorf("update Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		return nil
	}
	if len(data) == 0 {
		return nil
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: oc.Namespace,
			Name:      convert.RotationSecretName(oc),
			Labels:    map[string]string{labelManagedBy: managedBy, labelClient: oc.Name},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	if err := controllerutil.SetControllerReference(oc, s, r.scheme); err != nil {
		return fmt.Errorf("own Secret %s: %w", s.Name, err)
	}
	if err := r.client.Create(ctx, s); err != nil {
		// AlreadyExists included: the next reconcile (its watch event) reads it, ours or not.
		return fmt.Errorf("create Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	log.FromContext(ctx).Info("created client secret rotation state", "secret", s.Name)
	return nil
}

// emptyRotationState empties the client's state Secret if there is one it controls. Whether it
// exists is read from the cache of Secret metadata, so clients that never rotated cost nothing.
func (r *oauthClientReconciler) emptyRotationState(ctx context.Context, oc *v1alpha1.OAuthClient) error {
	key := types.NamespacedName{Namespace: oc.Namespace, Name: convert.RotationSecretName(oc)}
	meta := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}
	if err := r.client.Get(ctx, key, meta); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("get Secret %s metadata: %w", key, err)
	}
	if !metav1.IsControlledBy(meta, oc) {
		return nil
	}
	state, err := getSecret(ctx, r.secrets, key.Namespace, key.Name)
	if err != nil || state == nil || !metav1.IsControlledBy(state, oc) {
		return err
	}
	return r.writeRotationState(ctx, oc, state, convert.RotationState{})
}

// rotationConflict handles a client whose rotation state Secret name is taken by a Secret it
// does not control, as secretConflict does for a generated client secret: Ready=False
// (SecretConflict), the Secret is neither used nor written, and the client is served without a
// previous secret. A Secret on its way out (typically this client's previous incarnation's,
// awaiting the garbage collector) is waited for.
func (r *oauthClientReconciler) rotationConflict(ctx context.Context, oc *v1alpha1.OAuthClient, state *corev1.Secret) (ctrl.Result, error) {
	gone, err := r.secretGoing(ctx, state)
	if err != nil {
		return ctrl.Result{}, err
	}
	if gone {
		setReady(&oc.Status.Conditions, &oc.Status.ObservedGeneration, oc.Generation,
			metav1.ConditionFalse, v1alpha1.ReasonSecretConflict,
			fmt.Sprintf("Secret %s (the secret rotation state) belongs to an OAuthClient that is gone or being deleted; waiting for it to be deleted", state.Name))
		return ctrl.Result{RequeueAfter: secretGoneRequeue}, nil
	}
	owner := "no controller"
	if ref := metav1.GetControllerOf(state); ref != nil {
		owner = fmt.Sprintf("controller %s %s", ref.Kind, ref.Name)
	}
	setReady(&oc.Status.Conditions, &oc.Status.ObservedGeneration, oc.Generation,
		metav1.ConditionFalse, v1alpha1.ReasonSecretConflict,
		fmt.Sprintf("Secret %s exists and is not controlled by this OAuthClient (%s); it is not used as the secret rotation state, "+
			"so a previous secret is not accepted after a change. Delete it to have one created", state.Name, owner))
	log.FromContext(ctx).Info("rotation state Secret name taken by a Secret the client does not control", "secret", state.Name, "owner", owner)
	return ctrl.Result{}, nil
}
