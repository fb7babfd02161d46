package controllers

// The generated key pair of a private_key_jwt client (keyPolicy Generate): the leader keeps it
// in a Secret of the client's namespace, controlled by the OAuthClient, that the workload
// mounts. It holds the current private key (convert.KeyPrivateKeyKey, PKCS#8 PEM), the current
// key's ID (convert.KeyIDKey, the RFC 7638 thumbprint), the JWK set of the public keys
// (convert.KeySecretRef's key: the current key, then the previous one during its overlap), the
// previous key's ID and until when it is accepted (convert.KeyPreviousIDKey,
// convert.KeyPreviousUntilKey), when the current key was generated (convert.KeyCurrentSinceKey),
// and, like the generated client Secret, the client ID and token URL.
//
// Decisions:
//   - A rotation is asked for with the annotation v1alpha1.AnnotationRotate on the OAuthClient:
//     a value other than the one the Secret records (v1alpha1.AnnotationRotatedFor) makes a new
//     key pair. The Secret created first records the value present then, so an annotation
//     written before the Secret existed rotates nothing.
//   - The previous public key stays in the JWK set for spec.secretRotation.gracePeriod (none
//     when it is 0 or absent); a second rotation within that period drops the older one, so at
//     most two keys are accepted. Once the period is over the leader removes it (it requeues
//     then; every replica's registry stops accepting it on its own at that time). As for client
//     secrets (convert.RotationState), the previous key is accepted at most gracePeriod after the
//     current one was generated: lowering the grace period shortens a running overlap.
//   - The leader owns the Secret's content: a private key that is missing or unreadable is
//     replaced by a new key pair, the other entries are rewritten from the private key, and
//     entries it does not write are removed.
//   - Events and logs name the Secret and key IDs (thumbprints of public keys), never key
//     material.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
)

// EventKeyRotated: a generated key pair was replaced (on demand, or because its private key was
// unreadable).
const EventKeyRotated = "KeyRotated"

// Parameters of the generated key pairs.
const (
	keyAlgorithm   = string(jose.ES256)
	keyUse         = "sig"
	privateKeyType = "PRIVATE KEY" // PEM block of PKCS#8
)

// generatesKeyPair reports whether the client's key pair is the leader's to generate.
func generatesKeyPair(oc *v1alpha1.OAuthClient) bool {
	return oc.Spec.TokenEndpointAuthMethod == v1alpha1.AuthMethodPrivateKeyJWT &&
		oc.Spec.KeyPolicy == v1alpha1.KeyPolicyGenerate
}

// keyPair is what a generated key Secret holds: the current private key and its public JWK,
// and the previous public key while it is accepted.
type keyPair struct {
	private       *ecdsa.PrivateKey
	current       jose.JSONWebKey // public
	currentSince  time.Time
	previous      *jose.JSONWebKey // public; nil when none is accepted
	previousUntil time.Time
}

// newKeyPair generates an EC P-256 key pair, current since now.
func newKeyPair(now time.Time) (keyPair, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, fmt.Errorf("generate EC P-256 key: %w", err)
	}
	pub, err := publicJWK(&priv.PublicKey)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{private: priv, current: pub, currentSince: now.UTC().Truncate(time.Second)}, nil
}

// publicJWK returns the JWK of an ES256 public signing key; its key ID is the RFC 7638
// thumbprint (SHA-256, base64url).
func publicJWK(pub *ecdsa.PublicKey) (jose.JSONWebKey, error) {
	k := jose.JSONWebKey{Key: pub, Use: keyUse, Algorithm: keyAlgorithm}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("key thumbprint: %w", err)
	}
	k.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return k, nil
}

// encodePrivateKey returns the PKCS#8 PEM of a private key.
func encodePrivateKey(priv *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: privateKeyType, Bytes: der}), nil
}

// parsePrivateKey reads a PKCS#8 PEM EC P-256 private key. Errors never quote the input.
func parsePrivateKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != privateKeyType || len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("not one PEM block of type PRIVATE KEY")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a PKCS#8 private key")
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("not an EC P-256 private key")
	}
	return priv, nil
}

