package memory

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
)

// credentialUseKey names one client's credential.
type credentialUseKey struct {
	clientID string
	previous bool
}

// credentialUses holds the noted credential uses: few (one per client and credential used
// since the leader last took them), so one map under one mutex, with one lease for all of them
// that every note renews, as the Redis backend's one hash.
type credentialUses struct {
	mu      sync.Mutex
	at      map[credentialUseKey]time.Time
	expires int64
}

// NoteCredentialUses keeps the latest time of each client's credential; see store.CredentialUses.
func (s *Store) NoteCredentialUses(ctx context.Context, uses []store.CredentialUse) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(uses) == 0 {
		return nil
	}
	now := s.nowNano()
	u := &s.uses
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.at == nil || u.expires <= now {
		u.at = map[credentialUseKey]time.Time{}
	}
	for _, use := range uses {
		k := credentialUseKey{clientID: use.ClientID, previous: use.Previous}
		if cur, ok := u.at[k]; ok && !use.At.After(cur) {
			continue
		}
		k.clientID = strings.Clone(k.clientID)
		u.at[k] = use.At.UTC()
	}
	u.expires = leaseEnd(now, store.CredentialUseLease)
	return nil
}

// TakeCredentialUses removes and returns up to limit of the noted uses.
func (s *Store) TakeCredentialUses(ctx context.Context, limit int) ([]store.CredentialUse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.nowNano()
	u := &s.uses
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.expires <= now {
		u.at = nil
	}
	if limit <= 0 || len(u.at) == 0 {
		return nil, nil
	}
	out := make([]store.CredentialUse, 0, min(limit, len(u.at)))
	for k, at := range u.at {
		if len(out) == limit {
			break
		}
		out = append(out, store.CredentialUse{ClientID: k.clientID, Previous: k.previous, At: at})
		delete(u.at, k)
	}
	if len(u.at) == 0 {
		u.at = nil // gives the map's memory back after a burst of clients
	}
	return out, nil
}
