package backchannel

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Defaults of Config.
const (
	DefaultTimeout      = 5 * time.Second
	DefaultMaxAttempts  = 5
	DefaultBackoff      = 5 * time.Second
	DefaultMaxBackoff   = 5 * time.Minute
	DefaultQueueLease   = 24 * time.Hour
	DefaultPollInterval = time.Second
	DefaultConcurrency  = 16
	// maxBody is how much of a receiver's answer is read (and thrown away).
	maxBody = 4 << 10
	// claimMargin is how much longer than an attempt's timeout a claim lasts.
	claimMargin = 10 * time.Second
)

// Clients gives the served clients; *registry.Registry does.
type Clients interface {
	Snapshot() *registry.Snapshot
}

// Keys gives the current signing key of an algorithm; *keys.Keyring does.
type Keys interface {
	Signer(alg string) (*keys.Signer, error)
}

// Events reports a delivery given up on its client (controllers.ClientEvents: a Warning Event
// on the OAuthClient).
type Events interface {
	BackchannelLogoutFailed(clientID string, attempts int, reason string)
}

// Metrics counts the deliveries' results (*metrics.Metrics does).
type Metrics interface {
	BackchannelLogoutDelivery(result string)
}

// Results of a delivery attempt (the metric's label values).
const (
	ResultDelivered = "delivered"
	ResultRetried   = "retried"
	ResultFailed    = "failed"
	ResultDropped   = "dropped"
)

// Config configures New. Issuer, Store, Clients and Keys are required.
type Config struct {
	Issuer string
	// DefaultAlgorithm signs the tokens of clients that name none (RS256 when empty).
	DefaultAlgorithm string
	Store            store.LogoutDeliveries
	Clients          Clients
	Keys             Keys
	Events           Events  // optional
	Metrics          Metrics // optional
	// HTTPClient sends the tokens; nil is a client with Timeout that never follows redirects.
	// A client given here should not follow them either.
	HTTPClient *http.Client
	// Timeout bounds an attempt (DefaultTimeout).
	Timeout time.Duration
	// MaxAttempts bounds the attempts of a delivery (DefaultMaxAttempts).
	MaxAttempts int
	// Backoff is the delay before the first retry, doubled for each next one up to MaxBackoff
	// (DefaultBackoff, DefaultMaxBackoff).
	Backoff, MaxBackoff time.Duration
	// QueueLease is how long a delivery may stay queued (DefaultQueueLease); it must outlast
	// every retry.
	QueueLease time.Duration
	// PollInterval is how often Start looks for due deliveries (DefaultPollInterval).
	PollInterval time.Duration
	// Concurrency bounds the attempts in flight on this replica (DefaultConcurrency).
	Concurrency int
	// Now is the clock of the tokens (time.Now).
	Now func() time.Time
}

// Sender queues logout deliveries and delivers them; see the package comment.
type Sender struct {
	cfg  Config
	wake chan struct{}
	sem  chan struct{}
	wg   sync.WaitGroup
}

// New checks cfg, fills in its defaults and returns a Sender.
func New(cfg Config) (*Sender, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("backchannel: no issuer")
	case cfg.Store == nil || cfg.Clients == nil || cfg.Keys == nil:
		return nil, errors.New("backchannel: store, clients and keys are required")
	case cfg.Timeout < 0 || cfg.MaxAttempts < 0 || cfg.Backoff < 0 || cfg.MaxBackoff < 0 || cfg.QueueLease < 0 || cfg.PollInterval < 0 || cfg.Concurrency < 0:
		return nil, errors.New("backchannel: negative setting")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.Backoff, DefaultBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.QueueLease, DefaultQueueLease)
	def(&cfg.PollInterval, DefaultPollInterval)
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.DefaultAlgorithm == "" {
		cfg.DefaultAlgorithm = keys.RS256
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{
			Timeout: cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if total := retryTime(cfg); total >= cfg.QueueLease {
		return nil, fmt.Errorf("backchannel: the queue lease %s is shorter than the retries (%s)", cfg.QueueLease, total)
	}
	return &Sender{cfg: cfg, wake: make(chan struct{}, 1), sem: make(chan struct{}, cfg.Concurrency)}, nil
}

// retryTime is the longest a delivery can take: every attempt timing out after its claim,
// and every back-off.
func retryTime(cfg Config) time.Duration {
	var total time.Duration
	for a := 1; a <= cfg.MaxAttempts; a++ {
		total += cfg.Timeout + claimMargin + cfg.PollInterval
		if a < cfg.MaxAttempts {
			total += backoff(cfg, a)
		}
	}
	return total
}

// backoff is the delay after the attempts-th failed attempt.
func backoff(cfg Config, attempts int) time.Duration {
	d := cfg.Backoff
	for i := 1; i < attempts && d < cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, cfg.MaxBackoff)
}