// parseKeyPair reads a generated key Secret's data, whose JWK set is under jwksKey. It fails
// when the private key is missing or unreadable. The previous key is kept when the data names
// one (previous-kid, previous-until) that the JWK set holds as a public key; whether it is
// still accepted is expire's business. currentSince is zero when unrecorded.
func parseKeyPair(data map[string][]byte, jwksKey string) (keyPair, error) {
	priv, err := parsePrivateKey(data[convert.KeyPrivateKeyKey])
	if err != nil {
		return keyPair{}, fmt.Errorf("%s: %w", convert.KeyPrivateKeyKey, err)
	}
	pub, err := publicJWK(&priv.PublicKey)
	if err != nil {
		return keyPair{}, err
	}
	kp := keyPair{private: priv, current: pub, currentSince: parseRFC3339(data[convert.KeyCurrentSinceKey])}
	kp.previous, kp.previousUntil = previousKey(data, jwksKey, pub.KeyID)
	return kp, nil
}

// previousKey returns the previous public key the data names (previous-kid, previous-until)
// and the JWK set under jwksKey holds, and its until; nil when there is none.
func previousKey(data map[string][]byte, jwksKey, currentID string) (*jose.JSONWebKey, time.Time) {
	id, until := string(data[convert.KeyPreviousIDKey]), parseRFC3339(data[convert.KeyPreviousUntilKey])
	if id == "" || id == currentID || until.IsZero() {
		return nil, time.Time{}
	}
	var set jose.JSONWebKeySet
	if json.Unmarshal(data[jwksKey], &set) != nil {
		return nil, time.Time{}
	}
	for _, k := range set.Key(id) {
		if _, ok := k.Key.(*ecdsa.PublicKey); ok && k.Valid() {
			return &k, until
		}
	}
	return nil, time.Time{}
}

func parseRFC3339(v []byte) time.Time {
	t, err := time.Parse(time.RFC3339, string(v))
	if err != nil {
		return time.Time{}
	}
	return t
}

// rotate returns a new key pair, current since now, that keeps kp's current public key as the
// previous one until now+grace; none when grace is not positive.
func (kp keyPair) rotate(now time.Time, grace time.Duration) (keyPair, error) {
	next, err := newKeyPair(now)
	if err != nil {
		return keyPair{}, err
	}
	if grace > 0 {
		prev := kp.current
		next.previous, next.previousUntil = &prev, next.currentSince.Add(grace)
	}
	return next, nil
}

// expire applies the grace period to the previous key: it is accepted at most grace after the
// current key was generated (a lowered grace period shortens a running overlap; 0 ends it), and
// dropped once now is not before its until; dropped reports that.
func (kp keyPair) expire(now time.Time, grace time.Duration) (_ keyPair, dropped bool) {
	if kp.previous == nil {
		return kp, false
	}
	if limit := kp.currentSince.Add(max(grace, 0)); !kp.currentSince.IsZero() && kp.previousUntil.After(limit) {
		kp.previousUntil = limit
	}
	if now.Before(kp.previousUntil) {
		return kp, false
	}
	kp.previous, kp.previousUntil = nil, time.Time{}
	return kp, true
}

// publicKeys is the JWK set of the accepted public keys: the current one first.
func (kp keyPair) publicKeys() jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{kp.current}}
	if kp.previous != nil {
		set.Keys = append(set.Keys, *kp.previous)
	}
	return set
}

// data returns the key pair's entries of the Secret, the JWK set under jwksKey.
func (kp keyPair) data(jwksKey string) (map[string][]byte, error) {
	priv, err := encodePrivateKey(kp.private)
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(kp.publicKeys())
	if err != nil {
		return nil, fmt.Errorf("marshal JWK set: %w", err)
	}
	d := map[string][]byte{
		convert.KeyPrivateKeyKey:   priv,
		convert.KeyIDKey:           []byte(kp.current.KeyID),
		convert.KeyCurrentSinceKey: []byte(kp.currentSince.UTC().Format(time.RFC3339)),
		jwksKey:                    jwks,
	}
	if kp.previous != nil {
		d[convert.KeyPreviousIDKey] = []byte(kp.previous.KeyID)
		d[convert.KeyPreviousUntilKey] = []byte(kp.previousUntil.UTC().Format(time.RFC3339))
	}
	return d, nil
}

