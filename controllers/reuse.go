package controllers

import (
	"context"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// EventRefreshTokenReuseDetected is the Warning Event on an OAuthClient one of whose refresh
// tokens was used again after its rotation: a sign of a stolen token. The family is revoked.
const EventRefreshTokenReuseDetected = "RefreshTokenReuseDetected"

// Defaults of the reuse Event rate limit, per client.
const (
	DefaultReuseEventInterval = time.Minute
	DefaultReuseEventBurst    = 3
	reuseLookupTimeout        = 5 * time.Second
)

// ClientLookup finds a served client by its client ID; *registry.Registry's snapshots do.
type ClientLookup interface {
	Snapshot() *registry.Snapshot
}

// ReuseReporter emits a Warning Event on the OAuthClient whose refresh token was reused,
// rate-limited per client so that a storm of reuses cannot flood the API server. It
// implements oauth2.ReuseReporter.
type ReuseReporter struct {
	clients  ClientLookup
	reader   client.Reader
	events   events.EventRecorder
	interval time.Duration
	burst    int

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// NewReuseReporter returns a reporter that reads OAuthClients through the manager's cache and
// records through its Event recorder.
func NewReuseReporter(mgr ctrl.Manager, clients ClientLookup) *ReuseReporter {
	return newReuseReporter(clients, mgr.GetClient(), mgr.GetEventRecorder(recorderName),
		DefaultReuseEventInterval, DefaultReuseEventBurst)
}

func newReuseReporter(clients ClientLookup, reader client.Reader, rec events.EventRecorder, interval time.Duration, burst int) *ReuseReporter {
	return &ReuseReporter{
		clients: clients, reader: reader, events: rec, interval: interval, burst: burst,
		limiters: map[string]*rate.Limiter{},
	}
}

// RefreshReuseDetected emits the Event on the client's OAuthClient, unless its rate is spent.
// Client IDs not served (or not from an OAuthClient) are ignored.
func (r *ReuseReporter) RefreshReuseDetected(clientID string) {
	if r == nil {
		return
	}
	c, ok := r.clients.Snapshot().Client(clientID)
	if !ok {
		return
	}
	ns, name, ok := strings.Cut(c.Source, "/")
	if !ok || ns == "" || name == "" {
		return
	}
	if !r.allow(clientID) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), reuseLookupTimeout)
	defer cancel()
	var oc v1alpha1.OAuthClient
	if err := r.reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &oc); err != nil {
		ctrl.Log.WithName("reuse").Error(err, "OAuthClient of a refresh token reuse not found", "client_id", clientID)
		return
	}
	r.events.Eventf(&oc, nil, corev1.EventTypeWarning, EventRefreshTokenReuseDetected, "DetectRefreshTokenReuse",
		"A rotated refresh token of client %s was used again; its grant was revoked (the token may have been stolen)", clientID)
}

// allow takes a token from the client's limiter, created on first use.
func (r *ReuseReporter) allow(clientID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.limiters[clientID]
	if !ok {
		l = rate.NewLimiter(rate.Every(r.interval), r.burst)
		r.limiters[clientID] = l
	}
	return l.Allow()
}
