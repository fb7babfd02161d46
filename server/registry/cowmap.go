package registry

import (
	"hash/maphash"
	"iter"
)

// shardCount is the number of shards of a cowMap: a write copies one shard, about
// len/shardCount entries (1,000 at a million), and the table of shardCount pointers.
const shardCount = 1024

// cowMap is a copy-on-write map split into shards by the hash of the key. A cowMap reachable
// from a published Snapshot is never changed: a transaction changes its own copy through a
// cowWriter, which copies the shard table once and each shard it changes once, so publishing a
// change costs the shards it touched, not the whole map.
type cowMap[K comparable, V any] struct {
	seed   maphash.Seed
	shards *[shardCount]map[K]V // a nil shard is empty
	n      int
}

func newCowMap[K comparable, V any](seed maphash.Seed) cowMap[K, V] {
	return cowMap[K, V]{seed: seed, shards: new([shardCount]map[K]V)}
}

func (m *cowMap[K, V]) shard(k K) int { return int(maphash.Comparable(m.seed, k) % shardCount) }

func (m *cowMap[K, V]) get(k K) (V, bool) {
	v, ok := m.shards[m.shard(k)][k]
	return v, ok
}

func (m *cowMap[K, V]) len() int { return m.n }

// all yields every entry, in no particular order.
func (m *cowMap[K, V]) all() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for _, s := range m.shards {
			for k, v := range s {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}

// values yields every value, in no particular order.
func (m *cowMap[K, V]) values() iter.Seq[V] {
	return func(yield func(V) bool) {
		for _, v := range m.all() {
			if !yield(v) {
				return
			}
		}
	}
}

// cowWriter changes the cowMap of one transaction: the first change copies the shard table, the
// first change of a shard copies that shard; later changes of the transaction write in place.
type cowWriter[K comparable, V any] struct {
	m     *cowMap[K, V]
	table bool                    // the shard table is the transaction's own
	owned [shardCount / 64]uint64 // which shards are the transaction's own
}

func (w *cowWriter[K, V]) writable(i int) map[K]V {
	if !w.table {
		t := *w.m.shards
		w.m.shards, w.table = &t, true
	}
	if bit := uint64(1) << (i % 64); w.owned[i/64]&bit == 0 {
		w.owned[i/64] |= bit
		old := w.m.shards[i]
		s := make(map[K]V, len(old)+1)
		for k, v := range old {
			s[k] = v
		}
		w.m.shards[i] = s
	}
	return w.m.shards[i]
}

func (w *cowWriter[K, V]) set(k K, v V) {
	s := w.writable(w.m.shard(k))
	if _, had := s[k]; !had {
		w.m.n++
	}
	s[k] = v
}

func (w *cowWriter[K, V]) del(k K) {
	i := w.m.shard(k)
	if _, ok := w.m.shards[i][k]; !ok {
		return
	}
	delete(w.writable(i), k)
	w.m.n--
}
