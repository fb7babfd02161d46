package redis

import (
	"slices"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/latchkey-dev/latchkey/server/store"
)

// DefaultKnownRecords is how many records of codes and refresh tokens a Store remembers by
// default (Options.KnownRecords): a few megabytes.
const DefaultKnownRecords = 16384

// known is the Store's cache of the records it stored itself (store.KnownRecords): a code
// until it is taken, a refresh token until it is rotated, each until its lease ends, the
// least recently used dropped first when it is full. A nil *known knows nothing.
type known struct {
	records *lru.Cache[store.Hash, knownRecord]
}

// knownRecord is a code or a refresh token and the end of its lease (Unix ns).
type knownRecord struct {
	code    *store.Code
	refresh *store.RefreshToken
	expires int64
}

// newKnown returns a cache of size records; size <= 0 is none.
func newKnown(size int) *known {
	if size <= 0 {
		return nil
	}
	c, err := lru.New[store.Hash, knownRecord](size)
	if err != nil {
		return nil // a positive size cannot fail
	}
	return &known{records: c}
}

func (k *known) putCode(h store.Hash, c store.Code, expires time.Time) {
	if k == nil {
		return
	}
	c.Scopes = slices.Clone(c.Scopes)
	c.Resources = slices.Clone(c.Resources)
	k.records.Add(h, knownRecord{code: &c, expires: expires.UnixNano()})
}

func (k *known) putRefresh(h store.Hash, rt store.RefreshToken) {
	if k == nil || rt.ExpiresAt.IsZero() {
		return
	}
	rt.Scopes = slices.Clone(rt.Scopes)
	rt.Resources = slices.Clone(rt.Resources)
	k.records.Add(h, knownRecord{refresh: &rt, expires: rt.ExpiresAt.UnixNano()})
}

func (k *known) forget(h store.Hash) {
	if k != nil {
		k.records.Remove(h)
	}
}

// get returns the live record under h.
func (k *known) get(h store.Hash) (knownRecord, bool) {
	if k == nil {
		return knownRecord{}, false
	}
	r, ok := k.records.Get(h)
	if !ok {
		return knownRecord{}, false
	}
	if r.expires <= time.Now().UnixNano() {
		k.records.Remove(h)
		return knownRecord{}, false
	}
	return r, true
}

// KnownCode returns the code under h if this Store stored it and has not seen it taken; see
// store.KnownRecords. It sends nothing to Redis.
func (s *Store) KnownCode(h store.Hash) (store.Code, bool) {
	r, ok := s.known.get(h)
	if !ok || r.code == nil {
		return store.Code{}, false
	}
	c := *r.code
	c.Scopes = slices.Clone(c.Scopes)
	c.Resources = slices.Clone(c.Resources)
	return c, true
}

// KnownRefresh returns the refresh token under h if this Store stored it (CreateRefresh,
// RedeemCode, or as the next token of RotateRefresh) and has not rotated it since; see
// store.KnownRecords. It sends nothing to Redis.
func (s *Store) KnownRefresh(h store.Hash) (store.RefreshToken, bool) {
	r, ok := s.known.get(h)
	if !ok || r.refresh == nil {
		return store.RefreshToken{}, false
	}
	rt := *r.refresh
	rt.Scopes = slices.Clone(rt.Scopes)
	rt.Resources = slices.Clone(rt.Resources)
	return rt, true
}
