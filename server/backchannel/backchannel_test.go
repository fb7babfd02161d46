package backchannel_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/backchannel"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/metrics"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

const issuer = "https://latchkey.example"

// The logout code (RP-initiated logout, the account page) declares this interface and calls
// the Sender through it.
var _ interface {
	SessionEnded(ctx context.Context, sid, subject string, clientIDs []string) error
} = (*backchannel.Sender)(nil)

// env is a server's side of back-channel logout: keys, a registry, a store and metrics.
type env struct {
	t       *testing.T
	keyring *keys.Keyring
	reg     *registry.Registry
	store   store.LogoutDeliveries
	gather  *prometheus.Registry
	metrics *metrics.Metrics
	events  *events
}

func newEnv(t *testing.T) *env {
	t.Helper()
	set, err := keys.Generate(keys.SupportedAlgorithms(), time.Now().Add(-time.Minute))
	require.NoError(t, err)
	kr := keys.NewKeyring()
	require.NoError(t, kr.Load(set))
	g := prometheus.NewRegistry()
	m, err := metrics.New(g)
	require.NoError(t, err)
	return &env{t: t, keyring: kr, reg: registry.New(), store: memory.New(), gather: g, metrics: m, events: &events{}}
}

// client registers a client with a back-channel logout URI.
func (e *env) client(id, uri string, mutate ...func(*registry.Client)) {
	c := registry.Client{ID: id, Source: "team/" + id, Namespace: "team", Type: registry.ClientType("Confidential"), BackchannelLogoutURI: uri}
	for _, m := range mutate {
		m(&c)
	}
	e.reg.PutClient(c)
}

func (e *env) sender(cfg backchannel.Config) *backchannel.Sender {
	e.t.Helper()
	cfg.Issuer = issuer
	if cfg.Store == nil {
		cfg.Store = e.store
	}
	cfg.Clients, cfg.Keys, cfg.Metrics, cfg.Events = e.reg, e.keyring, e.metrics, e.events
	if cfg.Backoff == 0 {
		cfg.Backoff = 10 * time.Millisecond
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Millisecond
	}
	s, err := backchannel.New(cfg)
	require.NoError(e.t, err)
	return s
}

// start runs s until the test ends.
func start(t *testing.T, s *backchannel.Sender) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Start(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return sync.OnceFunc(stop)
}

// count is latchkey_backchannel_logout_deliveries_total{result}.
func (e *env) count(result string) float64 {
	mfs, err := e.gather.Gather()
	require.NoError(e.t, err)
	for _, mf := range mfs {
		if mf.GetName() != "latchkey_backchannel_logout_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// events records the deliveries given up (the cluster's ClientEvents has its own envtest).
type events struct {
	mu     sync.Mutex
	failed []string
}

func (ev *events) BackchannelLogoutFailed(clientID string, attempts int, reason string) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.failed = append(ev.failed, clientID)
	_ = attempts
	_ = reason
}

func (ev *events) list() []string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return append([]string(nil), ev.failed...)
}

func TestEveryClientOfTheSessionWithALogoutURIGetsAVerifiedLogoutToken(t *testing.T) {
	e := newEnv(t)
	rp := newReceiver(t, e.keyring)
	e.client("web", rp.URL())
	e.client("mobile", rp.URL(), func(c *registry.Client) { c.SigningAlgorithm = keys.ES256 })
	e.client("no-uri", "")
	s := e.sender(backchannel.Config{})
	require.NoError(t, s.SessionEnded(t.Context(), "session-1", "user-sub-1", []string{"web", "mobile", "web", "no-uri", "unknown"}))
	require.NoError(t, s.RunOnce(t.Context()))
	s.Wait()
	got := rp.tokens()
	require.Len(t, got, 2, "one token per client with a URI, whatever the repeats")
	byAud := map[string]received{}
	for _, g := range got {
		byAud[g.claims["aud"].(string)] = g
	}
	requireLogoutToken(t, byAud["web"], "web", "session-1", "user-sub-1", keys.RS256)
	requireLogoutToken(t, byAud["mobile"], "mobile", "session-1", "user-sub-1", keys.ES256)
	assert.NotEqual(t, byAud["web"].claims["jti"], byAud["mobile"].claims["jti"])
	assert.Equal(t, 2.0, e.count("delivered"))
	require.NoError(t, s.RunOnce(t.Context()))
	s.Wait()
	assert.Equal(t, 2, rp.hitCount(), "a delivered logout is not sent again")
}

