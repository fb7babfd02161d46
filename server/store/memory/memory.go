package memory

import (
	"context"
	"encoding/base64"
	"hash/maphash"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey-dev/latchkey/server/store"
)

// DefaultJanitorInterval is how often Start's janitor drops expired records.
const DefaultJanitorInterval = 10 * time.Second

const (
	// maxDefaultShards caps the default shard count: each shard interns its own copy of the
	// client IDs, subjects and scope sets it holds.
	maxDefaultShards = 16
	// lazyBatch is how many expired deadlines a write pops from its shard: more than a write
	// adds, so writes alone keep up with expiry even without the janitor.
	lazyBatch = 8
	// sweepBatch is how many the janitor pops per lock hold.
	sweepBatch = 1024
)

type options struct {
	now      func() time.Time
	interval time.Duration
	shards   int
}

// Option configures New.
type Option func(*options)

// WithClock makes the store read the time from now (tests use a fake clock). Leases,
// rotation grace and counter windows all follow it.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithJanitorInterval sets how often Start's janitor runs (DefaultJanitorInterval otherwise).
func WithJanitorInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.interval = d
		}
	}
}

// withShards sets the number of shards, rounded up to a power of two (tests, benchmarks); the
// default is GOMAXPROCS rounded up, at most maxDefaultShards.
func withShards(n int) Option { return func(o *options) { o.shards = n } }

// Store is the in-memory leased store. It is safe for concurrent use; New returns it ready,
// and Start runs its janitor.
type Store struct {
	now      func() time.Time
	interval time.Duration
	mask     uint64
	shards   []shard
	families []familyShard
	seed     maphash.Seed
	b64      *base64.Encoding
	// maxExpiry is the latest ExpiresAt of any refresh token stored: a family revocation is
	// remembered at least that long, so no token of the family outlives it.
	maxExpiry atomic.Int64
	// uses are the noted credential uses (credentialuse.go).
	uses credentialUses
	// logouts is the queue of back-channel logout deliveries (logout.go).
	logouts logoutQueue
	// lists are the store.Lists (lists.go).
	lists lists
	// cutoffs are the grant cutoffs (cutoff.go).
	cutoffs cutoffs
	// devices are the device authorizations (device.go).
	devices deviceGrants
}

var _ store.Store = (*Store)(nil)

type codeRecord struct {
	code    store.Code
	expires int64
	used    bool
}

type recordKey struct {
	kind uint32 // interned in the shard's strs
	hash store.Hash
}

type record struct {
	value   []byte
	expires int64
}

type counter struct {
	n       int64
	expires int64
}

// shard holds the records whose key falls in it, their deadlines and its interning tables.
// Everything is guarded by mu.
type shard struct {
	mu sync.Mutex

	codes     map[store.Hash]codeRecord
	codesPeak int
	codesExp  deadlines[store.Hash]

	refresh refreshTable

	// successors are the sealed successors that rotations of the shard's tokens kept, under
	// the old token's hash, for the rotation's grace only (successor.go).
	successors     map[store.Hash]successor
	successorsPeak int
	successorsExp  deadlines[store.Hash]

	records     map[recordKey]record
	recordsPeak int
	recordsExp  deadlines[recordKey]

	counters     map[store.Hash]counter
	countersPeak int
	countersExp  deadlines[store.Hash]

	jtis     map[string]int64
	jtisPeak int
	jtisExp  deadlines[string]

	throttles     map[store.Hash]throttle
	throttlesPeak int
	throttlesExp  deadlines[store.Hash]

	limiters     map[store.Hash]limiter
	limitersPeak int
	limitersExp  deadlines[store.Hash]

	strs   internTable[struct{}] // client IDs, subjects, odd family IDs, record kinds
	scopes internTable[[]string]
	buf    []byte

	_ [64]byte // keeps the next shard's mutex off this shard's cache lines
}