// reconcileKeyPair keeps the key Secret of a client whose key pair the leader generates
// (generatesKeyPair): it creates it, rotates it on demand, drops the previous public key once
// its grace period is over, and writes status.credentials from it. The Result requeues when the
// previous key expires. ok is false when the reconcile stops here with the Result and error
// (the Secret's name is taken: Ready is SecretConflict; or a write lost to a concurrent one).
func (r *oauthClientReconciler) reconcileKeyPair(ctx context.Context, oc *v1alpha1.OAuthClient, id string) (_ ctrl.Result, ok bool, _ error) {
	if !generatesKeyPair(oc) {
		return ctrl.Result{}, true, nil
	}
	name, jwksKey, _ := convert.KeySecretRef(oc)
	s, err := getSecret(ctx, r.secrets, oc.Namespace, name)
	if err != nil {
		return ctrl.Result{}, false, err
	}
	if s != nil && !metav1.IsControlledBy(s, oc) {
		res, err := r.keySecretConflict(ctx, oc, s)
		return res, false, err
	}
	now := time.Now()
	var kp keyPair
	if s == nil {
		kp, err = r.createKeySecret(ctx, oc, id, name, jwksKey, now)
	} else {
		kp, err = r.updateKeySecret(ctx, oc, s, id, jwksKey, now)
	}
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		// A concurrent write: the next reconcile starts from the Secret as it is now.
		log.FromContext(ctx).V(1).Info("key Secret changed meanwhile; again", "secret", name)
		return ctrl.Result{RequeueAfter: conflictRequeue}, false, nil
	}
	if err != nil {
		return ctrl.Result{}, false, err
	}
	setKeyCredentials(oc, kp)
	var res ctrl.Result
	if kp.previous != nil {
		res.RequeueAfter = max(kp.previousUntil.Sub(now), time.Second)
	}
	return res, true, nil
}

// setKeyCredentials writes the key pair's times into status.credentials (the use times are not
// the leader's to write here).
func setKeyCredentials(oc *v1alpha1.OAuthClient, kp keyPair) {
	if oc.Status.Credentials == nil {
		oc.Status.Credentials = &v1alpha1.CredentialStatus{}
	}
	cs := oc.Status.Credentials
	cs.CurrentSince = &metav1.Time{Time: kp.currentSince}
	cs.PreviousAcceptedUntil = nil
	if kp.previous != nil {
		cs.PreviousAcceptedUntil = &metav1.Time{Time: kp.previousUntil}
	}
}

// keySecretData is the whole data of a key Secret: the key pair's entries, the client ID and
// the token URL.
func (r *oauthClientReconciler) keySecretData(kp keyPair, id, jwksKey string) (map[string][]byte, error) {
	d, err := kp.data(jwksKey)
	if err != nil {
		return nil, err
	}
	d[convert.GeneratedClientIDKey] = []byte(id)
	if r.tokenURL != "" {
		d[convert.GeneratedTokenURLKey] = []byte(r.tokenURL)
	}
	return d, nil
}

