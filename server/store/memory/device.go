package memory

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
)

// deviceGrants holds the device authorizations: few (one per sign-in of a device, for minutes),
// so one map under one mutex, with the user code index beside it; an expired grant is
// dropped when a call meets it, and by the janitor.
type deviceGrants struct {
	mu     sync.Mutex
	grants map[store.Hash]*deviceRecord
	byUser map[store.Hash]store.Hash // user code hash -> device code hash, while pending
}

type deviceRecord struct {
	grant    store.DeviceGrant
	lastPoll int64 // Unix nanoseconds; 0 before the first poll
	taken    bool
}

// live returns the record of h when its lease has not ended, dropping it when it has.
func (d *deviceGrants) live(h store.Hash, now int64) (*deviceRecord, bool) {
	r, ok := d.grants[h]
	if !ok {
		return nil, false
	}
	if r.grant.ExpiresAt.UnixNano() <= now {
		d.drop(h, r)
		return nil, false
	}
	return r, true
}

func (d *deviceGrants) drop(h store.Hash, r *deviceRecord) {
	delete(d.grants, h)
	if cur, ok := d.byUser[r.grant.UserCode]; ok && cur == h {
		delete(d.byUser, r.grant.UserCode)
	}
}

// sweep drops the grants whose lease ended.
func (d *deviceGrants) sweep(now int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for h := range d.grants {
		d.live(h, now)
	}
}

func (d *deviceGrants) init() {
	if d.grants == nil {
		d.grants = map[store.Hash]*deviceRecord{}
		d.byUser = map[store.Hash]store.Hash{}
	}
}

// copyGrant returns g with its own copies of the strings and scopes, in UTC.
func copyGrant(g store.DeviceGrant) store.DeviceGrant {
	g.ClientID, g.Subject = strings.Clone(g.ClientID), strings.Clone(g.Subject)
	g.Scopes = slices.Clone(g.Scopes)
	g.ExpiresAt = g.ExpiresAt.UTC()
	if !g.AuthTime.IsZero() {
		g.AuthTime = g.AuthTime.UTC()
	}
	return g
}

// PutDeviceGrant stores a pending device grant; see store.DeviceGrants.
func (s *Store) PutDeviceGrant(ctx context.Context, h store.Hash, g store.DeviceGrant) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.nowNano()
	if g.ExpiresAt.UnixNano() <= now {
		return nil
	}
	d := &s.devices
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	if _, ok := d.live(h, now); ok {
		return store.ErrConflict
	}
	if other, ok := d.byUser[g.UserCode]; ok {
		if _, ok := d.live(other, now); ok {
			return store.ErrConflict
		}
	}
	g = copyGrant(g)
	g.Status, g.Subject, g.AuthTime = store.DevicePending, "", time.Time{}
	d.grants[h] = &deviceRecord{grant: g}
	d.byUser[g.UserCode] = h
	return nil
}

// DeviceGrantByUserCode finds a pending grant by its user code; see store.DeviceGrants.
func (s *Store) DeviceGrantByUserCode(ctx context.Context, uh store.Hash) (store.Hash, store.DeviceGrant, error) {
	if err := ctx.Err(); err != nil {
		return store.Hash{}, store.DeviceGrant{}, err
	}
	d := &s.devices
	d.mu.Lock()
	defer d.mu.Unlock()
	h, r, ok := d.pending(uh, s.nowNano())
	if !ok {
		return store.Hash{}, store.DeviceGrant{}, store.ErrNotFound
	}
	return h, copyGrant(r.grant), nil
}

// pending returns the live, pending grant of a user code hash.
func (d *deviceGrants) pending(uh store.Hash, now int64) (store.Hash, *deviceRecord, bool) {
	h, ok := d.byUser[uh]
	if !ok {
		return store.Hash{}, nil, false
	}
	r, ok := d.live(h, now)
	if !ok || r.grant.Status != store.DevicePending {
		return store.Hash{}, nil, false
	}
	return h, r, true
}

// DecideDeviceGrant approves or denies a pending grant; see store.DeviceGrants.
func (s *Store) DecideDeviceGrant(ctx context.Context, uh store.Hash, approve bool, subject string, authTime time.Time) (store.DeviceGrant, error) {
	if err := ctx.Err(); err != nil {
		return store.DeviceGrant{}, err
	}
	d := &s.devices
	d.mu.Lock()
	defer d.mu.Unlock()
	_, r, ok := d.pending(uh, s.nowNano())
	if !ok {
		return store.DeviceGrant{}, store.ErrNotFound
	}
	if approve {
		r.grant.Status, r.grant.Subject, r.grant.AuthTime = store.DeviceApproved, strings.Clone(subject), authTime
	} else {
		r.grant.Status = store.DeviceDenied
	}
	delete(d.byUser, uh)
	return copyGrant(r.grant), nil
}

// PollDeviceGrant is one poll of a device code; see store.DeviceGrants.
func (s *Store) PollDeviceGrant(ctx context.Context, h store.Hash, clientID string, slowDown time.Duration) (store.DevicePoll, error) {
	if err := ctx.Err(); err != nil {
		return store.DevicePoll{}, err
	}
	now := s.nowNano()
	d := &s.devices
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.live(h, now)
	if !ok || r.grant.ClientID != clientID {
		return store.DevicePoll{}, store.ErrNotFound
	}
	var poll store.DevicePoll
	switch r.grant.Status {
	case store.DevicePending:
		if r.lastPoll != 0 && now-r.lastPoll < int64(r.grant.Interval) {
			r.grant.Interval += slowDown
			poll.SlowDown = true
		}
		r.lastPoll = now
	case store.DeviceApproved:
		if r.taken {
			return store.DevicePoll{Grant: copyGrant(r.grant)}, store.ErrAlreadyUsed
		}
		r.taken = true
	}
	poll.Grant = copyGrant(r.grant)
	return poll, nil
}
