package memory

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
)

// listKey names a list.
type listKey struct {
	kind string
	hash store.Hash
}

// listEntry is one entry of a list.
type listEntry struct {
	value   []byte
	expires int64
}

// lists holds the store's lists (store.Lists): few and small (a user's sessions, consents and
// refresh families, at most store.MaxListEntries each), so one map under one mutex. Expired
// entries are dropped when their list is written and by the janitor (sweepLists).
type lists struct {
	mu sync.Mutex
	m  map[listKey]map[string]listEntry
}

// PutEntry stores an entry; see store.Lists.
func (s *Store) PutEntry(ctx context.Context, kind string, h store.Hash, id string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl <= 0 {
		return s.DeleteEntry(ctx, kind, h, id)
	}
	now := s.nowNano()
	l := &s.lists
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[listKey]map[string]listEntry{}
	}
	k := listKey{kind: kind, hash: h}
	entries := l.m[k]
	if entries == nil {
		entries = map[string]listEntry{}
		l.m[k] = entries
	}
	dropExpired(entries, now)
	entries[strings.Clone(id)] = listEntry{value: slices.Clone(value), expires: leaseEnd(now, ttl)}
	for len(entries) > store.MaxListEntries {
		first, firstExp := "", int64(0)
		for eid, e := range entries {
			if first == "" || e.expires < firstExp || (e.expires == firstExp && eid < first) {
				first, firstExp = eid, e.expires
			}
		}
		delete(entries, first)
	}
	return nil
}

// ListEntries returns the live entries ordered by id; see store.Lists.
func (s *Store) ListEntries(ctx context.Context, kind string, h store.Hash) ([]store.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.nowNano()
	l := &s.lists
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []store.Entry
	for id, e := range l.m[listKey{kind: kind, hash: h}] {
		if e.expires > now {
			out = append(out, store.Entry{ID: id, Value: slices.Clone(e.value), ExpiresAt: fromUnixNano(e.expires)})
		}
	}
	slices.SortFunc(out, func(a, b store.Entry) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// DeleteEntry removes an entry; see store.Lists.
func (s *Store) DeleteEntry(ctx context.Context, kind string, h store.Hash, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l := &s.lists
	l.mu.Lock()
	defer l.mu.Unlock()
	k := listKey{kind: kind, hash: h}
	if entries, ok := l.m[k]; ok {
		delete(entries, id)
		if len(entries) == 0 {
			delete(l.m, k)
		}
	}
	return nil
}

// sweepLists drops the expired entries and the lists left empty.
func (s *Store) sweepLists() {
	now := s.nowNano()
	l := &s.lists
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, entries := range l.m {
		dropExpired(entries, now)
		if len(entries) == 0 {
			delete(l.m, k)
		}
	}
}

func dropExpired(entries map[string]listEntry, now int64) {
	for id, e := range entries {
		if e.expires <= now {
			delete(entries, id)
		}
	}
}