// createKeySecret creates the key Secret with a new key pair. It never overwrites: a Secret
// that appeared meanwhile is an AlreadyExists error.
func (r *oauthClientReconciler) createKeySecret(ctx context.Context, oc *v1alpha1.OAuthClient, id, name, jwksKey string, now time.Time) (keyPair, error) {
	kp, err := newKeyPair(now)
	if err != nil {
		return keyPair{}, err
	}
	data, err := r.keySecretData(kp, id, jwksKey)
	if err != nil {
		return keyPair{}, err
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   oc.Namespace,
			Name:        name,
			Labels:      map[string]string{labelManagedBy: managedBy, labelClient: oc.Name},
			Annotations: map[string]string{v1alpha1.AnnotationRotatedFor: oc.Annotations[v1alpha1.AnnotationRotate]},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	if err := controllerutil.SetControllerReference(oc, s, r.scheme); err != nil {
		return keyPair{}, fmt.Errorf("own Secret %s: %w", name, err)
	}
	if err := r.client.Create(ctx, s); err != nil {
		return keyPair{}, fmt.Errorf("create Secret %s/%s: %w", oc.Namespace, name, err)
	}
	log.FromContext(ctx).Info("generated client key pair", "secret", name, "kid", kp.current.KeyID)
	r.events.Eventf(oc, s, corev1.EventTypeNormal, EventSecretGenerated, "GenerateKeyPair",
		"Generated Secret %s with the client's key pair (key %s)", name, kp.current.KeyID)
	return kp, nil
}

// updateKeySecret brings the client's own key Secret s up to date: a rotation asked for, a
// previous key whose grace period is over, an unreadable private key, a changed client ID or
// token URL. It writes only when something changed, with s's resourceVersion (a concurrent
// write is a Conflict error).
func (r *oauthClientReconciler) updateKeySecret(ctx context.Context, oc *v1alpha1.OAuthClient, s *corev1.Secret, id, jwksKey string, now time.Time) (keyPair, error) {
	logger := log.FromContext(ctx).WithValues("secret", s.Name)
	want, handled := oc.Annotations[v1alpha1.AnnotationRotate], s.Annotations[v1alpha1.AnnotationRotatedFor]
	rotate := want != "" && want != handled
	kp, err := parseKeyPair(s.Data, jwksKey)
	var why string
	switch {
	case err != nil:
		// Only the Secret's readers could use the key, and they cannot: replace it.
		logger.Info("key Secret holds no usable private key; generating a new key pair", "problem", err.Error())
		why = fmt.Sprintf("its %s was missing or unreadable", convert.KeyPrivateKeyKey)
		if kp, err = newKeyPair(now); err != nil {
			return keyPair{}, err
		}
	case rotate:
		why = "asked for by a new value of " + v1alpha1.AnnotationRotate // the value is anyone's text: not repeated
		if kp, err = kp.rotate(now, convert.GracePeriod(oc)); err != nil {
			return keyPair{}, err
		}
	default:
		if kp.currentSince.IsZero() {
			kp.currentSince = s.CreationTimestamp.UTC()
		}
		var dropped bool
		if kp, dropped = kp.expire(now, convert.GracePeriod(oc)); dropped {
			logger.Info("previous client key no longer accepted", "kid", string(s.Data[convert.KeyPreviousIDKey]))
		}
	}
	data, err := r.keySecretData(kp, id, jwksKey)
	if err != nil {
		return keyPair{}, err
	}
	if maps.EqualFunc(data, s.Data, bytes.Equal) && !rotate {
		return kp, nil
	}
	s.Data = data
	if rotate {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[v1alpha1.AnnotationRotatedFor] = want
	}
	if err := r.client.Update(ctx, s); err != nil {
		return keyPair{}, fmt.Errorf("update Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	if why != "" {
		r.recordKeyRotation(ctx, oc, s, kp, why)
	}
	return kp, nil
}

// recordKeyRotation logs and emits the Event of a new key pair in s.
func (r *oauthClientReconciler) recordKeyRotation(ctx context.Context, oc *v1alpha1.OAuthClient, s *corev1.Secret, kp keyPair, why string) {
	previous := "the previous key is no longer accepted"
	if kp.previous != nil {
		previous = fmt.Sprintf("the previous key %s is accepted until %s", kp.previous.KeyID, kp.previousUntil.UTC().Format(time.RFC3339))
	}
	log.FromContext(ctx).Info("rotated client key pair", "secret", s.Name, "kid", kp.current.KeyID, "reason", why)
	r.events.Eventf(oc, s, corev1.EventTypeNormal, EventKeyRotated, "RotateKeyPair",
		"Generated a new key pair (key %s) in Secret %s, %s; %s", kp.current.KeyID, s.Name, why, previous)
}

// keySecretConflict handles a key Secret name taken by a Secret the client does not control, as
// secretConflict does a client Secret's: Ready=False (SecretConflict), the Secret is neither
// used nor adopted nor overwritten; when it is on its way out, the client waits for it to go.
func (r *oauthClientReconciler) keySecretConflict(ctx context.Context, oc *v1alpha1.OAuthClient, s *corev1.Secret) (ctrl.Result, error) {
	gone, err := r.secretGoing(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if gone {
		setReady(&oc.Status.Conditions, &oc.Status.ObservedGeneration, oc.Generation,
			metav1.ConditionFalse, v1alpha1.ReasonSecretConflict,
			fmt.Sprintf("Secret %s belongs to an OAuthClient that is gone or being deleted; waiting for it to be deleted to generate a new key pair", s.Name))
		return ctrl.Result{RequeueAfter: secretGoneRequeue}, nil
	}
	owner := "no controller"
	if ref := metav1.GetControllerOf(s); ref != nil {
		owner = fmt.Sprintf("controller %s %s", ref.Kind, ref.Name)
	}
	setReady(&oc.Status.Conditions, &oc.Status.ObservedGeneration, oc.Generation,
		metav1.ConditionFalse, v1alpha1.ReasonSecretConflict,
		fmt.Sprintf("Secret %s exists and is not controlled by this OAuthClient (%s); it is not used. "+
			"Delete it to have a key pair generated, or set keyPolicy External with jwksSecretRef to use its public keys", s.Name, owner))
	log.FromContext(ctx).Info("key Secret name taken by a Secret the client does not control", "secret", s.Name, "owner", owner)
	return ctrl.Result{}, nil
}
