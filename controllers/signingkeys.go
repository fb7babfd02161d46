package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/latchkey-dev/latchkey/server/keys"
)

// keyEnsurer is the leader's signing-key controller: it creates the key Secret when missing and
// adds a key for every algorithm without one. It runs once at start and on every change of the
// Secret. A deleted Secret is recreated from the keys this replica has loaded (so every token
// already issued keeps verifying); new keys are generated only when nothing was ever loaded.
type keyEnsurer struct {
	client     client.Client // writes
	reader     client.Reader // the API reader (the Secret)
	secret     types.NamespacedName
	algorithms []string
	keys       KeyLoader // this replica's keyring; nil: always generate
	events     events.EventRecorder
	now        func() time.Time
	// rotation is applied on every reconcile; Algorithms empty: algorithms.
	rotation keys.RotationPolicy
	// metrics counts rotations; nil: none.
	metrics KeyMetrics
}

// Annotations of the key Secret.
const (
	// AnnotationRotateKeys forces a rotation when set to a value not handled yet (e.g. a
	// timestamp): kubectl annotate secret latchkey-signing-keys oauth.latchkey.dev/rotate-keys=$(date +%s) --overwrite
	AnnotationRotateKeys = "oauth.latchkey.dev/rotate-keys"
	// AnnotationRotateKeysHandled records the AnnotationRotateKeys value last handled.
	AnnotationRotateKeysHandled = "oauth.latchkey.dev/rotate-keys-handled"
	// AnnotationRetireKeys retires the named keys at once when set to a value not handled yet:
	// a comma-separated list of key IDs (keys.ParseKeyIDs), for keys suspected leaked. Each
	// leaves the JWKS and stops signing as soon as a replica reloads the Secret, and a new key of
	// its algorithm signs at once where it was signing (keys.RetireNow). Unknown key IDs and an
	// unreadable value get a Warning Event and change nothing; keys already retired are skipped.
	//	kubectl annotate secret latchkey-signing-keys oauth.latchkey.dev/retire-keys=RS256-0a1b... --overwrite
	AnnotationRetireKeys = "oauth.latchkey.dev/retire-keys"
	// AnnotationRetireKeysHandled records the AnnotationRetireKeys value last handled.
	AnnotationRetireKeysHandled = "oauth.latchkey.dev/retire-keys-handled"
	// AnnotationKeyStates shows every key's schedule and state (JSON), written by the leader.
	AnnotationKeyStates = "oauth.latchkey.dev/key-states"
)

// maxKeyRequeue bounds the wait for the next scheduled key change, so a clock jump or a missed
// event is caught up soon.
const maxKeyRequeue = time.Hour

// conflictRequeue is how soon a write that lost to a concurrent one is retried from the newer
// Secret.
const conflictRequeue = 200 * time.Millisecond

func (r *keyEnsurer) setup(mgr ctrl.Manager) error {
	req := reconcile.Request{NamespacedName: r.secret}
	return ctrl.NewControllerManagedBy(mgr).
		Named("signingkeys").
		WatchesMetadata(&corev1.Secret{}, &handler.EnqueueRequestForObject{}, builder.WithPredicates(isObject(r.secret))).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(req) // the Secret may not exist, so no event would start the first reconcile
			return nil
		})).
		Complete(r)
}

