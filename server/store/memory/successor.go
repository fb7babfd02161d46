package memory

import (
	"slices"

	"github.com/latchkey-dev/latchkey/server/store"
)

// successor is what a rotation kept beside the old token's record (store.RotateRefresh's
// sealed): the new token's hash and the new token sealed for the old one's holder, until the
// rotation's grace ends. It lives in the old token's shard, under the old token's hash.
type successor struct {
	next   store.Hash
	sealed []byte
	until  int64
}

// keepSuccessor keeps sealed under old until until; sh is old's shard, locked. A token is
// rotated once, so an entry is written once and never changed.
func (sh *shard) keepSuccessor(old, next store.Hash, sealed []byte, until int64) {
	sh.successors[old] = successor{next: next, sealed: slices.Clone(sealed), until: until}
	notePeak(len(sh.successors), &sh.successorsPeak)
	sh.successorsExp.push(until, old)
}

// presentedWithinGrace applies the rule for a token old (of family k, whose lease ends at
// expires) presented again within grace of its rotation: a *store.SuccessorError with the
// kept successor while that is active; ErrReused, the family revoked, once it was rotated (or
// its lease ended); ErrConflict when the rotation kept nothing (or grace ended for it). The
// caller holds no shard lock. The entry never changes and a token's rotation is one way, so
// reading the two shards one after the other decides as one step would.
func (s *Store) presentedWithinGrace(old store.Hash, k familyKey, expires, now int64) error {
	sh := s.shardOf(old)
	sh.mu.Lock()
	kept, ok := sh.successors[old]
	sh.mu.Unlock()
	if !ok || kept.until <= now {
		return store.ErrConflict
	}
	sn := s.shardOf(kept.next)
	sn.mu.Lock()
	r, ok := sn.refresh.get(&kept.next)
	sn.mu.Unlock()
	if ok && r.expires > now && r.rotated == notRotated {
		return &store.SuccessorError{Sealed: slices.Clone(kept.sealed)}
	}
	s.revokeFamily(k, expires, now)
	return store.ErrReused
}
