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

// Warning Events on an OAuthClient, each rate-limited per client and reason.
const (
	// EventRefreshTokenReuseDetected: a refresh token was used again after its rotation, a
	// sign of a stolen token. The family is revoked.
	EventRefreshTokenReuseDetected = "RefreshTokenReuseDetected"
	// EventAuthorizationCodeReplayed: the client presented one of its codes twice, a sign of a
	// leaked code. The grant of the first exchange is revoked.
	EventAuthorizationCodeReplayed = "AuthorizationCodeReplayed"
	// EventClientAuthenticationFailures: the client's failed authentications, from all
	// addresses within the brute-force window, reached the threshold: someone may be guessing
	// its secret, or it runs with an old one.
	EventClientAuthenticationFailures = "ClientAuthenticationFailures"
	// EventBackchannelLogoutFailed: a back-channel logout token could not be delivered to the
	// client's backchannelLogoutURI (no 2xx answer after the last attempt): the user's session
	// at the client may still be alive.
	EventBackchannelLogoutFailed = "BackchannelLogoutFailed"
)

// Defaults of the Event rate limit, per client and reason, and of the authentication failure
// threshold.
const (
	DefaultClientEventInterval         = time.Minute
	DefaultClientEventBurst            = 3
	DefaultAuthenticationFailureEvents = 10
	clientLookupTimeout                = 5 * time.Second
)

// ClientLookup finds a served client by its client ID; *registry.Registry's snapshots do.
type ClientLookup interface {
	Snapshot() *registry.Snapshot
}

// ClientEvents emits Warning Events on the OAuthClients the server reports about (refresh
// token reuse, code replay, failed authentications past a threshold, back-channel logouts
// given up), rate-limited per client and reason so that a storm cannot flood the API server.
// It implements oauth2.ClientEvents and backchannel.Events.
type ClientEvents struct {
	clients   ClientLookup
	reader    client.Reader
	events    events.EventRecorder
	interval  time.Duration
	burst     int
	threshold int64

	mu       sync.Mutex
	limiters map[string]*rate.Limiter // by reason and client ID
}

// NewClientEvents returns a reporter that reads OAuthClients through the manager's cache and
// records through its Event recorder.
func NewClientEvents(mgr ctrl.Manager, clients ClientLookup) *ClientEvents {
	return newClientEvents(clients, mgr.GetClient(), mgr.GetEventRecorder(recorderName),
		DefaultClientEventInterval, DefaultClientEventBurst)
}

func newClientEvents(clients ClientLookup, reader client.Reader, rec events.EventRecorder, interval time.Duration, burst int) *ClientEvents {
	return &ClientEvents{
		clients: clients, reader: reader, events: rec, interval: interval, burst: burst,
		threshold: DefaultAuthenticationFailureEvents, limiters: map[string]*rate.Limiter{},
	}
}

// RefreshReuseDetected emits EventRefreshTokenReuseDetected.
func (r *ClientEvents) RefreshReuseDetected(clientID string) {
	r.emit(clientID, EventRefreshTokenReuseDetected, "DetectRefreshTokenReuse",
		"A rotated refresh token of client %s was used again; its grant was revoked (the token may have been stolen)", clientID)
}

// AuthorizationCodeReplayed emits EventAuthorizationCodeReplayed.
func (r *ClientEvents) AuthorizationCodeReplayed(clientID string) {
	r.emit(clientID, EventAuthorizationCodeReplayed, "DetectCodeReplay",
		"An authorization code of client %s was presented twice; the grant of its first exchange was revoked (the code may have leaked)", clientID)
}

// BackchannelLogoutFailed emits EventBackchannelLogoutFailed; it implements
// backchannel.Events. reason says why the last attempt failed (never the token).
func (r *ClientEvents) BackchannelLogoutFailed(clientID string, attempts int, reason string) {
	r.emit(clientID, EventBackchannelLogoutFailed, "DeliverBackchannelLogout",
		"A back-channel logout token for client %s was not delivered after %d attempts (last: %s); the user's session at the client may still be active", clientID, attempts, reason)
}

// AuthenticationFailures emits EventClientAuthenticationFailures once the failures reach the
// threshold.
func (r *ClientEvents) AuthenticationFailures(clientID string, failures int64) {
	if r == nil || failures < r.threshold {
		return
	}
	r.emit(clientID, EventClientAuthenticationFailures, "Authenticate",
		"Client %s failed to authenticate %d times within the brute-force window (a guessed or outdated secret); attempts are being slowed down and, per address, refused", clientID, failures)
}

// emit records the Event on the client's OAuthClient, unless its rate is spent. Client IDs not
// served (or not from an OAuthClient) are ignored.
func (r *ClientEvents) emit(clientID, reason, action, format string, args ...any) {
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
	if !r.allow(reason + "\x00" + clientID) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientLookupTimeout)
	defer cancel()
	var oc v1alpha1.OAuthClient
	if err := r.reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &oc); err != nil {
		ctrl.Log.WithName("client-events").Error(err, "OAuthClient of an Event not found", "client_id", clientID, "reason", reason)
		return
	}
	r.events.Eventf(&oc, nil, corev1.EventTypeWarning, reason, action, format, args...)
}

// allow takes a token from the limiter of key, created on first use.
func (r *ClientEvents) allow(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.limiters[key]
	if !ok {
		l = rate.NewLimiter(rate.Every(r.interval), r.burst)
		r.limiters[key] = l
	}
	return l.Allow()
}