// New returns an empty store.
func New(opts ...Option) *Store {
	o := options{now: time.Now, interval: DefaultJanitorInterval, shards: min(runtime.GOMAXPROCS(0), maxDefaultShards)}
	for _, opt := range opts {
		opt(&o)
	}
	n := 1
	for n < o.shards && n < 256 {
		n *= 2
	}
	s := &Store{
		now:      o.now,
		interval: o.interval,
		mask:     uint64(n - 1),
		shards:   make([]shard, n),
		families: make([]familyShard, n),
		seed:     maphash.MakeSeed(),
		b64:      base64.RawURLEncoding.Strict(),
	}
	s.maxExpiry.Store(zeroTime)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.codes = map[store.Hash]codeRecord{}
		sh.successors = map[store.Hash]successor{}
		sh.records = map[recordKey]record{}
		sh.counters = map[store.Hash]counter{}
		sh.jtis = map[string]int64{}
		sh.throttles = map[store.Hash]throttle{}
		sh.limiters = map[store.Hash]limiter{}
		sh.strs = newInternTable[struct{}]()
		sh.scopes = newInternTable[[]string]()
	}
	for i := range s.families {
		s.families[i].revoked = map[familyKey]int64{}
	}
	return s
}

func (s *Store) nowNano() int64 { return s.now().UnixNano() }

func (s *Store) shardIndex(h store.Hash) uint64 { return uint64(h[0]) & s.mask }

func (s *Store) shardOf(h store.Hash) *shard { return &s.shards[s.shardIndex(h)] }

// Start runs the janitor until ctx is done, then returns nil. Every interval it drops the
// records whose lease ended, a batch per lock hold, and gives back memory after large waves
// of expiry. The store is correct without it (an expired record is never returned, and writes
// drop a few expired records each), but idle shards keep their garbage until it runs.
// Start has the signature of a controller-runtime Runnable; see NeedLeaderElection.
func (s *Store) Start(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.sweep()
		}
	}
}

// NeedLeaderElection is false: as a manager Runnable, the janitor runs on every replica.
func (*Store) NeedLeaderElection() bool { return false }

// sweep drops every record whose lease ended.
func (s *Store) sweep() {
	s.devices.sweep(s.nowNano())
	for i := range s.shards {
		sh := &s.shards[i]
		for {
			sh.mu.Lock()
			n := sh.expire(s.nowNano(), sweepBatch)
			if n < sweepBatch {
				sh.shrink()
			}
			sh.mu.Unlock()
			if n < sweepBatch {
				break
			}
		}
	}
	s.sweepLists()
	for i := range s.families {
		f := &s.families[i]
		for {
			f.mu.Lock()
			n := f.expire(s.nowNano(), sweepBatch)
			if n < sweepBatch {
				f.exp.shrink()
			}
			f.mu.Unlock()
			if n < sweepBatch {
				break
			}
		}
	}
}

// expire pops up to limit due deadlines and deletes the records whose lease ended; it
// returns how many it popped.
func (sh *shard) expire(now int64, limit int) int {
	n := 0
	for ; n < limit && sh.refresh.exp.due(now); n++ {
		p := sh.refresh.exp.pop().key
		// The slot may since have been freed (freeSlot) or reused by a later record.
		if r := sh.refresh.slab[p].rec; r.expires != freeSlot && r.expires <= now {
			sh.releaseRefresh(sh.refresh.remove(p))
		}
	}
	for ; n < limit && sh.successorsExp.due(now); n++ {
		k := sh.successorsExp.pop().key
		if r, ok := sh.successors[k]; ok && r.until <= now {
			delete(sh.successors, k)
		}
	}
	for ; n < limit && sh.codesExp.due(now); n++ {
		k := sh.codesExp.pop().key
		if r, ok := sh.codes[k]; ok && r.expires <= now {
			delete(sh.codes, k)
		}
	}
	for ; n < limit && sh.recordsExp.due(now); n++ {
		k := sh.recordsExp.pop().key
		if r, ok := sh.records[k]; ok && r.expires <= now {
			sh.strs.release(k.kind)
			delete(sh.records, k)
		}
	}
	for ; n < limit && sh.countersExp.due(now); n++ {
		k := sh.countersExp.pop().key
		if c, ok := sh.counters[k]; ok && c.expires <= now {
			delete(sh.counters, k)
		}
	}
	for ; n < limit && sh.jtisExp.due(now); n++ {
		k := sh.jtisExp.pop().key
		if until, ok := sh.jtis[k]; ok && until <= now {
			delete(sh.jtis, k)
		}
	}
	// Throttles and limiters queue one deadline per key (their leases move on with traffic):
	// one that comes due before the lease ends is queued again at the lease's end.
	for ; n < limit && sh.throttlesExp.due(now); n++ {
		d := sh.throttlesExp.pop()
		t, ok := sh.throttles[d.key]
		switch {
		case !ok || t.queued != d.at: // stale: the key has another deadline queued, or none
		case t.expires() <= now:
			delete(sh.throttles, d.key)
		default:
			t.queued = t.expires()
			sh.throttles[d.key] = t
			sh.throttlesExp.push(t.queued, d.key)
		}
	}
	for ; n < limit && sh.limitersExp.due(now); n++ {
		d := sh.limitersExp.pop()
		l, ok := sh.limiters[d.key]
		switch {
		case !ok || l.queued != d.at:
		case l.full <= now:
			delete(sh.limiters, d.key)
		default:
			l.queued = l.full
			sh.limiters[d.key] = l
			sh.limitersExp.push(l.queued, d.key)
		}
	}
	return n
}

