package registry

import (
	"hash/maphash"
	"time"
)

// claimant is a value that claims a name other values may claim too (a client ID, a scope name,
// a username, a workload identity): the one that Precedes holds it.
type claimant interface {
	comparable
	claimOrder() (created time.Time, source string)
}

func precedes[V claimant](a, b V) bool {
	at, as := a.claimOrder()
	bt, bs := b.claimOrder()
	return Precedes(at, as, bt, bs)
}

// claimIndex indexes values by the name they claim: the holder of each name, and the other
// claimants of the contested names (usually none). Adding or removing a claim costs the
// claimants of its name, never a scan of the values.
type claimIndex[K comparable, V claimant] struct {
	holder cowMap[K, V]
	others cowMap[K, []V] // the claimants that do not hold the name, in no order
}

func newClaimIndex[K comparable, V claimant](seed maphash.Seed) claimIndex[K, V] {
	return claimIndex[K, V]{holder: newCowMap[K, V](seed), others: newCowMap[K, []V](seed)}
}

// claims returns the holder of the name and then the others.
func (x *claimIndex[K, V]) claims(k K) (holder V, others []V, ok bool) {
	holder, ok = x.holder.get(k)
	if ok {
		others, _ = x.others.get(k)
	}
	return holder, others, ok
}

// claimWriter changes the claimIndex of one transaction.
type claimWriter[K comparable, V claimant] struct {
	holder cowWriter[K, V]
	others cowWriter[K, []V]
}

func (w *claimWriter[K, V]) init(x *claimIndex[K, V]) {
	w.holder.m, w.others.m = &x.holder, &x.others
}

// add adds v's claim of k.
func (w *claimWriter[K, V]) add(k K, v V) {
	h, ok := w.holder.m.get(k)
	switch {
	case !ok:
		w.holder.set(k, v)
	case precedes(v, h):
		w.holder.set(k, v)
		w.addOther(k, h)
	default:
		w.addOther(k, v)
	}
}

func (w *claimWriter[K, V]) addOther(k K, v V) {
	os, _ := w.others.m.get(k)
	w.others.set(k, append(os[:len(os):len(os)], v)) // a new array: os may be published
}

// remove removes v's claim of k (v as added); the next claimant, if any, takes the name over.
func (w *claimWriter[K, V]) remove(k K, v V) {
	h, ok := w.holder.m.get(k)
	if !ok {
		return
	}
	os, _ := w.others.m.get(k)
	if h != v {
		for i, o := range os {
			if o == v {
				w.setOthers(k, append(os[:i:i], os[i+1:]...))
				return
			}
		}
		return
	}
	if len(os) == 0 {
		w.holder.del(k)
		return
	}
	best := 0
	for i, o := range os {
		if precedes(o, os[best]) {
			best = i
		}
	}
	w.holder.set(k, os[best])
	w.setOthers(k, append(os[:best:best], os[best+1:]...))
}

func (w *claimWriter[K, V]) setOthers(k K, os []V) {
	if len(os) == 0 {
		w.others.del(k)
		return
	}
	w.others.set(k, os)
}
