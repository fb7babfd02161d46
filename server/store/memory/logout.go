package memory

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
)

// logoutEntry is a queued delivery with its times (Unix ns).
type logoutEntry struct {
	d       store.LogoutDelivery
	due     int64
	expires int64
}

// logoutQueue holds the queued back-channel logout deliveries: few (one per client of each
// ended session, gone once delivered), so one map under one mutex, scanned on each claim.
type logoutQueue struct {
	mu sync.Mutex
	m  map[string]*logoutEntry
}

// EnqueueLogoutDeliveries queues the deliveries; see store.LogoutDeliveries.
func (s *Store) EnqueueLogoutDeliveries(ctx context.Context, ds []store.LogoutDelivery, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ds) == 0 || ttl <= 0 {
		return nil
	}
	now := s.nowNano()
	q := &s.logouts
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.m == nil {
		q.m = map[string]*logoutEntry{}
	}
	for _, d := range ds {
		d.Attempts, d.Claim = 0, ""
		d.ID, d.ClientID = strings.Clone(d.ID), strings.Clone(d.ClientID)
		d.SessionID, d.Subject = strings.Clone(d.SessionID), strings.Clone(d.Subject)
		q.m[d.ID] = &logoutEntry{d: d, due: now, expires: leaseEnd(now, ttl)}
	}
	return nil
}

// ClaimLogoutDeliveries hands out up to limit due deliveries; see store.LogoutDeliveries.
func (s *Store) ClaimLogoutDeliveries(ctx context.Context, limit int, claim time.Duration) ([]store.LogoutDelivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	token := rand.Text()
	now := s.nowNano()
	q := &s.logouts
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []store.LogoutDelivery
	for id, e := range q.m {
		if e.expires <= now {
			delete(q.m, id)
			continue
		}
		if len(out) == limit || e.due > now {
			continue
		}
		e.d.Claim = token
		e.due = leaseEnd(now, max(claim, time.Millisecond))
		out = append(out, e.d)
	}
	if len(q.m) == 0 {
		q.m = nil // gives the map's memory back after a wave of logouts
	}
	return out, nil
}

// claimed returns the live entry id if claim holds it.
func (q *logoutQueue) claimed(now int64, id, claim string) (*logoutEntry, error) {
	e, ok := q.m[id]
	if !ok || e.expires <= now {
		return nil, store.ErrNotFound
	}
	if e.d.Claim == "" || e.d.Claim != claim {
		return nil, store.ErrConflict
	}
	return e, nil
}

// FinishLogoutDelivery removes a claimed delivery; see store.LogoutDeliveries.
func (s *Store) FinishLogoutDelivery(ctx context.Context, id, claim string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.nowNano()
	q := &s.logouts
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, err := q.claimed(now, id, claim); err != nil {
		return err
	}
	delete(q.m, id)
	return nil
}

// RetryLogoutDelivery makes a claimed delivery due again after delay; see
// store.LogoutDeliveries.
func (s *Store) RetryLogoutDelivery(ctx context.Context, id, claim string, attempts int, delay time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.nowNano()
	q := &s.logouts
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.claimed(now, id, claim)
	if err != nil {
		return err
	}
	e.d.Attempts, e.d.Claim = attempts, ""
	e.due = leaseEnd(now, max(delay, 0))
	return nil
}
