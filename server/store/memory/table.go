package memory

import (
	"encoding/binary"
	"slices"

	"github.com/latchkey-dev/latchkey/server/store"
)

// refreshSlot is a refresh token's record and its key: 96 bytes without a pointer.
type refreshSlot struct {
	key store.Hash
	rec refreshRecord
}

// freeSlot marks a slot of the slab that holds no record.
const freeSlot = zeroTime

// refreshTable holds a shard's refresh tokens by hash, pointer-free, in a slab of records
// indexed by an open-addressing hash table of 4-byte slab positions (linear probing, deletion
// by backward shift, kept at most 3/4 full). A Go map of the same records costs about twice
// the memory at a million entries (a 96-byte slot at 45-90% load, plus the deadlines heap
// repeating the 32-byte key); this costs the 96-byte record, 5-11 bytes of index and a
// 16-byte deadline.
//
// Keys are SHA-256 hashes of secrets the server generated, so their bits are uniform and
// nobody can choose them to collide: the index uses 8 of their bytes as the hash.
type refreshTable struct {
	index []uint32 // slab position+1; 0 is an empty bucket; the length is a power of two
	slab  []refreshSlot
	free  []uint32 // free slab positions
	n     int
	exp   deadlines[uint32] // slab positions; stale once a slot is freed or reused
}

func bucketOf(h *store.Hash, mask int) int { return int(binary.LittleEndian.Uint64(h[8:16])) & mask }

// find returns the slab position of h.
func (t *refreshTable) find(h *store.Hash) (uint32, bool) {
	if t.n == 0 {
		return 0, false
	}
	mask := len(t.index) - 1
	for i := bucketOf(h, mask); ; i = (i + 1) & mask {
		p := t.index[i]
		if p == 0 {
			return 0, false
		}
		if t.slab[p-1].key == *h {
			return p - 1, true
		}
	}
}

// get returns h's record.
func (t *refreshTable) get(h *store.Hash) (refreshRecord, bool) {
	p, ok := t.find(h)
	if !ok {
		return refreshRecord{}, false
	}
	return t.slab[p].rec, true
}

// insert stores a record under h, which must be absent, and schedules its expiry.
func (t *refreshTable) insert(h *store.Hash, r refreshRecord) {
	if (t.n+1)*4 > len(t.index)*3 {
		t.reindex(max(64, 2*len(t.index)))
	}
	var p uint32
	if n := len(t.free); n > 0 {
		p = t.free[n-1]
		t.free = t.free[:n-1]
		t.slab[p] = refreshSlot{key: *h, rec: r}
	} else {
		p = uint32(len(t.slab))
		t.slab = append(t.slab, refreshSlot{key: *h, rec: r})
	}
	t.place(h, p)
	t.n++
	t.exp.push(r.expires, p)
}

func (t *refreshTable) place(h *store.Hash, p uint32) {
	mask := len(t.index) - 1
	i := bucketOf(h, mask)
	for t.index[i] != 0 {
		i = (i + 1) & mask
	}
	t.index[i] = p + 1
}

// remove deletes the record at slab position p and returns it.
func (t *refreshTable) remove(p uint32) refreshRecord {
	mask := len(t.index) - 1
	i := bucketOf(&t.slab[p].key, mask)
	for t.index[i] != p+1 {
		i = (i + 1) & mask
	}
	// Backward shift: move each later entry of the run into the hole, unless its home bucket
	// lies cyclically in (hole, its bucket].
	for j := i; ; {
		j = (j + 1) & mask
		q := t.index[j]
		if q == 0 {
			break
		}
		k := bucketOf(&t.slab[q-1].key, mask)
		if (i < j && (k <= i || k > j)) || (i > j && k <= i && k > j) {
			t.index[i] = q
			i = j
		}
	}
	t.index[i] = 0
	r := t.slab[p].rec
	t.slab[p] = refreshSlot{rec: refreshRecord{expires: freeSlot}}
	t.free = append(t.free, p)
	t.n--
	return r
}

func (t *refreshTable) reindex(size int) {
	t.index = make([]uint32, size)
	for p := range t.slab {
		if t.slab[p].rec.expires != freeSlot {
			t.place(&t.slab[p].key, uint32(p))
		}
	}
}

// compact gives memory back after a wave of expiry: it moves the records to a slab of their
// size and rebuilds the index and the deadlines.
func (t *refreshTable) compact() {
	if len(t.slab) <= 1024 || t.n >= len(t.slab)/4 {
		return
	}
	slab := make([]refreshSlot, 0, 2*t.n)
	for _, s := range t.slab {
		if s.rec.expires != freeSlot {
			slab = append(slab, s)
		}
	}
	t.slab, t.free = slab, nil
	size := 64
	for size*3 < len(slab)*4*2 {
		size *= 2
	}
	t.reindex(size)
	// Sorted by lease end is a valid min-heap.
	exp := make(deadlines[uint32], len(slab))
	for p, s := range slab {
		exp[p] = deadline[uint32]{at: s.rec.expires, key: uint32(p)}
	}
	slices.SortFunc(exp, func(a, b deadline[uint32]) int { return cmpInt64(a.at, b.at) })
	t.exp = exp
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
