package registry

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
)

// Registry is the writable holder of the current Snapshot.
type Registry struct {
	cur  atomic.Pointer[Snapshot]
	seed maphash.Seed

	mu         sync.Mutex
	published  *sync.Cond // signalled (with mu) when a committer is done
	pending    []*update  // writes waiting for the next publish
	committing bool       // a writer is publishing; the others' writes wait in pending

	in interner // used by the committing writer only

	nameKey func(string) string // WithClientNameIndex's; nil: no name index
}

// update is one Update call waiting to be published.
type update struct {
	fn   func(*Txn)
	done bool // published (or dropped because fn panicked)
}

// New returns an empty registry.
func New(opts ...Option) *Registry {
	seed := maphash.MakeSeed()
	r := &Registry{seed: seed}
	for _, o := range opts {
		o(r)
	}
	r.published = sync.NewCond(&r.mu)
	s := &Snapshot{
		clients: newCowMap[string, *Client](seed), byID: newClaimIndex[string, *Client](seed),
		scopes: newCowMap[string, *scopeEntry](seed), scopeName: newClaimIndex[string, *scopeEntry](seed),
		users: newCowMap[string, *User](seed), userName: newClaimIndex[string, *User](seed),
		userSub: newClaimIndex[string, *User](seed), origins: newCowMap[string, int](seed),
		subjects: newClaimIndex[subjectPair, *Client](seed), issuers: newCowMap[string, *WorkloadIssuer](seed),
		resources: newCowMap[string, *ProtectedResource](seed), resourceAud: newClaimIndex[string, *ProtectedResource](seed),
		upstreams: newCowMap[string, *UpstreamOIDC](seed), ldaps: newCowMap[string, *UpstreamLDAP](seed),
		github: newCowMap[string, *UpstreamGitHub](seed),
	}
	if r.nameKey != nil {
		s.names, s.nameKey = newClaimIndex[string, *Client](seed), r.nameKey
	}
	r.cur.Store(s)
	return r
}

// Snapshot returns the current snapshot; it never changes, so hold it for a whole request.
func (r *Registry) Snapshot() *Snapshot { return r.cur.Load() }

// Update applies the writes fn makes to tx and publishes them as one snapshot, then returns: a
// reader sees all of them or none. Writes made by concurrent callers while a snapshot is being
// built are applied together, in call order, and published as the next one (group commit), so a
// burst of writes costs one publish. fn must only write to tx (and not keep it). Should fn
// panic, its writes are dropped and the panic goes on in its caller; the writes batched with
// it are published by the next writer.
func (r *Registry) Update(fn func(tx *Txn)) {
	u := &update{fn: fn}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, u)
	for !u.done {
		if r.committing {
			r.published.Wait()
			continue
		}
		r.commit()
	}
}

// commit publishes the pending writes as one snapshot. It is called with mu held, releases it
// while it builds the snapshot, and holds it again when it returns (or panics).
func (r *Registry) commit() {
	batch := r.pending
	r.pending, r.committing = nil, true
	r.mu.Unlock()
	applied := 0
	defer func() {
		r.mu.Lock()
		r.committing = false
		if applied < len(batch) { // batch[applied] panicked: drop it, queue the others again
			batch[applied].done = true
			r.pending = append(append(batch[:applied:applied], batch[applied+1:]...), r.pending...)
		} else {
			for _, u := range batch {
				u.done = true
			}
		}
		r.published.Broadcast()
	}()
	tx := r.begin()
	for _, u := range batch {
		u.fn(tx)
		applied++
	}
	tx.compact()
	next := tx.s // not &tx.s: the writers' state is not kept
	r.cur.Store(&next)
}

// PutClient stores or replaces the client of c.Source.
func (r *Registry) PutClient(c Client) { r.Update(func(tx *Txn) { tx.PutClient(c) }) }

// DeleteClient removes the client of the source key, if any.
func (r *Registry) DeleteClient(source string) { r.Update(func(tx *Txn) { tx.DeleteClient(source) }) }

// PutScope stores or replaces the scope of the source key.
func (r *Registry) PutScope(source string, sc Scope) {
	r.Update(func(tx *Txn) { tx.PutScope(source, sc) })
}

