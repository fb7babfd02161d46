package controllers

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/latchkey-dev/latchkey/server/keys"
)

var keySecretKey = types.NamespacedName{Namespace: systemNamespace, Name: DefaultKeySecretName}

// keySet reads and parses the key Secret.
func keySet(t assert.TestingT, key types.NamespacedName) (*keys.Set, *corev1.Secret) {
	var s corev1.Secret
	if !assert.NoError(t, suite.client.Get(context.Background(), key, &s)) {
		return nil, nil
	}
	set, err := keys.Parse(s.Data[KeySetKey])
	if !assert.NoError(t, err) {
		return nil, nil
	}
	return set, &s
}

func algorithms(set *keys.Set) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Algorithm)
	}
	slices.Sort(out)
	return out
}

// waitReplicasLoad waits until every replica publishes the JWKS of the key Secret's set and
// returns that set.
func waitReplicasLoad(t *testing.T) *keys.Set {
	t.Helper()
	var set *keys.Set
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		set, _ = keySet(c, keySecretKey)
		if set == nil {
			return
		}
		want := keys.NewKeyring()
		if !assert.NoError(c, want.Load(set)) {
			return
		}
		for i, r := range suite.replicas {
			assert.JSONEq(c, string(want.JWKS()), string(r.keyring.JWKS()), "replica %d", i)
		}
	}, waitFor, tick)
	return set
}

func TestSigningKeysSharedByReplicas(t *testing.T) {
	ctx := t.Context()
	set := waitReplicasLoad(t)
	original, err := set.Marshal()
	require.NoError(t, err)
	t.Cleanup(func() { // the other tests sign with every algorithm: put the original keys back
		require.EventuallyWithT(t, func(c *assert.CollectT) { // again when the leader wrote meanwhile
			_, s := keySet(c, keySecretKey)
			if s != nil {
				s.Data[KeySetKey] = original
				assert.NoError(c, suite.client.Update(context.Background(), s))
			}
		}, waitFor, tick)
		waitReplicasLoad(t)
	})
	assert.Equal(t, []string{"ES256", "EdDSA", "RS256"}, algorithms(set),
		"one key per algorithm: the second manager added none")
	var list corev1.SecretList
	require.NoError(t, suite.client.List(ctx, &list, client.InNamespace(systemNamespace),
		client.MatchingLabels{labelManagedBy: managedBy}))
	assert.Len(t, list.Items, 1, "one key Secret")
	for _, r := range suite.replicas {
		assert.Equal(t, []string{"RS256", "ES256", "EdDSA"}, r.keyring.Algorithms())
	}
	assert.Equal(t, string(suite.replicas[0].keyring.JWKS()), string(suite.replicas[1].keyring.JWKS()))

	// A set missing algorithms gets keys added; the existing key is kept.
	only, err := keys.Generate([]string{keys.RS256}, time.Now())
	require.NoError(t, err)
	data, err := only.Marshal()
	require.NoError(t, err)
	_, s := keySet(t, keySecretKey)
	s.Data[KeySetKey] = data
	require.NoError(t, suite.client.Update(ctx, s))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, _ := keySet(c, keySecretKey)
		if got != nil {
			assert.Equal(c, []string{"ES256", "EdDSA", "RS256"}, algorithms(got))
			assert.True(c, slices.ContainsFunc(got.Keys, func(k keys.Key) bool { return k.ID == only.Keys[0].ID }))
		}
	}, waitFor, tick)
	completed := waitReplicasLoad(t)
	assert.True(t, slices.ContainsFunc(completed.Keys, func(k keys.Key) bool { return k.ID == only.Keys[0].ID }))
	for _, k := range completed.Keys {
		if k.ID != only.Keys[0].ID {
			assert.True(t, k.ActiveFrom.After(time.Now()), "%s was added to a published set: it signs later", k.Algorithm)
		}
	}
	for i, r := range suite.replicas {
		assert.Equal(t, []string{keys.RS256}, r.keyring.Algorithms(), "replica %d: only the published key signs yet", i)
	}

	// A deleted key Secret is recreated from the loaded keys, so issued tokens keep verifying.
	_, s = keySet(t, keySecretKey)
	require.NoError(t, suite.client.Delete(ctx, s))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, sec := keySet(c, keySecretKey)
		if got != nil {
			assert.NotEqual(c, s.UID, sec.UID, "recreated")
			assert.Equal(c, keyIDs(completed), keyIDs(got), "the same keys")
		}
	}, waitFor, tick)
	recreated := waitReplicasLoad(t)
	assert.Equal(t, keyIDs(completed), keyIDs(recreated))
	waitEvent(t, systemNamespace, DefaultKeySecretName, EventSigningKeysRestored)
}