func (r *keyEnsurer) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx).WithValues("secret", r.secret)
	s, err := getSecret(ctx, r.reader, r.secret.Namespace, r.secret.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if s == nil {
		created, err := r.create(ctx)
		if err != nil || created != nil {
			return ctrl.Result{}, err
		}
		// Someone else created it first: read theirs and only add what is missing.
		if s, err = getSecret(ctx, r.reader, r.secret.Namespace, r.secret.Name); err != nil {
			return ctrl.Result{}, err
		}
		if s == nil {
			return ctrl.Result{}, fmt.Errorf("Secret %s exists and does not", r.secret)
		}
	}
	var set *keys.Set
	data, ok := s.Data[KeySetKey]
	if ok {
		if set, err = keys.Parse(data); err != nil {
			logger.Error(err, "signing key Secret is unreadable; leaving it untouched")
			r.events.Eventf(s, nil, corev1.EventTypeWarning, EventSigningKeysInvalid, "LoadSigningKeys",
				"Secret %s key %s is not a valid key set; fix or delete it", r.secret, KeySetKey)
			return ctrl.Result{}, reconcile.TerminalError(err)
		}
	} else {
		set = r.loaded() // the key set was removed from the Secret: put the loaded keys back
	}
	now := r.now()
	ensured, err := set.Ensure(r.algorithms, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Retirement first: a key suspected leaked is cut before anything else is scheduled.
	retiring, retireIDs, retireInvalid := retireRequest(s)
	var retirement keys.Retirement
	if len(retireIDs) > 0 {
		if retirement, err = keys.RetireNow(set, retireIDs, now); err != nil {
			return ctrl.Result{}, err
		}
	}
	policy := r.policy()
	before := keyIDSet(set)
	var forced string
	if v := s.Annotations[AnnotationRotateKeys]; v != "" && v != s.Annotations[AnnotationRotateKeysHandled] {
		if _, err := keys.RotateNow(set, now, policy); err != nil {
			return ctrl.Result{}, err
		}
		forced = v
	}
	rotated, err := keys.Rotate(set, now, policy)
	if err != nil {
		return ctrl.Result{}, err
	}
	states, err := keyStates(set, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	requeue := ctrl.Result{RequeueAfter: maxKeyRequeue}
	if next := keys.NextChange(set, now, policy); !next.IsZero() {
		requeue.RequeueAfter = min(next.Sub(now)+time.Second, maxKeyRequeue)
	}
	dataChanged := ensured || rotated || forced != "" || len(retirement.Retired) > 0 || !ok
	if !dataChanged && retiring == "" && s.Annotations[AnnotationKeyStates] == states {
		return requeue, nil
	}
	if dataChanged {
		if data, err = set.Marshal(); err != nil {
			return ctrl.Result{}, err
		}
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[KeySetKey] = data
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[AnnotationKeyStates] = states
	if forced != "" {
		s.Annotations[AnnotationRotateKeysHandled] = forced
	}
	if retiring != "" {
		s.Annotations[AnnotationRetireKeysHandled] = retiring
	}
	// Update carries the resourceVersion read above: a concurrent writer (another manager that
	// believes it leads) makes it conflict and the retry starts from the newer Secret, so two
	// writers never leave different key sets.
	if err := r.client.Update(ctx, s); err != nil {
		if apierrors.IsConflict(err) {
			logger.Info("key Secret changed while rotating; retrying from the newer one")
			return ctrl.Result{RequeueAfter: conflictRequeue}, nil
		}
		return ctrl.Result{}, fmt.Errorf("update Secret %s: %w", r.secret, err)
	}
	if ensured || !ok {
		logger.Info("added signing keys for missing algorithms", "keys", len(set.Keys))
		r.events.Eventf(s, nil, corev1.EventTypeNormal, EventSigningKeysGenerated, "GenerateSigningKeys",
			"Added signing keys; the set now has %d keys", len(set.Keys))
	}
	r.recordRetirement(ctx, s, retiring, retirement, retireInvalid)
	if forced != "" || rotated {
		added, dropped := diffKeyIDs(before, keyIDSet(set))
		why := "scheduled"
		if forced != "" {
			why = fmt.Sprintf("forced (%s=%s)", AnnotationRotateKeys, forced)
		}
		logger.Info("rotated signing keys", "reason", why, "added", added, "dropped", dropped, "keys", len(set.Keys))
		r.events.Eventf(s, nil, corev1.EventTypeNormal, EventSigningKeyRotated, "RotateSigningKeys",
			"Rotation %s: added %v, dropped %v; the set now has %d keys (see annotation %s)",
			why, added, dropped, len(set.Keys), AnnotationKeyStates)
		if r.metrics != nil {
			r.metrics.KeyRotated()
		}
	}
	return requeue, nil
}

// retireRequest returns an AnnotationRetireKeys value not handled yet (empty: none) and its key
// IDs, or why it is unreadable (the value still counts as handled: it is reported, not retried).
func retireRequest(s *corev1.Secret) (value string, ids []string, invalid error) {
	value = s.Annotations[AnnotationRetireKeys]
	if value == "" || value == s.Annotations[AnnotationRetireKeysHandled] {
		return "", nil, nil
	}
	ids, invalid = keys.ParseKeyIDs(value)
	return value, ids, invalid
}

// recordRetirement reports a handled AnnotationRetireKeys value once the Secret is written: an
// Event and a count per retired key, a Warning Event for an unreadable value or unknown key IDs.
func (r *keyEnsurer) recordRetirement(ctx context.Context, s *corev1.Secret, value string, ret keys.Retirement, invalid error) {
	if value == "" {
		return
	}
	logger := log.FromContext(ctx).WithValues("secret", r.secret, AnnotationRetireKeys, value)
	if invalid != nil {
		logger.Info("cannot retire signing keys: the annotation is not a list of key IDs", "error", invalid.Error())
		r.events.Eventf(s, nil, corev1.EventTypeWarning, EventSigningKeyRetireFailed, "RetireSigningKeys",
			"%s=%q is not a comma-separated list of key IDs (%v); nothing retired", AnnotationRetireKeys, value, invalid)
		return
	}
	if len(ret.Retired) > 0 {
		logger.Info("retired signing keys at once", "retired", ret.Retired, "added", ret.Added, "alreadyRetired", ret.Already)
		r.events.Eventf(s, nil, corev1.EventTypeNormal, EventSigningKeyRetired, "RetireSigningKeys",
			"Retired %v at once (%s): out of the JWKS and no longer signing, the tokens they signed no longer verify; added %v to sign now (see annotation %s)",
			ret.Retired, AnnotationRetireKeys, ret.Added, AnnotationKeyStates)
		if r.metrics != nil {
			for range ret.Retired {
				r.metrics.KeyRetired()
			}
		}
	} else if len(ret.Already) > 0 {
		logger.Info("signing keys already retired; nothing to do", "alreadyRetired", ret.Already)
	}
	if len(ret.Unknown) > 0 {
		logger.Info("cannot retire unknown signing keys", "unknown", ret.Unknown)
		r.events.Eventf(s, nil, corev1.EventTypeWarning, EventSigningKeyRetireFailed, "RetireSigningKeys",
			"%s names key IDs not in the set: %v; they changed nothing (see annotation %s for the key IDs)",
			AnnotationRetireKeys, ret.Unknown, AnnotationKeyStates)
	}
}

func (r *keyEnsurer) policy() keys.RotationPolicy {
	p := r.rotation
	if len(p.Algorithms) == 0 {
		p.Algorithms = r.algorithms
	}
	return p
}

// keyState is one entry of the AnnotationKeyStates annotation.
type keyState struct {
	ID         string        `json:"kid"`
	Algorithm  string        `json:"alg"`
	State      keys.KeyState `json:"state"`
	Created    time.Time     `json:"created"`
	ActiveFrom time.Time     `json:"activeFrom"`
	RetireAt   *time.Time    `json:"retireAt,omitempty"`
	// RetiredEarly: retired at once (AnnotationRetireKeys), not on schedule.
	RetiredEarly bool `json:"retiredEarly,omitempty"`
}

func keyStates(set *keys.Set, now time.Time) (string, error) {
	out := make([]keyState, 0, len(set.Keys))
	for _, k := range set.Keys {
		ks := keyState{ID: k.ID, Algorithm: k.Algorithm, State: set.State(k, now), Created: k.Created, ActiveFrom: k.ActiveFrom, RetiredEarly: k.RetiredEarly}
		if !k.RetireAt.IsZero() {
			t := k.RetireAt
			ks.RetireAt = &t
		}
		out = append(out, ks)
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func keyIDSet(set *keys.Set) map[string]bool {
	out := make(map[string]bool, len(set.Keys))
	for _, k := range set.Keys {
		out[k.ID] = true
	}
	return out
}

func diffKeyIDs(before, after map[string]bool) (added, dropped []string) {
	for id := range after {
		if !before[id] {
			added = append(added, id)
		}
	}
	for id := range before {
		if !after[id] {
			dropped = append(dropped, id)
		}
	}
	slices.Sort(added)
	slices.Sort(dropped)
	return added, dropped
}

// create creates the key Secret, from the loaded set when there is one (keys for missing
// algorithms added), otherwise with a new set; it returns nil, nil when the Secret already exists
// (another manager won the race).
func (r *keyEnsurer) create(ctx context.Context) (*corev1.Secret, error) {
	set := r.loaded()
	restored := len(set.Keys) > 0
	var err error
	if restored {
		_, err = set.Ensure(r.algorithms, r.now())
	} else {
		set, err = keys.Generate(r.algorithms, r.now())
	}
	if err != nil {
		return nil, err
	}
	data, err := set.Marshal()
	if err != nil {
		return nil, err
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: r.secret.Namespace, Name: r.secret.Name,
			Labels: map[string]string{labelManagedBy: managedBy},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{KeySetKey: data},
	}
	if err := r.client.Create(ctx, s); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("create Secret %s: %w", r.secret, err)
	}
	if restored {
		log.FromContext(ctx).Info("recreated the missing signing key Secret from the loaded keys", "secret", r.secret, "keys", len(set.Keys))
		r.events.Eventf(s, nil, corev1.EventTypeWarning, EventSigningKeysRestored, "RestoreSigningKeys",
			"Secret was missing; recreated it from the %d keys the server had loaded", len(set.Keys))
		return s, nil
	}
	log.FromContext(ctx).Info("created signing key Secret", "secret", r.secret, "keys", len(set.Keys))
	r.events.Eventf(s, nil, corev1.EventTypeNormal, EventSigningKeysGenerated, "GenerateSigningKeys",
		"Generated %d signing keys", len(set.Keys))
	return s, nil
}

// loaded returns a copy of the set this replica loaded, or an empty set.
func (r *keyEnsurer) loaded() *keys.Set {
	if r.keys != nil {
		if set := r.keys.Set(); set != nil {
			return set
		}
	}
	return &keys.Set{}
}

// keyLoader runs on every replica: it loads the key Secret into the keyring whenever it changes.
type keyLoader struct {
	reader client.Reader // the API reader (the Secret)
	secret types.NamespacedName
	keys   KeyLoader

	mu     sync.Mutex
	loaded string // resourceVersion of the Secret last loaded
	digest [sha256.Size]byte
}

func (r *keyLoader) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("signingkeys-loader").
		WatchesMetadata(&corev1.Secret{}, &handler.EnqueueRequestForObject{}, builder.WithPredicates(isObject(r.secret))).
		WithOptions(everyReplica()).
		Complete(r)
}

func (r *keyLoader) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx).WithValues("secret", r.secret)
	s, err := getSecret(ctx, r.reader, r.secret.Namespace, r.secret.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if s == nil {
		logger.Info("signing key Secret is gone; keeping the loaded keys until the leader recreates it")
		return ctrl.Result{}, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.ResourceVersion == r.loaded {
		return ctrl.Result{}, nil
	}
	data, ok := s.Data[KeySetKey]
	if !ok {
		logger.Info("signing key Secret has no key set yet", "key", KeySetKey)
		return ctrl.Result{}, nil
	}
	// Only annotations changed (the leader's summaries): nothing to load.
	if digest := sha256.Sum256(data); r.loaded != "" && digest == r.digest {
		r.loaded = s.ResourceVersion
		return ctrl.Result{}, nil
	}
	if err := r.keys.LoadBytes(data); err != nil {
		logger.Error(err, "signing key Secret is unreadable; keeping the loaded keys")
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	r.loaded, r.digest = s.ResourceVersion, sha256.Sum256(data)
	logger.Info("loaded signing keys", "resourceVersion", s.ResourceVersion)
	return ctrl.Result{}, nil
}