// DeleteScope removes the scope of the source key, if any.
func (r *Registry) DeleteScope(source string) { r.Update(func(tx *Txn) { tx.DeleteScope(source) }) }

// PutUser stores or replaces the user of u.Source.
func (r *Registry) PutUser(u User) { r.Update(func(tx *Txn) { tx.PutUser(u) }) }

// DeleteUser removes the user of the source key, if any.
func (r *Registry) DeleteUser(source string) { r.Update(func(tx *Txn) { tx.DeleteUser(source) }) }

// PutWorkloadIssuer stores or replaces the issuer of w.Name.
func (r *Registry) PutWorkloadIssuer(w WorkloadIssuer) {
	r.Update(func(tx *Txn) { tx.PutWorkloadIssuer(w) })
}

// DeleteWorkloadIssuer removes the issuer of the name, if any.
func (r *Registry) DeleteWorkloadIssuer(name string) {
	r.Update(func(tx *Txn) { tx.DeleteWorkloadIssuer(name) })
}

// Txn is the next snapshot while an Update builds it. Its writes cost the entries they change
// (and the shards of the indexes those are in), never a scan or a copy of the whole registry.
type Txn struct {
	s  Snapshot // the next snapshot
	in *interner

	clients   cowWriter[string, *Client]
	byID      claimWriter[string, *Client]
	scopes    cowWriter[string, *scopeEntry]
	scopeName claimWriter[string, *scopeEntry]
	users     cowWriter[string, *User]
	userName  claimWriter[string, *User]
	userSub   claimWriter[string, *User]
	origins   cowWriter[string, int]
	subjects  claimWriter[subjectPair, *Client]
	issuers   cowWriter[string, *WorkloadIssuer]
	upstreams cowWriter[string, *UpstreamOIDC]
	ldaps     cowWriter[string, *UpstreamLDAP]
	github    cowWriter[string, *UpstreamGitHub]
	names     claimWriter[string, *Client]

	resources   cowWriter[string, *ProtectedResource]
	resourceAud claimWriter[string, *ProtectedResource]
}

func (r *Registry) begin() *Txn {
	tx := &Txn{s: *r.cur.Load(), in: &r.in}
	tx.clients.m, tx.scopes.m, tx.users.m = &tx.s.clients, &tx.s.scopes, &tx.s.users
	tx.origins.m, tx.issuers.m, tx.resources.m = &tx.s.origins, &tx.s.issuers, &tx.s.resources
	tx.upstreams.m, tx.ldaps.m, tx.github.m = &tx.s.upstreams, &tx.s.ldaps, &tx.s.github
	tx.resourceAud.init(&tx.s.resourceAud)
	tx.byID.init(&tx.s.byID)
	tx.scopeName.init(&tx.s.scopeName)
	tx.userName.init(&tx.s.userName)
	tx.userSub.init(&tx.s.userSub)
	tx.subjects.init(&tx.s.subjects)
	tx.names.init(&tx.s.names)
	return tx
}

// compactAfter is the least number of stale clients (replaced or deleted) that makes a publish
// compact the registry; past it, a publish compacts once they are half as many as the clients.
const compactAfter = 1024

// compact puts every client again, into fresh slabs and chunks, when the stale values the
// replaced and deleted ones left behind are many (at least compactAfter, and half the clients):
// the memory they pin stays below half the registry's, at an amortised cost of a few puts per
// write (a compaction of n clients follows n/2 writes at least).
func (tx *Txn) compact() {
	n := tx.s.clients.len()
	if tx.in.stale < max(compactAfter, n/2) {
		return
	}
	live := make([]*Client, 0, n)
	for _, c := range tx.s.clients.all() {
		live = append(live, c)
	}
	for _, c := range live {
		tx.PutClient(*c)
	}
	tx.in.stale = 0
}

