package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestClientEventsEmitOneRateLimitedEvent(t *testing.T) {
	ns := newNamespace(t)
	createScope(t, "read:reuse-"+ns)
	require.NoError(t, suite.client.Create(t.Context(), confidentialClient(ns, "mobile", "read:reuse-"+ns)))
	id := "mobile." + ns
	r := suite.replicas[0]
	waitServed(t, id, ns+"/mobile", func(*assert.CollectT, *registry.Client) {})

	t.Run("one Event on the OAuthClient, through the API", func(t *testing.T) {
		cs, err := kubernetes.NewForConfig(suite.cfg)
		require.NoError(t, err)
		b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
		stop := make(chan struct{})
		defer close(stop)
		b.StartRecordingToSink(stop)
		defer b.Shutdown()
		rep := newClientEvents(r.registry, suite.client, b.NewRecorder(suite.scheme, recorderName), time.Minute, 3)
		rep.RefreshReuseDetected(id)
		rep.RefreshReuseDetected("unknown-client")
		waitEvent(t, ns, "mobile", EventRefreshTokenReuseDetected)
		var list eventsv1.EventList
		require.NoError(t, suite.client.List(context.Background(), &list, client.InNamespace(ns)))
		n := 0
		for _, e := range list.Items {
			if e.Reason == EventRefreshTokenReuseDetected {
				n++
				assert.Equal(t, "OAuthClient", e.Regarding.Kind)
				assert.Equal(t, "mobile", e.Regarding.Name)
				assert.Equal(t, "Warning", e.Type)
			}
		}
		assert.Equal(t, 1, n)
	})
	t.Run("a storm of 50 reuses records at most the burst", func(t *testing.T) {
		rec := events.NewFakeRecorder(100)
		rep := newClientEvents(r.registry, suite.client, rec, time.Minute, 3)
		for range 50 {
			rep.RefreshReuseDetected(id)
		}
		assert.Len(t, rec.Events, 3)
		rep.RefreshReuseDetected("unknown-client")
		assert.Len(t, rec.Events, 3, "unknown clients are ignored")
		var nilRep *ClientEvents
		nilRep.RefreshReuseDetected(id)
	})
}

func TestClientEventsOfCodeReplayAndAuthenticationFailures(t *testing.T) {
	ns := newNamespace(t)
	require.NoError(t, suite.client.Create(t.Context(), confidentialClient(ns, "svc")))
	id := "svc." + ns
	waitServed(t, id, ns+"/svc", func(*assert.CollectT, *registry.Client) {})
	rec := events.NewFakeRecorder(100)
	rep := newClientEvents(suite.replicas[0].registry, suite.client, rec, time.Minute, 3)
	for n := int64(1); n < DefaultAuthenticationFailureEvents; n++ {
		rep.AuthenticationFailures(id, n)
	}
	assert.Empty(t, rec.Events, "below the threshold nothing is emitted")
	for n := range int64(20) {
		rep.AuthenticationFailures(id, DefaultAuthenticationFailureEvents+n)
	}
	require.Len(t, rec.Events, 3, "from the threshold on, at most the burst")
	for range 3 {
		e := <-rec.Events
		assert.Contains(t, e, "Warning "+EventClientAuthenticationFailures)
	}
	rep.AuthorizationCodeReplayed(id)
	require.Len(t, rec.Events, 1, "a replay has its own rate")
	assert.Contains(t, <-rec.Events, "Warning "+EventAuthorizationCodeReplayed)
}

type rotationCounter struct{ n, retired int }

func (c *rotationCounter) KeyRotated() { c.n++ }
func (c *rotationCounter) KeyRetired() { c.retired++ }

// A forced rotation is counted once by the key metrics; creating the set is not a rotation.
func TestKeyRotationIsCounted(t *testing.T) {
	key := types.NamespacedName{Namespace: newNamespace(t), Name: "keys"}
	counter := &rotationCounter{}
	r := &keyEnsurer{client: suite.client, reader: suite.client, secret: key, algorithms: keys.SupportedAlgorithms(),
		events: events.NewFakeRecorder(10), now: time.Now, metrics: counter}
	_, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: key})
	require.NoError(t, err)
	assert.Zero(t, counter.n)
	setKeySecretAnnotation(t, key, AnnotationRotateKeys, "1")
	_, err = r.Reconcile(t.Context(), reconcile.Request{NamespacedName: key})
	require.NoError(t, err)
	_, err = r.Reconcile(t.Context(), reconcile.Request{NamespacedName: key})
	require.NoError(t, err)
	assert.Equal(t, 1, counter.n)
}
