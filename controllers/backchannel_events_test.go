package controllers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/server/backchannel"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/metrics"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

// A back-channel logout that is given up shows as a metric and a Warning Event on the
// OAuthClient, whose backchannelLogoutURI reached the registry through the API server.
func TestABackchannelLogoutGivenUpIsAWarningEventOnTheOAuthClient(t *testing.T) {
	hits := make(chan struct{}, 10)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits <- struct{}{}
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer rp.Close()

	ns := newNamespace(t)
	oc := confidentialClient(ns, "portal")
	oc.Spec.BackchannelLogoutURI = rp.URL + "/backchannel-logout"
	oc.Spec.BackchannelLogoutSessionRequired = true
	require.NoError(t, suite.client.Create(t.Context(), oc))
	id := "portal." + ns
	waitServed(t, id, ns+"/portal", func(c *assert.CollectT, cl *registry.Client) {
		assert.Equal(c, rp.URL+"/backchannel-logout", cl.BackchannelLogoutURI)
		assert.True(c, cl.BackchannelLogoutSessionRequired)
	})

	cs, err := kubernetes.NewForConfig(suite.cfg)
	require.NoError(t, err)
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	stop := make(chan struct{})
	defer close(stop)
	b.StartRecordingToSink(stop)
	defer b.Shutdown()
	rep := newClientEvents(suite.replicas[0].registry, suite.client, b.NewRecorder(suite.scheme, recorderName), time.Minute, 3)

	set, err := keys.Generate([]string{keys.RS256}, time.Now().Add(-time.Minute))
	require.NoError(t, err)
	kr := keys.NewKeyring()
	require.NoError(t, kr.Load(set))
	gather := prometheus.NewRegistry()
	m, err := metrics.New(gather)
	require.NoError(t, err)
	s, err := backchannel.New(backchannel.Config{
		Issuer: "https://latchkey.example", Store: memory.New(), Clients: suite.replicas[0].registry, Keys: kr,
		Events: rep, Metrics: m, MaxAttempts: 2, Backoff: 10 * time.Millisecond, PollInterval: 10 * time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Start(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	require.NoError(t, s.SessionEnded(t.Context(), "sid-portal", "sub-portal", []string{id}))
	waitEvent(t, ns, "portal", EventBackchannelLogoutFailed)
	assert.Len(t, hits, 2, "two attempts, then given up")

	var list eventsv1.EventList
	require.NoError(t, suite.client.List(t.Context(), &list, client.InNamespace(ns)))
	for _, e := range list.Items {
		if e.Reason == EventBackchannelLogoutFailed {
			assert.Equal(t, "Warning", e.Type)
			assert.Equal(t, "OAuthClient", e.Regarding.Kind)
			assert.Contains(t, e.Note, "after 2 attempts")
			assert.Contains(t, e.Note, "HTTP 502")
		}
	}
	mfs, err := gather.Gather()
	require.NoError(t, err)
	failed := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "latchkey_backchannel_logout_deliveries_total" {
			for _, mm := range mf.GetMetric() {
				if strings.EqualFold(mm.GetLabel()[0].GetValue(), "failed") {
					failed = mm.GetCounter().GetValue()
				}
			}
		}
	}
	assert.Equal(t, 1.0, failed)
}
