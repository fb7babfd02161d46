package memory

import (
	"encoding/binary"
	"math"
	"time"
)

// zeroTime stands for time.Time{} in the int64 fields (its UnixNano is undefined).
const zeroTime = math.MinInt64

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return zeroTime
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == zeroTime {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// leaseEnd is now+ttl, saturated at the largest int64.
func leaseEnd(now int64, ttl time.Duration) int64 {
	if ttl > 0 && now > math.MaxInt64-int64(ttl) {
		return math.MaxInt64
	}
	return now + int64(ttl)
}

// deadline is one entry of a deadlines heap: the key of a record and when its lease ends.
type deadline[K any] struct {
	at  int64
	key K
}

// deadlines is a binary min-heap of lease ends. It is written by hand rather than with
// container/heap so that pushing and popping allocate nothing (container/heap boxes every
// element in an interface). Entries go stale when their record is deleted or replaced early;
// whoever pops one checks the record's own lease before deleting it.
type deadlines[K any] []deadline[K]

func (h *deadlines[K]) push(at int64, key K) {
	*h = append(*h, deadline[K]{at: at, key: key})
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

// due reports whether the earliest entry's lease has ended by now.
func (h deadlines[K]) due(now int64) bool { return len(h) > 0 && h[0].at <= now }

func (h *deadlines[K]) pop() deadline[K] {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = deadline[K]{}
	s = s[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s[r].at < s[l].at {
			m = r
		}
		if s[i].at <= s[m].at {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// shrink gives back a backing array that is mostly empty after a wave of expiries.
func (h *deadlines[K]) shrink() {
	if c := cap(*h); c > 1024 && len(*h) < c/4 {
		*h = append(make(deadlines[K], 0, 2*len(*h)), *h...)
	}
}

// interned is one value of an interning table.
type interned[V any] struct {
	key  string
	val  V
	refs int32
}

// internTable maps values held by many records (client IDs, subjects, scope sets, record
// kinds) to small integer IDs, so that records hold a uint32 instead of a string or a slice and
// stay pointer-free. IDs are reference counted: a record takes a reference when stored and
// releases it when deleted, and an ID whose count drops to zero is reused. ID 0 is the empty
// value and is never counted.
type internTable[V any] struct {
	ids  map[string]uint32
	vals []interned[V]
	free []uint32
}

func newInternTable[V any]() internTable[V] {
	return internTable[V]{ids: map[string]uint32{}, vals: make([]interned[V], 1)}
}

// acquire takes a reference to key's ID when key is known.
func (t *internTable[V]) acquire(key string) (uint32, bool) {
	if key == "" {
		return 0, true
	}
	id, ok := t.ids[key]
	if ok {
		t.vals[id].refs++
	}
	return id, ok
}

// acquireBytes is acquire for a key being built in a buffer (the lookup does not allocate).
func (t *internTable[V]) acquireBytes(key []byte) (uint32, bool) {
	if len(key) == 0 {
		return 0, true
	}
	id, ok := t.ids[string(key)]
	if ok {
		t.vals[id].refs++
	}
	return id, ok
}

// add stores a new key (not known, not empty) with one reference.
func (t *internTable[V]) add(key string, val V) uint32 {
	var id uint32
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		id = uint32(len(t.vals))
		t.vals = append(t.vals, interned[V]{})
	}
	t.vals[id] = interned[V]{key: key, val: val, refs: 1}
	t.ids[key] = id
	return id
}

// lookup returns key's ID without taking a reference.
func (t *internTable[V]) lookup(key string) (uint32, bool) {
	if key == "" {
		return 0, true
	}
	id, ok := t.ids[key]
	return id, ok
}

func (t *internTable[V]) release(id uint32) {
	if id == 0 {
		return
	}
	v := &t.vals[id]
	if v.refs--; v.refs > 0 {
		return
	}
	delete(t.ids, v.key)
	*v = interned[V]{}
	t.free = append(t.free, id)
}

func (t *internTable[V]) key(id uint32) string { return t.vals[id].key }
func (t *internTable[V]) val(id uint32) V      { return t.vals[id].val }

// len is the number of live IDs (tests).
func (t *internTable[V]) len() int { return len(t.ids) }

// appendScopesKey encodes a scope set unambiguously (each scope prefixed by its length).
func appendScopesKey(b []byte, scopes []string) []byte {
	for _, s := range scopes {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}