func TestASessionWithoutAKnownSidSendsSubOnlyAndSkipsClientsThatRequireASid(t *testing.T) {
	e := newEnv(t)
	rp := newReceiver(t, e.keyring)
	e.client("web", rp.URL())
	e.client("strict", rp.URL(), func(c *registry.Client) { c.BackchannelLogoutSessionRequired = true })
	s := e.sender(backchannel.Config{})
	require.NoError(t, s.SessionEnded(t.Context(), "", "user-sub-2", []string{"web", "strict"}))
	require.NoError(t, s.RunOnce(t.Context()))
	s.Wait()
	got := rp.tokens()
	require.Len(t, got, 1)
	requireLogoutToken(t, got[0], "web", "", "user-sub-2", keys.RS256)
	assert.Equal(t, 1.0, e.count("dropped"))
	require.Error(t, s.SessionEnded(t.Context(), "", "", []string{"web"}), "a session end must name a session or a subject")
}

func TestAFailingReceiverGetsRetriesUntilItAnswers2xx(t *testing.T) {
	e := newEnv(t)
	rp := newReceiver(t, e.keyring, http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusNoContent)
	e.client("web", rp.URL())
	s := e.sender(backchannel.Config{MaxAttempts: 5})
	start(t, s)
	require.NoError(t, s.SessionEnded(t.Context(), "session-3", "user-sub-3", []string{"web"}))
	require.Eventually(t, func() bool { return e.count("delivered") == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 3, rp.hitCount())
	assert.Equal(t, 2.0, e.count("retried"))
	assert.Zero(t, e.count("failed"))
	assert.Empty(t, e.events.list())
	for _, g := range rp.tokens() {
		requireLogoutToken(t, g, "web", "session-3", "user-sub-3", keys.RS256)
	}
}

func TestAReceiverThatNeverAnswers2xxIsGivenUpWithAMetricAndAnEvent(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"a receiver that answers 500 is given up after the last attempt", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
		}},
		{"a redirect is not followed and counts as a failed attempt", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				panic("the redirect was followed")
			}
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}},
		{"a receiver that does not answer within the timeout is given up", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}},
		{"a receiver that answers a huge body is read no further than a bound", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			for range 1 << 10 {
				if _, err := w.Write(make([]byte, 1<<10)); err != nil {
					return
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var mu sync.Mutex
			hits := 0
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/elsewhere" {
					mu.Lock()
					hits++
					mu.Unlock()
				}
				tc.handler(w, r)
			})
			e.client("web", srv+"/logout")
			s := e.sender(backchannel.Config{MaxAttempts: 3, Timeout: 300 * time.Millisecond})
			start(t, s)
			require.NoError(t, s.SessionEnded(t.Context(), "session-4", "user-sub-4", []string{"web"}))
			require.Eventually(t, func() bool { return e.count("failed") == 1 }, 15*time.Second, 10*time.Millisecond)
			assert.Equal(t, 2.0, e.count("retried"))
			assert.Equal(t, []string{"web"}, e.events.list(), "one Event for the client")
			mu.Lock()
			assert.Equal(t, 3, hits, "bounded attempts")
			mu.Unlock()
			got, err := e.store.ClaimLogoutDeliveries(t.Context(), 10, time.Minute)
			require.NoError(t, err)
			assert.Empty(t, got, "a given-up delivery leaves the queue")
		})
	}
}

func TestAClientThatLostItsURIBeforeDeliveryIsDropped(t *testing.T) {
	e := newEnv(t)
	rp := newReceiver(t, e.keyring)
	e.client("web", rp.URL())
	s := e.sender(backchannel.Config{})
	require.NoError(t, s.SessionEnded(t.Context(), "session-5", "user-sub-5", []string{"web"}))
	e.client("web", "")
	require.NoError(t, s.RunOnce(t.Context()))
	s.Wait()
	assert.Zero(t, rp.hitCount())
	assert.Equal(t, 1.0, e.count("dropped"))
}

func TestNewRefusesSettingsWhoseRetriesOutlastTheQueueLease(t *testing.T) {
	e := newEnv(t)
	cfg := backchannel.Config{Issuer: issuer, Store: e.store, Clients: e.reg, Keys: e.keyring, QueueLease: time.Minute, MaxAttempts: 10}
	_, err := backchannel.New(cfg)
	require.Error(t, err)
	cfg.QueueLease = 0
	_, err = backchannel.New(cfg)
	require.NoError(t, err)
	_, err = backchannel.New(backchannel.Config{Store: e.store, Clients: e.reg, Keys: e.keyring})
	require.Error(t, err, "no issuer")
}