func keyIDs(set *keys.Set) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.ID)
	}
	slices.Sort(out)
	return out
}

// The leader writes back what it loaded when the key Secret is gone; it generates keys only when
// it never loaded any.
func TestMissingKeySecretIsRecreatedFromTheLoadedKeys(t *testing.T) {
	loadedSet, err := keys.Generate([]string{keys.RS256, keys.ES256}, time.Now())
	require.NoError(t, err)
	loaded := keys.NewKeyring()
	require.NoError(t, loaded.Load(loadedSet))
	tests := []struct {
		name     string
		keyring  *keys.Keyring
		wantKeep []string // key IDs the recreated set must hold
		wantAlgs []string
	}{
		{"nothing loaded: a new set is generated", keys.NewKeyring(), nil, []string{"ES256", "EdDSA", "RS256"}},
		{"the loaded set is written back, missing algorithms added", loaded, keyIDs(loadedSet), []string{"ES256", "EdDSA", "RS256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := types.NamespacedName{Namespace: newNamespace(t), Name: "keys"}
			r := &keyEnsurer{client: suite.client, reader: suite.client, secret: key, algorithms: keys.SupportedAlgorithms(),
				keys: tt.keyring, events: events.NewFakeRecorder(10), now: time.Now}
			_, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: key})
			require.NoError(t, err)
			set, _ := keySet(t, key)
			require.NotNil(t, set)
			assert.Equal(t, tt.wantAlgs, algorithms(set))
			assert.Subset(t, keyIDs(set), tt.wantKeep)
		})
	}
}

// Two managers that both believe they lead (a leader handover) must not create two key sets or
// overwrite each other's: Create is the arbiter, the loser reads the winner's set.
func TestKeySecretCreationIsRaceSafe(t *testing.T) {
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: "race-keys"}
	c, err := client.New(suite.cfg, client.Options{Scheme: suite.scheme})
	require.NoError(t, err)

	var wg sync.WaitGroup
	for range 4 {
		r := &keyEnsurer{client: c, reader: c, secret: key, algorithms: keys.SupportedAlgorithms(),
			events: events.NewFakeRecorder(10), now: time.Now}
		wg.Go(func() {
			for {
				_, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: key})
				if err == nil || t.Context().Err() != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	set, _ := keySet(t, key)
	require.NotNil(t, set)
	assert.Equal(t, []string{"ES256", "EdDSA", "RS256"}, algorithms(set), "exactly one set of keys survived")
}

// setKeySecretAnnotation sets an annotation on the key Secret, retrying on conflicts with the
// leader's writes.
func setKeySecretAnnotation(t *testing.T, key types.NamespacedName, name, value string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var s corev1.Secret
		if !assert.NoError(c, suite.client.Get(context.Background(), key, &s)) {
			return
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[name] = value
		assert.NoError(c, suite.client.Update(context.Background(), &s))
	}, waitFor, tick)
}

// keepKeySet waits until every replica loaded the key Secret and returns its set, which it puts
// back when the test ends: the other tests expect one active key per algorithm.
func keepKeySet(t *testing.T) *keys.Set {
	t.Helper()
	set := waitReplicasLoad(t)
	original, err := set.Marshal()
	require.NoError(t, err)
	t.Cleanup(func() {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			_, s := keySet(c, keySecretKey)
			if s != nil {
				s.Data[KeySetKey] = original
				assert.NoError(c, suite.client.Update(context.Background(), s))
			}
		}, waitFor, tick)
		waitReplicasLoad(t)
	})
	return set
}

