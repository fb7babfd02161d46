package memory

import (
	"context"
	"sync"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
)

// cutoffs holds the grant cutoffs (store.GrantCutoffs): one per withdrawn consent or ended
// session, so few; one map under one mutex, never held while taking another lock.
type cutoffs struct {
	mu sync.RWMutex
	m  map[store.Hash]cutoff
}

type cutoff struct {
	at, until int64 // Unix nanoseconds
}

// CutOffGrants records the cutoff and revokes at once the live families it ends; see
// store.GrantCutoffs. The memory store holds every refresh token, so rather than checking the
// cutoff at every rotation (which would need the family's start in the 64-byte record), it
// revokes the families whose earliest live token was issued at or before c.At (scanning the
// shards' records of the client), and CreateRefresh and RedeemCode revoke a family started at
// or before a live cutoff's At when they store its first token. Every rotation of such a
// family then answers ErrRevoked, and its access tokens are revoked too (FamilyRevoked). The
// cutoff is remembered until until, or until the latest ExpiresAt of any refresh token stored
// if that is later.
func (s *Store) CutOffGrants(ctx context.Context, c store.Cutoff, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.nowNano()
	at := unixNano(c.At)
	key := c.Key()
	s.cutoffs.mu.Lock()
	if s.cutoffs.m == nil {
		s.cutoffs.m = map[store.Hash]cutoff{}
	}
	for k, x := range s.cutoffs.m {
		if x.until <= now {
			delete(s.cutoffs.m, k)
		}
	}
	cur := s.cutoffs.m[key]
	s.cutoffs.m[key] = cutoff{at: max(at, cur.at), until: max(unixNano(until), cur.until, s.maxExpiry.Load())}
	s.cutoffs.mu.Unlock()
	// Recorded first: a token stored while the shards are scanned either is found by the
	// scan or finds the cutoff itself (cutOffOnCreate, after storing).
	for i := range s.shards {
		s.cutOffShard(&s.shards[i], &c, at, now)
	}
	return nil
}

// cutOffShard revokes the families in sh that c ends: those of c's client and user (or OP
// session) with a live token issued at or before at.
func (s *Store) cutOffShard(sh *shard, c *store.Cutoff, at, now int64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	client, ok := sh.strs.lookup(c.ClientID)
	if !ok {
		return
	}
	for i := range sh.refresh.slab {
		r := &sh.refresh.slab[i].rec
		if r.expires == freeSlot || r.expires <= now || r.client != client || r.issuedAt > at {
			continue
		}
		subject, session, _ := splitSubject(sh.strs.key(r.subject))
		if (c.SessionID == "" && subject == c.Subject) || (c.SessionID != "" && session == c.SessionID) {
			s.revokeFamily(r.familyKey(), r.expires, now)
		}
	}
}

// cutOff reports whether a live cutoff ends a family of rt started at rt.IssuedAt.
func (s *Store) cutOff(rt *store.RefreshToken, now int64) bool {
	s.cutoffs.mu.RLock()
	defer s.cutoffs.mu.RUnlock()
	if len(s.cutoffs.m) == 0 {
		return false
	}
	keys, n := store.CutoffKeys(rt.ClientID, rt.Subject, rt.SessionID)
	started := unixNano(rt.IssuedAt)
	for _, k := range keys[:n] {
		if x, ok := s.cutoffs.m[k]; ok && x.until > now && started <= x.at {
			return true
		}
	}
	return false
}

// cutOffOnCreate revokes the family k of a first token rt, just stored, when a cutoff ends it.
func (s *Store) cutOffOnCreate(rt *store.RefreshToken, k familyKey, now int64) {
	if s.cutOff(rt, now) {
		s.revokeFamily(k, unixNano(rt.ExpiresAt), now)
	}
}
