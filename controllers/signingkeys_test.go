package controllers

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
		_, s := keySet(t, keySecretKey)
		s.Data[KeySetKey] = original
		assert.NoError(t, suite.client.Update(context.Background(), s))
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