func TestForcedRotationPublishesNewKeysAndKeepsOldTokensVerifiable(t *testing.T) {
	set := keepKeySet(t)
	sg, err := suite.replicas[0].keyring.Signer(keys.ES256)
	require.NoError(t, err)
	oldToken, err := sg.Sign(keys.TypeAccessToken, []byte(`{"sub":"before-rotation"}`))
	require.NoError(t, err)

	value := strconv.FormatInt(time.Now().UnixNano(), 10)
	setKeySecretAnnotation(t, keySecretKey, AnnotationRotateKeys, value)
	var rotated *keys.Set
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var s *corev1.Secret
		rotated, s = keySet(c, keySecretKey)
		if rotated == nil {
			return
		}
		assert.Equal(c, value, s.Annotations[AnnotationRotateKeysHandled], "handled once")
		assert.Len(c, rotated.Keys, 2*len(set.Keys), "one new key per algorithm")
		var states []keyState
		if assert.NoError(c, json.Unmarshal([]byte(s.Annotations[AnnotationKeyStates]), &states)) {
			assert.Len(c, states, len(rotated.Keys))
			pending := 0
			for _, st := range states {
				if st.State == keys.StatePending {
					pending++
				}
			}
			assert.Equal(c, len(set.Keys), pending, "the new keys are published before they sign")
		}
	}, waitFor, tick)
	assert.Subset(t, keyIDs(rotated), keyIDs(set), "the old keys stay published")
	waitEvent(t, systemNamespace, DefaultKeySecretName, EventSigningKeyRotated)

	// Both replicas publish the new keys; the old token still verifies everywhere.
	loaded := waitReplicasLoad(t)
	assert.Equal(t, keyIDs(rotated), keyIDs(loaded))
	for i, r := range suite.replicas {
		sg, err := r.keyring.Signer(keys.ES256)
		require.NoError(t, err)
		assert.True(t, slices.Contains(keyIDs(set), sg.KeyID), "replica %d: the old key signs until the new one is cached everywhere", i)
		obj, err := jose.ParseSignedCompact(oldToken, []jose.SignatureAlgorithm{jose.ES256})
		require.NoError(t, err)
		published := r.keyring.PublicKeys()
		found := published.Key(obj.Signatures[0].Protected.KeyID)
		require.Len(t, found, 1, "replica %d", i)
		_, err = obj.Verify(found[0].Key)
		assert.NoError(t, err, "replica %d: a token signed before the rotation verifies", i)
	}

	// The handled value does not rotate again.
	setKeySecretAnnotation(t, keySecretKey, "example.com/unrelated", value)
	time.Sleep(time.Second)
	again, _ := keySet(t, keySecretKey)
	assert.Equal(t, keyIDs(rotated), keyIDs(again))
}

// Two managers that both believe they lead handle the same forced rotation: the write that loses
// (resourceVersion conflict) is retried from the winner's Secret, which already handled it, so
// the set rotates once and the winner's keys are not overwritten.
func TestConcurrentKeyWriteIsRetriedNotClobbered(t *testing.T) {
	key := types.NamespacedName{Namespace: newNamespace(t), Name: "keys"}
	plain := &keyEnsurer{client: suite.client, reader: suite.client, secret: key, algorithms: keys.SupportedAlgorithms(),
		events: events.NewFakeRecorder(10), now: time.Now}
	_, err := plain.Reconcile(t.Context(), reconcile.Request{NamespacedName: key})
	require.NoError(t, err)
	initial, _ := keySet(t, key)
	require.NotNil(t, initial)
	setKeySecretAnnotation(t, key, AnnotationRotateKeys, "1")

	var winner *keys.Set
	interfered := false
	cw, err := client.NewWithWatch(suite.cfg, client.Options{Scheme: suite.scheme})
	require.NoError(t, err)
	c := interceptor.NewClient(cw, interceptor.Funcs{
		Update: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if !interfered { // the other leader writes its rotation first
				interfered = true
				var s corev1.Secret
				require.NoError(t, cl.Get(ctx, key, &s))
				set, err := keys.Parse(s.Data[KeySetKey])
				require.NoError(t, err)
				_, err = keys.RotateNow(set, time.Now(), keys.RotationPolicy{})
				require.NoError(t, err)
				winner = set
				data, err := set.Marshal()
				require.NoError(t, err)
				s.Data[KeySetKey] = data
				s.Annotations[AnnotationRotateKeysHandled] = "1"
				require.NoError(t, cl.Update(ctx, &s))
			}
			return cl.Update(ctx, obj, opts...)
		},
	})
	r := &keyEnsurer{client: c, reader: suite.client, secret: key, algorithms: keys.SupportedAlgorithms(),
		events: events.NewFakeRecorder(10), now: time.Now}
	res, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: key})
	require.NoError(t, err, "a conflict is requeued, not an error")
	assert.Equal(t, conflictRequeue, res.RequeueAfter)
	got, _ := keySet(t, key)
	require.NotNil(t, got)
	assert.Equal(t, keyIDs(winner), keyIDs(got), "the winner's set is kept")

	_, err = r.Reconcile(t.Context(), reconcile.Request{NamespacedName: key})
	require.NoError(t, err)
	got, s := keySet(t, key)
	require.NotNil(t, got)
	assert.Equal(t, keyIDs(winner), keyIDs(got), "the retry found the rotation handled: rotated once")
	assert.Len(t, got.Keys, 2*len(initial.Keys))
	assert.Contains(t, s.Annotations[AnnotationKeyStates], winner.Keys[len(winner.Keys)-1].ID)
}