// shrink rebuilds the maps and heaps that a wave of expiry left mostly empty: Go maps never
// give memory back on delete.
func (sh *shard) shrink() {
	sh.refresh.compact()
	sh.codes = shrinkMap(sh.codes, &sh.codesPeak)
	sh.successors = shrinkMap(sh.successors, &sh.successorsPeak)
	sh.successorsExp.shrink()
	sh.records = shrinkMap(sh.records, &sh.recordsPeak)
	sh.counters = shrinkMap(sh.counters, &sh.countersPeak)
	sh.jtis = shrinkMap(sh.jtis, &sh.jtisPeak)
	sh.throttles = shrinkMap(sh.throttles, &sh.throttlesPeak)
	sh.limiters = shrinkMap(sh.limiters, &sh.limitersPeak)
	sh.refresh.exp.shrink()
	sh.codesExp.shrink()
	sh.recordsExp.shrink()
	sh.countersExp.shrink()
	sh.jtisExp.shrink()
	sh.throttlesExp.shrink()
	sh.limitersExp.shrink()
}

func shrinkMap[K comparable, V any](m map[K]V, peak *int) map[K]V {
	if *peak <= 1024 || len(m) >= *peak/4 {
		return m
	}
	n := make(map[K]V, len(m))
	for k, v := range m {
		n[k] = v
	}
	*peak = len(n)
	return n
}

func notePeak(n int, peak *int) {
	if n > *peak {
		*peak = n
	}
}

// PutCode stores a code under its hash for ttl. A hash that holds a code whose lease has not
// ended is ErrConflict (a used code must never be replaced by an unused one).
func (s *Store) PutCode(ctx context.Context, h store.Hash, c store.Code, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.nowNano()
	c.Scopes = slices.Clone(c.Scopes)
	c.Resources = slices.Clone(c.Resources)
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.codes[h]; ok && old.expires > now {
		return store.ErrConflict
	}
	sh.expire(now, lazyBatch)
	if ttl <= 0 {
		return nil
	}
	exp := leaseEnd(now, ttl)
	sh.codes[h] = codeRecord{code: c, expires: exp}
	notePeak(len(sh.codes), &sh.codesPeak)
	sh.codesExp.push(exp, h)
	return nil
}

// TakeCode marks the code of clientID used and returns it; see store.Codes.
func (s *Store) TakeCode(ctx context.Context, h store.Hash, clientID string) (store.Code, error) {
	if err := ctx.Err(); err != nil {
		return store.Code{}, err
	}
	now := s.nowNano()
	sh := s.shardOf(h)
	sh.mu.Lock()
	r, ok := sh.codes[h]
	if !ok || r.expires <= now || r.code.ClientID != clientID {
		sh.mu.Unlock()
		return store.Code{}, store.ErrNotFound
	}
	used := r.used
	if !used {
		r.used = true
		sh.codes[h] = r
	}
	sh.mu.Unlock()
	c := r.code
	c.Scopes = slices.Clone(c.Scopes)
	c.Resources = slices.Clone(c.Resources)
	if used {
		return c, store.ErrAlreadyUsed
	}
	return c, nil
}

