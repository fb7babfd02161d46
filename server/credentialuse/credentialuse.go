package credentialuse

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Defaults of Options.
const (
	DefaultInterval   = 30 * time.Second
	DefaultMaxClients = 10000
	// flushTimeout bounds one flush, also the last one when Start stops.
	flushTimeout = 5 * time.Second
)

// Sink receives the records; store.CredentialUses (the leased store) implements it.
type Sink interface {
	NoteCredentialUses(ctx context.Context, uses []store.CredentialUse) error
}

// Options configure New; zero fields take the defaults.
type Options struct {
	// Interval is how often Start flushes; default DefaultInterval.
	Interval time.Duration
	// MaxClients bounds the records held (one per client and credential); default
	// DefaultMaxClients.
	MaxClients int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// key names one credential of one client.
type key struct {
	clientID string
	previous bool
}

// entry is the record of a key: the first use in its minute, and whether it was flushed.
type entry struct {
	minute int64 // Unix minutes of at
	at     time.Time
	dirty  bool
}

// Recorder keeps the last credential uses of this replica and flushes them to a Sink.
type Recorder struct {
	sink     Sink
	interval time.Duration
	limit    int
	now      func() time.Time

	mu      sync.Mutex
	entries map[key]*entry
	dropped atomic.Int64
}

var _ oauth2.CredentialUses = (*Recorder)(nil)

// New returns a Recorder that flushes to sink.
func New(sink Sink, opts Options) *Recorder {
	r := &Recorder{sink: sink, interval: opts.Interval, limit: opts.MaxClients, now: opts.Now, entries: map[key]*entry{}}
	if r.interval <= 0 {
		r.interval = DefaultInterval
	}
	if r.limit <= 0 {
		r.limit = DefaultMaxClients
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// CredentialUsed records that the credential authenticated c, unless a use of it in the
// current minute is recorded already.
func (r *Recorder) CredentialUsed(c *registry.Client, credential oauth2.Credential) {
	if c == nil {
		return
	}
	now := r.now()
	minute := now.Unix() / 60
	k := key{clientID: c.ID, previous: credential == oauth2.PreviousCredential}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[k]
	switch {
	case ok && e.minute == minute:
		return
	case ok:
		e.minute, e.at, e.dirty = minute, now, true
	case len(r.entries) >= r.limit:
		r.dropped.Add(1)
	default:
		r.entries[k] = &entry{minute: minute, at: now, dirty: true}
	}
}

// Dropped is how many uses were dropped because MaxClients records were held.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Flush notes the records not flushed yet in the sink. On failure they stay for the next flush.
func (r *Recorder) Flush(ctx context.Context) error {
	uses, keys := r.pending()
	if len(uses) == 0 {
		return nil
	}
	err := r.sink.NoteCredentialUses(ctx, uses)
	if err != nil {
		r.mu.Lock()
		for _, k := range keys {
			if e, ok := r.entries[k]; ok {
				e.dirty = true // its time is the one that failed, or a newer one
			}
		}
		r.mu.Unlock()
	}
	return err
}

// pending returns the records not flushed yet, marking them flushed, and forgets the flushed
// records of past minutes (a new use is recorded anyway).
func (r *Recorder) pending() ([]store.CredentialUse, []key) {
	minute := r.now().Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	var uses []store.CredentialUse
	var keys []key
	for k, e := range r.entries {
		switch {
		case e.dirty:
			e.dirty = false
			uses = append(uses, store.CredentialUse{ClientID: k.clientID, Previous: k.previous, At: e.at})
			keys = append(keys, k)
		case e.minute < minute:
			delete(r.entries, k)
		}
	}
	return uses, keys
}

// Start flushes every Interval until ctx ends, then once more (within a few seconds). A failed
// flush is logged and retried at the next one. It never returns an error: the records are a
// status, not a duty.
func (r *Recorder) Start(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("credential-uses")
	t := time.NewTicker(r.interval)
	defer t.Stop()
	flush := func(parent context.Context) error {
		fctx, cancel := context.WithTimeout(parent, flushTimeout)
		defer cancel()
		return r.Flush(fctx)
	}
	for {
		select {
		case <-ctx.Done():
			// The store may be closing too (Redis's client closes with the manager): a loss of
			// the last seconds' records, not an error.
			if err := flush(context.WithoutCancel(ctx)); err != nil {
				log.Info("the last credential uses were not flushed at shutdown", "error", err.Error())
			}
			return nil
		case <-t.C:
			if err := flush(ctx); err != nil {
				log.Error(err, "flushing credential uses to the store; retrying at the next flush")
			}
		}
	}
}

// NeedLeaderElection is false: every replica records the uses it sees.
func (*Recorder) NeedLeaderElection() bool { return false }