// A forced rotation on a fake clock: the old key signs until the new one is cached everywhere,
// then is retired after the longest token lifetime, and the reconciler requeues for each step.
func TestForcedRotationRetiresTheOldKeysOnSchedule(t *testing.T) {
	key := types.NamespacedName{Namespace: newNamespace(t), Name: "keys"}
	clock := time.Now().UTC().Truncate(time.Second)
	r := &keyEnsurer{client: suite.client, reader: suite.client, secret: key, algorithms: []string{keys.ES256},
		events: events.NewFakeRecorder(10), now: func() time.Time { return clock },
		rotation: keys.RotationPolicy{MaxTokenLifetime: time.Hour}}
	reconcileAt := func(at time.Time) ctrl.Result {
		t.Helper()
		clock = at
		res, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: key})
		require.NoError(t, err)
		return res
	}
	start := clock
	reconcileAt(start) // creates the Secret
	assert.Equal(t, maxKeyRequeue, reconcileAt(start).RequeueAfter, "nothing scheduled: the cap")
	old, _ := keySet(t, key)
	setKeySecretAnnotation(t, key, AnnotationRotateKeys, "now")
	assert.Equal(t, keys.PublishLead+time.Second, reconcileAt(start).RequeueAfter, "requeued for when the new key signs")
	set, _ := keySet(t, key)
	require.Len(t, set.Keys, 2)
	res := reconcileAt(start.Add(keys.PublishLead))
	assert.Equal(t, maxKeyRequeue, res.RequeueAfter, "retirement is more than the cap away")
	set, s := keySet(t, key)
	require.Len(t, set.Keys, 2)
	retireAt := start.Add(keys.PublishLead + time.Hour + keys.ClockSkew)
	assert.Equal(t, retireAt, set.Keys[0].RetireAt.UTC())
	assert.Contains(t, s.Annotations[AnnotationKeyStates], `"state":"retiring"`)
	reconcileAt(retireAt)
	set, _ = keySet(t, key)
	require.Len(t, set.Keys, 1)
	assert.NotEqual(t, old.Keys[0].ID, set.Keys[0].ID, "the old key is gone")
}

// keyStatesOf parses the AnnotationKeyStates annotation of the Secret, by key ID.
func keyStatesOf(t assert.TestingT, s *corev1.Secret) map[string]keyState {
	var states []keyState
	if !assert.NoError(t, json.Unmarshal([]byte(s.Annotations[AnnotationKeyStates]), &states)) {
		return nil
	}
	out := map[string]keyState{}
	for _, st := range states {
		out[st.ID] = st
	}
	return out
}

// Retiring the signing key of one algorithm takes it out of every replica's JWKS and signers as
// soon as the replicas reload the Secret, with no publish lead: a new key signs at once and its
// tokens verify; the retired key's tokens no longer do.
func TestRetiringASigningKeyCutsItOnEveryReplicaAtOnce(t *testing.T) {
	set := keepKeySet(t)
	sg, err := suite.replicas[0].keyring.Signer(keys.ES256)
	require.NoError(t, err)
	leaked := sg.KeyID
	rs, err := suite.replicas[0].keyring.Signer(keys.RS256)
	require.NoError(t, err)

	setKeySecretAnnotation(t, keySecretKey, AnnotationRetireKeys, leaked)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, s := keySet(c, keySecretKey)
		if got == nil {
			return
		}
		assert.Equal(c, leaked, s.Annotations[AnnotationRetireKeysHandled], "handled once")
		assert.Len(c, got.Keys, len(set.Keys)+1, "one new key, the retired one kept for the record")
		st := keyStatesOf(c, s)[leaked]
		assert.Equal(c, keys.StateRetired, st.State)
		assert.True(c, st.RetiredEarly)
	}, waitFor, tick)
	waitEvent(t, systemNamespace, DefaultKeySecretName, EventSigningKeyRetired)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i, r := range suite.replicas {
			var jwks jose.JSONWebKeySet
			if !assert.NoError(c, json.Unmarshal(r.keyring.JWKS(), &jwks)) {
				continue
			}
			assert.Empty(c, jwks.Key(leaked), "replica %d: the retired key left the JWKS", i)
			public := r.keyring.PublicKeys()
			assert.Empty(c, public.Key(leaked), "replica %d: tokens of the retired key no longer verify", i)
			es, err := r.keyring.Signer(keys.ES256)
			if !assert.NoError(c, err, "replica %d signs ES256 at once", i) {
				continue
			}
			assert.NotEqual(c, leaked, es.KeyID, "replica %d", i)
			tok, err := es.Sign(keys.TypeAccessToken, []byte(`{"sub":"after-retirement"}`))
			if !assert.NoError(c, err) {
				continue
			}
			obj, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
			if !assert.NoError(c, err) {
				continue
			}
			if found := jwks.Key(es.KeyID); assert.Len(c, found, 1, "replica %d publishes the new key", i) {
				_, err = obj.Verify(found[0].Key)
				assert.NoError(c, err, "replica %d: a token of the new key verifies", i)
			}
			other, err := r.keyring.Signer(keys.RS256)
			if assert.NoError(c, err) {
				assert.Equal(c, rs.KeyID, other.KeyID, "replica %d: the other algorithms keep their keys", i)
			}
		}
	}, waitFor, tick)
}

