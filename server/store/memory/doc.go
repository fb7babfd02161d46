// Package memory is the in-memory leased store (store.Store): the embedded default, for one
// replica. Nothing is shared between processes and nothing survives a restart. It passes
// server/store/storetest.
//
// Use: s := memory.New() and run s.Start(ctx) for the store's life (go s.Start(ctx), or
// mgr.Add(s): Start and NeedLeaderElection make it a controller-runtime Runnable that runs on
// every replica). Start is the janitor: every WithJanitorInterval (10 s by default) it drops
// the records whose lease ended. Without it the store stays correct (a record past its lease
// is never returned, whether or not it was dropped) and each write drops up to 8 expired
// records of its shard, but an idle shard keeps its garbage.
//
// Decisions:
//   - Contexts: a call whose context is already done returns ctx.Err() (unwrapped) and changes
//     nothing; otherwise calls never wait on anything but a mutex, so the context is not
//     consulted again. Store errors are the sentinels of package store, unwrapped (and
//     *store.SuccessorError, which is ErrConflict); records come
//     back zero with every error except TakeCode's ErrAlreadyUsed and GetRefresh's ErrReused
//     (the rotated token's record, so the caller can check its client).
//   - Concurrency: records are spread over shards by the first byte of their hash (revoked
//     token IDs by a seeded maphash), each with one mutex; the default count is GOMAXPROCS
//     rounded up to a power of two, at most 16. RotateRefresh locks the shards of the old and
//     the new hash in index order, and Throttle the shards of its keys likewise. Revoked
//     families live in their own shards, whose mutex is always taken last.
//   - Memory: refresh tokens are held by the million, so their records are pointer-free and
//     cost the garbage collector nothing to scan: 64 bytes (refreshRecord) in a slab with the
//     32-byte key, indexed by an open-addressing table of 4-byte slab positions (table.go),
//     expiring through a heap of 16-byte deadlines. Client IDs, subjects, scope sets and
//     non-canonical family IDs are interned per shard into reference-counted uint32 IDs (a
//     shard's table holds each distinct value once); times are Unix nanoseconds. A canonical
//     family ID (22 characters of base64url, 16 bytes, as the server makes them) is stored as
//     its 16 bytes; any other string as the first 16 bytes of its SHA-256 plus the interned
//     string, so every ID comes back exactly as given. Codes, records, counters, revoked token
//     IDs, throttles and rate-limit buckets are few and short-lived, and use plain maps (a
//     bucket holds a pointer to its golang.org/x/time/rate.Limiter).
//   - Expiry: every shard keeps a binary min-heap of lease ends per kind of record (written
//     by hand: container/heap boxes each element). Entries go stale when a record is deleted
//     or replaced; whoever pops one checks the record's own lease. A throttle or a bucket,
//     whose lease moves on with every failure or request, has one entry, queued when it is
//     created (and again if its lease moves earlier) and queued anew at its lease's end when it
//     comes due before it, so traffic on a key does not grow the heap. After a wave of expiry
//     the janitor rebuilds what is mostly empty (Go maps never shrink).
//   - Families: a revocation is remembered until until or until the latest ExpiresAt of any
//     refresh token stored, whichever is later, so a revoked token never comes back to life;
//     a token created in a revoked family extends the revocation to its own ExpiresAt.
//     Reuse after grace revokes the family the same way. Family IDs are never reused, so
//     remembering longer than asked is harmless.
//   - PutCode and CreateRefresh refuse (ErrConflict) a hash that holds a live record; a lease
//     that has already ended (ttl <= 0, ExpiresAt past) stores nothing and is not an error.
//     RotateRefresh stores next in old's family whatever next.FamilyID says.
//   - Sealed successors (successor.go): a rotation given one keeps it, with next's hash, in a
//     plain map of old's shard until its grace ends (a pointer per entry, but only for the
//     rotations of the last grace window). A presentation of old within grace reads the entry,
//     then next's record under next's shard lock: the entry never changes and rotation is one
//     way, so the two reads decide as one step would.
//   - RedeemCode locks the shards of the code and of the token together (as RotateRefresh
//     does). ThrottleRate locks the shards of the throttle keys and of the bucket together. The
//     Admitted operations run the admission (ThrottleRate, or Throttle without a bucket), then
//     the operation, each atomic: the operation of an admitted request runs as if right after.
//   - KnownCode and KnownRefresh read the records under their shard's lock: the memory store
//     knows every live record (used, rotated or revoked ones too; the operation decides).
//   - Lists (store.Lists) are one map of small maps under their own mutex; a write drops the
//     list's expired entries and the janitor drops expired entries and empty lists.
//   - A refresh record interns its subject and its OP session ID as one string (subject, NUL,
//     session ID), which keeps the record at 64 bytes.
//   - Grant cutoffs (cutoff.go) are one map under their own mutex. The store holds every
//     refresh token, so CutOffGrants records the cutoff and then revokes, shard by shard, the
//     families of the client and user (or session) with a live token issued at or before At;
//     CreateRefresh and RedeemCode revoke a family a live cutoff ends after storing its first
//     token. Rotations then find the family revoked (no start time in the 64-byte record).
//     A family whose live tokens were all issued after At but that started before it (its
//     first tokens expired) is not found: callers cut off at the present time.
//   - Credential uses (NoteCredentialUses) are one map under their own mutex: at most one
//     record per client and credential between two takes of the leader, so few. Like the
//     Redis backend's one hash, they share one lease, renewed by every note.
//   - Device grants are few and short-lived: one map (and its user code index) under one
//     mutex, expired grants dropped by the call that meets them and by the janitor.
//   - Times come back in UTC, to the nanosecond; a zero time stays zero.
//
// Figures (2-core VM under load from other jobs, Go 1.26, best of 6; go test -run '^$'
// -bench . -benchmem ./server/store/memory): TakeCode 237 ns, 1 alloc; RotateRefresh 870 ns,
// 2 allocs (B/op includes the amortised growth of the store by one record per rotation);
// GetRefresh among 100k tokens 460 ns, 2 allocs (the family ID string and the scopes copy);
// RevokeToken 790 ns, 1 alloc; TokenRevoked 90 ns, 0 allocs. Sharding gains nothing
// measurable on 2 cores. One million refresh tokens (10k subjects, 100 clients, 3 scope sets):
// 133 bytes each with one shard, 137 with two, 157 with sixteen (each shard interns its own
// subjects); a full collection costs 0.5-1 ms of CPU (10-12 ms with sixteen shards), against
// 300 bytes and 430-500 ms for a map of store.RefreshToken structs.
package memory