// SessionEnded queues a logout delivery for every client of clientIDs that has a back-channel
// logout URI (once per client, whatever the repeats) and returns; Start delivers them. It
// implements the logout code's SessionEndNotifier. An error means nothing was queued (the
// store could not be reached).
func (s *Sender) SessionEnded(ctx context.Context, sid, subject string, clientIDs []string) error {
	if sid == "" && subject == "" {
		return errors.New("backchannel: a session end names neither a session nor a subject")
	}
	snap := s.cfg.Clients.Snapshot()
	var ds []store.LogoutDelivery
	var seen []string
	for _, id := range clientIDs {
		if slices.Contains(seen, id) {
			continue
		}
		seen = append(seen, id)
		c, ok := snap.Client(id)
		if !ok || c.BackchannelLogoutURI == "" {
			continue
		}
		if c.BackchannelLogoutSessionRequired && sid == "" {
			s.count(ResultDropped)
			logr.FromContextOrDiscard(ctx).Info("back-channel logout not sent: the client requires a sid and the session has none", "client_id", id)
			continue
		}
		ds = append(ds, store.LogoutDelivery{ID: rand.Text(), ClientID: id, SessionID: sid, Subject: subject})
	}
	if len(ds) == 0 {
		return nil
	}
	if err := s.cfg.Store.EnqueueLogoutDeliveries(ctx, ds, s.cfg.QueueLease); err != nil {
		return fmt.Errorf("backchannel: queue deliveries: %w", err)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Start delivers due deliveries every PollInterval (and at once after SessionEnded on this
// replica) until ctx ends, then waits for the attempts in flight and returns nil.
func (s *Sender) Start(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("backchannel-logout")
	ctx = logr.NewContext(ctx, log)
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	defer s.wg.Wait()
	for {
		if err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "claiming back-channel logout deliveries; trying again")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// NeedLeaderElection is false: every replica delivers.
func (*Sender) NeedLeaderElection() bool { return false }

// RunOnce claims the due deliveries this replica has room for and starts their attempts; it
// does not wait for them (Wait does).
func (s *Sender) RunOnce(ctx context.Context) error {
	room := s.cfg.Concurrency - len(s.sem)
	if room <= 0 {
		return nil
	}
	ds, err := s.cfg.Store.ClaimLogoutDeliveries(ctx, room, s.cfg.Timeout+claimMargin)
	if err != nil {
		return err
	}
	for _, d := range ds {
		s.sem <- struct{}{}
		s.wg.Add(1)
		go func() {
			defer func() { <-s.sem; s.wg.Done() }()
			s.attempt(context.WithoutCancel(ctx), d)
		}()
	}
	return nil
}

// Wait waits for the attempts RunOnce started.
func (s *Sender) Wait() { s.wg.Wait() }

func (s *Sender) count(result string) {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.BackchannelLogoutDelivery(result)
	}
}

// attempt delivers d once and records the outcome in the store. It runs on a context that
// outlives Start's, so that an attempt under way at shutdown records its answer.
func (s *Sender) attempt(ctx context.Context, d store.LogoutDelivery) {
	log := logr.FromContextOrDiscard(ctx).WithValues("client_id", d.ClientID, "delivery", d.ID)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout+claimMargin)
	defer cancel()
	c, ok := s.cfg.Clients.Snapshot().Client(d.ClientID)
	if !ok || c.BackchannelLogoutURI == "" {
		s.finish(ctx, log, d, ResultDropped)
		return
	}
	err := s.post(ctx, c, d)
	if err == nil {
		s.finish(ctx, log, d, ResultDelivered)
		return
	}
	attempts := d.Attempts + 1
	if attempts >= s.cfg.MaxAttempts {
		log.Info("back-channel logout given up", "attempts", attempts, "reason", err.Error())
		if s.finish(ctx, log, d, ResultFailed) && s.cfg.Events != nil {
			s.cfg.Events.BackchannelLogoutFailed(d.ClientID, attempts, err.Error())
		}
		return
	}
	delay := backoff(s.cfg, attempts)
	log.V(1).Info("back-channel logout failed; retrying", "attempts", attempts, "retry_in", delay.String(), "reason", err.Error())
	if rerr := s.cfg.Store.RetryLogoutDelivery(ctx, d.ID, d.Claim, attempts, delay); rerr != nil {
		// Another replica holds it now, or the store is away: the claim passes and it is tried again.
		log.Error(rerr, "recording a failed back-channel logout attempt")
		return
	}
	s.count(ResultRetried)
}

// finish removes d from the queue and counts result; it reports whether this call removed it.
func (s *Sender) finish(ctx context.Context, log logr.Logger, d store.LogoutDelivery, result string) bool {
	if err := s.cfg.Store.FinishLogoutDelivery(ctx, d.ID, d.Claim); err != nil {
		log.Error(err, "removing a back-channel logout delivery", "result", result)
		return false
	}
	s.count(result)
	return true
}

// post sends a new logout token for d to the client's URI; nil means a 2xx answer.
func (s *Sender) post(ctx context.Context, c *registry.Client, d store.LogoutDelivery) error {
	tok, err := s.token(c, d.SessionID, d.Subject)
	if err != nil {
		return fmt.Errorf("sign the logout token: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	body := url.Values{"logout_token": {tok}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("bad back-channel logout URI: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cache-Control", "no-store")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URI is in the Event's context already
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s", s.cfg.Timeout)
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered HTTP %d", resp.StatusCode)
	}
	return nil
}
