package memory

import (
	"context"
	"slices"

	"github.com/latchkey-dev/latchkey/server/store"
)

// KnownCode returns the code under h while its lease lasts (used or not); see
// store.KnownRecords: the memory store knows every record.
func (s *Store) KnownCode(h store.Hash) (store.Code, bool) {
	now := s.nowNano()
	sh := s.shardOf(h)
	sh.mu.Lock()
	r, ok := sh.codes[h]
	sh.mu.Unlock()
	if !ok || r.expires <= now {
		return store.Code{}, false
	}
	c := r.code
	c.Scopes = slices.Clone(c.Scopes)
	c.Resources = slices.Clone(c.Resources)
	return c, true
}

// KnownRefresh returns the refresh token under h while its lease lasts (rotated, revoked or
// not); see store.KnownRecords.
func (s *Store) KnownRefresh(h store.Hash) (store.RefreshToken, bool) {
	now := s.nowNano()
	sh := s.shardOf(h)
	sh.mu.Lock()
	r, ok := sh.refresh.get(&h)
	if !ok || r.expires <= now {
		sh.mu.Unlock()
		return store.RefreshToken{}, false
	}
	v := sh.view(r)
	sh.mu.Unlock()
	return s.token(&v), true
}

// lockPair locks the shards of a and b in index order (so two callers cannot deadlock) and
// returns them and the function that unlocks them.
func (s *Store) lockPair(a, b store.Hash) (sa, sb *shard, unlock func()) {
	ia, ib := s.shardIndex(a), s.shardIndex(b)
	sa, sb = &s.shards[ia], &s.shards[ib]
	switch {
	case ia == ib:
		sa.mu.Lock()
	case ia < ib:
		sa.mu.Lock()
		sb.mu.Lock()
	default:
		sb.mu.Lock()
		sa.mu.Lock()
	}
	return sa, sb, func() {
		sa.mu.Unlock()
		if ia != ib {
			sb.mu.Unlock()
		}
	}
}

// RedeemCode takes the code of clientID and creates the refresh token rt under rh in one step,
// the shards of both hashes locked together; see store.Codes.
func (s *Store) RedeemCode(ctx context.Context, h store.Hash, clientID string, rh store.Hash, rt store.RefreshToken) (store.Code, error) {
	if err := ctx.Err(); err != nil {
		return store.Code{}, err
	}
	now := s.nowNano()
	exp := unixNano(rt.ExpiresAt)
	k := s.parseFamily(rt.FamilyID)
	if exp > now {
		s.noteExpiry(exp)
	}
	sa, sb, unlock := s.lockPair(h, rh)
	r, ok := sa.codes[h]
	if !ok || r.expires <= now || r.code.ClientID != clientID {
		unlock()
		return store.Code{}, store.ErrNotFound
	}
	c := r.code
	c.Scopes = slices.Clone(c.Scopes)
	c.Resources = slices.Clone(c.Resources)
	if r.used {
		unlock()
		return c, store.ErrAlreadyUsed
	}
	if x, ok := sb.refresh.get(&rh); ok && x.expires > now {
		unlock()
		return store.Code{}, store.ErrConflict
	}
	r.used = true
	sa.codes[h] = r
	if exp > now {
		sb.expire(now, lazyBatch)
		sb.setRefresh(&rh, sb.encodeRefresh(&rt, k, rt.FamilyID, exp))
	}
	unlock()
	if exp > now {
		s.extendRevocation(k, exp, now)
		s.cutOffOnCreate(&rt, k, now)
	}
	return c, nil
}
