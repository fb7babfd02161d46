// Package redis is the Redis leased store (store.Store) for many replicas, on go-redis's
// UniversalClient: one address for a standalone server, several for Cluster, or the Sentinels'
// with Options.MasterName. It passes server/store/storetest against a real redis-server
// (Redis 7 or later: the scripts use PEXPIRETIME and SET ... PXAT/GET).
//
// Use: s, err := redis.New(redis.Options{Addrs: ...}); check s.Ping (main does at startup,
// and in /readyz); optionally s.LoadScripts; Start/NeedLeaderElection make it a
// controller-runtime Runnable that closes the client when the manager stops.
//
// Keys (P is Options.KeyPrefix; h is the hex of a store.Hash; T is a family's tag, the hex of
// its ID, so any family ID is safe inside a hash tag and comes back exactly as given):
//
//	P code:{h}        string: '0' or '1' (used) then the JSON record (c: the client, which
//	                  the take script checks); PX = the code's lease
//	P rti:{h}         string: T, the refresh token index; PXAT = the token's ExpiresAt
//	P rt:{T}:h        hash: d (JSON record), f (family ID), r (rotated at, server ms)
//	P rts:{T}:h       string: what the rotation of token h kept: the new token's h (64 hex
//	                  characters) then the sealed new token; PX = the rotation's grace
//	P fam:{T}         hash: x (has tokens), rv (revoked), s (the family's start: its first
//	                  token's IssuedAt, ms, rounded down; none for families stored before
//	                  starts were kept, which count as started before any cutoff); lives until
//	                  the latest token lease of the family or the revocation's until,
//	                  whichever is later
//	P cut:{h}         string: a grant cutoff's At, ms, rounded up (h: store.Cutoff.Key);
//	                  PXAT = its until. Rotations read it as a declared key in indexed mode;
//	                  in Cluster (another slot than the family) before their script, in a
//	                  pipelined round trip, and pass the latest At as an argument
//	P jti:<jti>       revoked access token ID; PXAT = until (only ever extended: PEXPIREAT GT)
//	P rec:<len>:<kind>:{h}  opaque record;  P cnt:{h}  counter (SET NX PX, INCR)
//	P thr:{thr}:h     hash: f (failures), w (window end), b (blocked until), server ms; lives
//	                  until the later of w and b
//	P rate:{h}        string: the bucket's theoretical arrival time (GCRA), server µs; lives
//	                  until the bucket is full again
//	P list:<len>:<kind>:{h}  hash: entry ID to "<expiry, server ms> <value>"; the put script
//	                  drops expired entries and the ones over store.MaxListEntries; lives
//	                  until its last entry's lease ends. ListEntries filters by this
//	                  replica's clock.
//	P uses            hash: "c:<client ID>" and "p:<client ID>" (current and previous
//	                  credential) to the time of the last use noted, Unix µs; lives
//	                  store.CredentialUseLease after the last note. The take script removes
//	                  what it returns (HRANDFIELD, then HDEL), so each use goes to one taker.
//	P bcl:{bcl}:queue  sorted set: the back-channel logout deliveries' IDs by when they are
//	                  due (server ms); a claim moves its deliveries to the claim's end
//	P bcl:{bcl}:deliveries  hash: per delivery ID, <id> (JSON record), a:<id> (attempts),
//	                  x:<id> (its lease's end, server ms), k:<id> (the current claim's token).
//	                  A delivery whose lease ended is dropped when it comes due or is
//	                  finished; both keys live until the latest lease end.
//	P dev:{dev}:h     hash: d (JSON: client, scopes, user code hash, expiry), st (0 pending,
//	                  1 approved, 2 denied), i (interval ms), p (last poll, server ms),
//	                  s, a (approver and auth time), t (taken); PXAT = the grant's ExpiresAt
//	P duc:{dev}:h     string: the device hash of a pending grant's user code; dropped by
//	                  the decision, PXAT = the grant's ExpiresAt
//
// Every throttle key carries the one hash tag {thr}, so the script of an attempt sees all its
// keys (an identity's and an address's share no natural tag) also in Cluster, where they all
// live in one slot, on one node. The device keys share {dev} for the same reason (a user code
// leads to its grant inside one script).
//
// A family's keys share the Cluster slot of {T}, so rotation and revocation are one script
// in one slot. The store API names a refresh token by its hash alone, so the family is found
// through the index rti:{h} (slot of h):
//   - Standalone and Sentinel: one script reads the index and builds the family's keys from it
//     (no slot rules apply): TakeCode, GetRefresh, RotateRefresh, CreateRefresh, RedeemCode are
//     one round trip each (BenchmarkTakeCode, BenchmarkRotateRefresh count them with a go-redis
//     hook), and so are ThrottleRate (the throttle and takeRate scripts' bodies as Lua functions
//     in one script) and the Admitted operations (the throttle, the bucket, then the
//     operation's body, as one script: luaAdmitted).
//   - Cluster (a *ClusterClient): the index is read first (GET), and the new token's index is
//     claimed (SET NX GET PXAT) before the rotation script runs in the family's slot, so a
//     rotated-to token is never unreachable; a claim left by a failed rotation points at no
//     token (ErrNotFound) and is reused by the family's next rotation. Get is two round trips,
//     Rotate and Create three. The conformance suite also runs this path
//     (TestConformanceClusterMode, against the standalone server). Putting the family in the
//     token's format (<familyID>.<random>) cannot help here: the store only sees the hash.
//     RedeemCode claims the token's index, takes the code, then writes the family's slot (a
//     failure of the last leaves the code taken); ThrottleRate and the Admitted operations run
//     their parts one after the other (the throttles' slot is {thr}, the bucket's its own).
//
// Leases are Redis TTLs, and they, throttle windows and back-offs are rounded up to
// milliseconds, never down. Scripts compare rotation grace, throttle windows and blocks, and
// buckets against the server's TIME, so all replicas agree. Times in records are stored as Unix
// nanoseconds (0 is the zero time).
//
// Known records (store.KnownRecords): each Store remembers, in a bounded LRU cache
// (hashicorp/golang-lru, Options.KnownRecords, DefaultKnownRecords), the codes it put and the
// refresh tokens it created or rotated to, until they are taken or rotated through it or their
// lease ends. They are records as stored, never changed, so a caller may sign from one before
// the script decides; no entry is ever needed for correctness.
//
// Retries: none (MaxRetries -1). A command cut off after the server ran it must not run again:
// TakeCode would answer ErrAlreadyUsed (a replay, revoking the grant), RotateRefresh ErrConflict
// or ErrReused, Incr and Throttle would count twice
// (TestACommandCutOffAfterTheServerRanItIsNotRunAgain). A rotation whose reply was lost is
// made good one level up instead: the rotation script keeps the sealed new token (rts) for the
// grace window, and the old token's holder, presenting it again, gets it back
// (store.SuccessorError; handler's TestARefreshWhoseReplyWasLostIsAnsweredAgain).
//
// Errors: a call whose context is already done returns ctx.Err() and sends nothing; a client
// error is the context's error when the context ended meanwhile, else store.ErrUnavailable
// wrapping the cause (dial, timeout, script error) — never a silent success. Results of a
// call cut off mid-flight are unknown (as for any network store).
//
// Figures (2-core VM, Go 1.26, redis-server 7.0 on loopback, one client goroutine):
// TakeCode 22 µs/op, RotateRefresh 46 µs/op, 1.0 round trip per op each.
package redis