// The annotation's other outcomes, on the leader's reconciler alone: unknown key IDs and an
// unreadable value are reported and change no key; a key already retired is not retired or
// counted again; every value is handled once.
func TestRetireKeysAnnotationOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		value       func(set *keys.Set) string // the annotation value, from the set before
		wantEvents  []string                   // type and reason of each Event, in order
		wantRetired int                        // keys counted as retired
		wantChanged bool                       // the key set changed
	}{
		{"the only key of its algorithm is retired and replaced", func(set *keys.Set) string { return set.Keys[0].ID },
			[]string{"Normal " + EventSigningKeyRetired}, 1, true},
		{"an unknown key ID gets a Warning Event and changes nothing", func(*keys.Set) string { return "ES256-unknown" },
			[]string{"Warning " + EventSigningKeyRetireFailed}, 0, false},
		{"an unreadable value gets a Warning Event and changes nothing", func(set *keys.Set) string { return set.Keys[0].ID + ",,x" },
			[]string{"Warning " + EventSigningKeyRetireFailed}, 0, false},
		{"known keys are retired and unknown ones reported", func(set *keys.Set) string { return "nope, " + set.Keys[0].ID },
			[]string{"Normal " + EventSigningKeyRetired, "Warning " + EventSigningKeyRetireFailed}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := types.NamespacedName{Namespace: newNamespace(t), Name: "keys"}
			counter := &rotationCounter{}
			rec := events.NewFakeRecorder(10)
			r := &keyEnsurer{client: suite.client, reader: suite.client, secret: key, algorithms: []string{keys.ES256},
				events: rec, now: time.Now, metrics: counter}
			reconcileOnce := func() {
				t.Helper()
				_, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: key})
				require.NoError(t, err)
			}
			reconcileOnce() // creates the Secret
			require.Len(t, rec.Events, 1, "creating the Secret is one Event")
			<-rec.Events
			before, _ := keySet(t, key)
			require.NotNil(t, before)
			value := tt.value(before)
			setKeySecretAnnotation(t, key, AnnotationRetireKeys, value)
			reconcileOnce()
			reconcileOnce() // handled: nothing more
			var got []string
			for len(rec.Events) > 0 {
				e := strings.SplitN(<-rec.Events, " ", 3)
				got = append(got, e[0]+" "+e[1])
			}
			assert.Equal(t, tt.wantEvents, got)
			assert.Equal(t, tt.wantRetired, counter.retired)
			assert.Zero(t, counter.n, "a retirement is not a rotation")
			after, s := keySet(t, key)
			require.NotNil(t, after)
			assert.Equal(t, value, s.Annotations[AnnotationRetireKeysHandled])
			if !tt.wantChanged {
				assert.Equal(t, keyIDs(before), keyIDs(after), "no key changed")
				assert.NotEqual(t, keys.StateRetired, keyStatesOf(t, s)[before.Keys[0].ID].State)
				return
			}
			require.Len(t, after.Keys, 2)
			assert.Equal(t, keys.StateRetired, keyStatesOf(t, s)[before.Keys[0].ID].State)

			// Naming the retired key again (a new value) retires nothing and counts nothing.
			setKeySecretAnnotation(t, key, AnnotationRetireKeys, before.Keys[0].ID+" ")
			reconcileOnce()
			again, s := keySet(t, key)
			require.NotNil(t, again)
			assert.Equal(t, keyIDs(after), keyIDs(again), "no new key")
			assert.Equal(t, before.Keys[0].ID+" ", s.Annotations[AnnotationRetireKeysHandled])
			assert.Empty(t, rec.Events, "no Event")
			assert.Equal(t, tt.wantRetired, counter.retired, "not counted again")
		})
	}
}