// PutClient stores or replaces the client of c.Source.
func (tx *Txn) PutClient(c Client) {
	p := tx.in.client(c)
	prev, had := tx.s.clients.get(c.Source)
	ids := []string{c.ID}
	if had && prev.ID != c.ID {
		ids = append(ids, prev.ID)
	}
	winners := tx.winners(ids)
	if had {
		tx.unindex(prev)
		tx.in.stale++
	}
	tx.clients.set(p.Source, p)
	tx.byID.add(p.ID, p)
	if iss, sub, ok := p.WorkloadSubjectKey(); ok {
		tx.subjects.add(subjectPair{iss, sub}, p)
	}
	tx.indexNames(p)
	tx.countOrigins(ids, winners)
}

// DeleteClient removes the client of the source key, if any.
func (tx *Txn) DeleteClient(source string) {
	prev, had := tx.s.clients.get(source)
	if !had {
		return
	}
	ids := []string{prev.ID}
	winners := tx.winners(ids)
	tx.unindex(prev)
	tx.clients.del(source)
	tx.in.stale++
	tx.countOrigins(ids, winners)
}

// unindex takes c's claims out of the client ID, workload identity and name indexes.
func (tx *Txn) unindex(c *Client) {
	tx.byID.remove(c.ID, c)
	if iss, sub, ok := c.WorkloadSubjectKey(); ok {
		tx.subjects.remove(subjectPair{iss, sub}, c)
	}
	tx.unindexNames(c)
}

func (tx *Txn) winners(ids []string) []*Client {
	out := make([]*Client, len(ids))
	for i, id := range ids {
		out[i], _ = tx.s.byID.holder.get(id)
	}
	return out
}

// countOrigins updates the origin counts after a write that may have changed the winners of the
// client IDs (was: their winners before it): nothing changes unless a winner with origins did,
// and then only the counts of its origins.
func (tx *Txn) countOrigins(ids []string, was []*Client) {
	for i, id := range ids {
		now, _ := tx.s.byID.holder.get(id)
		if was[i] == now || slices.Equal(corsOrigins(was[i]), corsOrigins(now)) {
			continue // the same origins (none, most often): the counts stay
		}
		for _, o := range corsOrigins(was[i]) {
			if n, _ := tx.s.origins.get(o); n > 1 {
				tx.origins.set(o, n-1)
			} else {
				tx.origins.del(o)
			}
		}
		for _, o := range corsOrigins(now) {
			n, _ := tx.s.origins.get(o)
			tx.origins.set(o, n+1)
		}
	}
}

// corsOrigins are the origins a client allows: a Public client's AllowedOrigins, none for a
// Confidential one (or none at all).
func corsOrigins(c *Client) []string {
	if c == nil || c.Type != Public {
		return nil
	}
	return c.AllowedOrigins
}

// PutScope stores or replaces the scope of the source key.
func (tx *Txn) PutScope(source string, sc Scope) {
	tx.DeleteScope(source)
	e := &scopeEntry{source: source, scope: tx.in.scope(sc)}
	tx.scopes.set(source, e)
	tx.scopeName.add(sc.Name, e)
}

// DeleteScope removes the scope of the source key, if any.
func (tx *Txn) DeleteScope(source string) {
	if prev, had := tx.s.scopes.get(source); had {
		tx.scopeName.remove(prev.scope.Name, prev)
		tx.scopes.del(source)
	}
}

// PutUser stores or replaces the user of u.Source.
func (tx *Txn) PutUser(u User) {
	tx.DeleteUser(u.Source)
	p := &u
	tx.users.set(u.Source, p)
	tx.userName.add(u.Username, p)
	tx.userSub.add(u.Subject, p)
}

// DeleteUser removes the user of the source key, if any.
func (tx *Txn) DeleteUser(source string) {
	if prev, had := tx.s.users.get(source); had {
		tx.userName.remove(prev.Username, prev)
		tx.userSub.remove(prev.Subject, prev)
		tx.users.del(source)
	}
}

// PutWorkloadIssuer stores or replaces the issuer of w.Name. Which clients hold the workload
// identities of the issuer follows (SubjectHolder decides when asked), with no reindexing.
func (tx *Txn) PutWorkloadIssuer(w WorkloadIssuer) { tx.issuers.set(w.Name, &w) }

// DeleteWorkloadIssuer removes the issuer of the name, if any.
func (tx *Txn) DeleteWorkloadIssuer(name string) { tx.issuers.del(name) }