// RevokeToken remembers jti as revoked until until (the later of two revocations wins).
func (s *Store) RevokeToken(ctx context.Context, jti string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.nowNano()
	u := unixNano(until)
	sh := &s.shards[maphash.String(s.seed, jti)&s.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.expire(now, lazyBatch)
	if u <= now {
		return nil
	}
	if old, ok := sh.jtis[jti]; ok && old >= u {
		return nil
	}
	jti = strings.Clone(jti)
	sh.jtis[jti] = u
	notePeak(len(sh.jtis), &sh.jtisPeak)
	sh.jtisExp.push(u, jti)
	return nil
}

// TokenRevoked reports whether jti is revoked.
func (s *Store) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := s.nowNano()
	sh := &s.shards[maphash.String(s.seed, jti)&s.mask]
	sh.mu.Lock()
	until, ok := sh.jtis[jti]
	sh.mu.Unlock()
	return ok && until > now, nil
}

// PutRecord stores a copy of value under kind and h for ttl, replacing any record there.
func (s *Store) PutRecord(ctx context.Context, kind string, h store.Hash, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.nowNano()
	value = slices.Clone(value)
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.expire(now, lazyBatch)
	if ttl <= 0 {
		if kid, ok := sh.strs.lookup(kind); ok {
			sh.deleteRecord(recordKey{kind: kid, hash: h})
		}
		return nil
	}
	kid, ok := sh.strs.acquire(kind)
	if !ok {
		kid = sh.strs.add(strings.Clone(kind), struct{}{})
	}
	k := recordKey{kind: kid, hash: h}
	sh.deleteRecord(k) // the record it replaces, if any, releases its reference
	exp := leaseEnd(now, ttl)
	sh.records[k] = record{value: value, expires: exp}
	notePeak(len(sh.records), &sh.recordsPeak)
	sh.recordsExp.push(exp, k)
	return nil
}

// GetRecord returns a copy of the record's value, or ErrNotFound.
func (s *Store) GetRecord(ctx context.Context, kind string, h store.Hash) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.nowNano()
	sh := s.shardOf(h)
	sh.mu.Lock()
	kid, ok := sh.strs.lookup(kind)
	var r record
	if ok {
		r, ok = sh.records[recordKey{kind: kid, hash: h}]
	}
	sh.mu.Unlock()
	if !ok || r.expires <= now {
		return nil, store.ErrNotFound
	}
	// The stored slice is never written after PutRecord, so it is copied outside the lock.
	return slices.Clone(r.value), nil
}

// DeleteRecord drops the record; deleting a missing record is not an error.
func (s *Store) DeleteRecord(ctx context.Context, kind string, h store.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if kid, ok := sh.strs.lookup(kind); ok {
		sh.deleteRecord(recordKey{kind: kid, hash: h})
	}
	return nil
}

// TakeRecord returns the record's value and deletes it, or ErrNotFound; see store.Records.
func (s *Store) TakeRecord(ctx context.Context, kind string, h store.Hash) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.nowNano()
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	kid, ok := sh.strs.lookup(kind)
	if !ok {
		return nil, store.ErrNotFound
	}
	k := recordKey{kind: kid, hash: h}
	r, ok := sh.records[k]
	if !ok {
		return nil, store.ErrNotFound
	}
	sh.deleteRecord(k)
	if r.expires <= now {
		return nil, store.ErrNotFound
	}
	return r.value, nil // no one else holds the stored slice any more
}

func (sh *shard) deleteRecord(k recordKey) {
	if _, ok := sh.records[k]; ok {
		delete(sh.records, k)
		sh.strs.release(k.kind)
	}
}

// Incr adds one to the counter; see store.Counters.
func (s *Store) Incr(ctx context.Context, key store.Hash, window time.Duration) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := s.nowNano()
	sh := s.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.expire(now, lazyBatch)
	c, ok := sh.counters[key]
	if !ok || c.expires <= now {
		c = counter{expires: leaseEnd(now, max(window, time.Millisecond))}
		sh.countersExp.push(c.expires, key)
	}
	c.n++
	sh.counters[key] = c
	notePeak(len(sh.counters), &sh.countersPeak)
	return c.n, nil
}

// Reset drops the counter.
func (s *Store) Reset(ctx context.Context, key store.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := s.shardOf(key)
	sh.mu.Lock()
	delete(sh.counters, key)
	sh.mu.Unlock()
	return nil
}

// Ping is nil: memory is always reachable (unless ctx is done).
func (*Store) Ping(ctx context.Context) error { return ctx.Err() }
