// Package store is the leased store: the records the server writes while it answers requests
// (authorization codes, refresh tokens and their families, revoked token IDs, login sessions,
// pending authorization requests, remembered consents, device authorizations, grant cutoffs,
// counters,
// failure counts with their back-off (throttles), rate-limit buckets, the clients' last
// credential uses, the queue of back-channel logout deliveries, and small lists such as a
// user's sessions, consents and grants), each held under a lease (TTL) and gone when the lease
// ends.
//
// Rules every backend follows (server/store/storetest checks them):
//   - Records are keyed by a Hash of the secret that names them (a code, a refresh token, a
//     session ID), never by the secret itself, so a copy of the store hands out no credential.
//   - A record whose lease ended is never returned, whether or not it was already cleaned up.
//   - TakeCode is one-time under concurrency: exactly one caller gets the code; every later call
//     by the same client gets ErrAlreadyUsed with the record (so the caller can revoke what the
//     first use issued) until the lease ends, then ErrNotFound. A call by another client is
//     ErrNotFound and changes nothing, before or after the code was taken.
//   - RedeemCode is TakeCode and CreateRefresh as one: the refresh token is stored iff this call
//     took the code, and a refused token leaves the code untaken.
//   - KnownCode and KnownRefresh return records exactly as stored (or nothing), never a record
//     of another hash, and never a record whose lease ended.
//   - RotateRefresh is compare-and-swap: exactly one of concurrent rotations of one token wins.
//     Presenting a token that was already rotated within the grace window is ErrConflict and
//     changes nothing (a concurrent retry); after the grace window it is ErrReused and the
//     whole family is revoked. A rotation may keep its successor sealed (never the token
//     itself) for the grace window: a presentation within grace then gets it back in a
//     SuccessorError while the successor is active, and is reuse once it was rotated.
//   - A cutoff (CutOffGrants) ends the families of its client and user (or OP session) whose
//     first token was issued at or before its At: every later rotation of one (RotateRefresh,
//     RotateRefreshAdmitted, a retry within grace that would get a kept successor,
//     ReportRefreshReuse) is ErrRevoked and revokes the family, also when the family's first
//     token is stored after the cutoff; families started after At are not affected. The
//     cutoffs checked are those of the rotated token's client, subject and session.
//   - Throttle is one atomic step over all its keys: while any key is blocked nothing is
//     recorded on any of them, and concurrent failures are all counted. A count is forgotten a
//     window after its last failure and block, not before; a backend that counts in coarser
//     units than nanoseconds rounds windows and back-offs up, never down.
//   - TakeRate is a token bucket shared by every caller: of concurrent requests at most burst
//     are allowed, and a refused request takes nothing and answers how long until one would
//     be allowed. ThrottleRate takes from the bucket only for a Success that was not refused.
//   - NoteCredentialUses keeps the latest time per client ID and credential (current or
//     previous), whatever the order of the notes; TakeCredentialUses hands each record to
//     exactly one of concurrent callers and removes it.
//   - ClaimLogoutDeliveries hands each due delivery to exactly one of concurrent callers; a
//     claimed delivery is due again only when its claim passes or it is retried, and only the
//     holder of its current claim can finish or retry it.
//   - Lists hold entries under IDs, each with its own lease; ListEntries returns the live ones
//     ordered by ID; a list holds at most MaxListEntries, a put beyond that drops the entry that
//     expires first; a list is gone when its last lease ends.
//   - Device grants (RFC 8628) are found by device code hash (polls) and by user code hash
//     (the verification page): PutDeviceGrant refuses a hash of either that holds a live grant;
//     DecideDeviceGrant moves a pending grant to approved or denied once and drops its user
//     code; PollDeviceGrant grows the interval of a pending grant polled too soon, and hands an
//     approved grant to exactly one of concurrent polls (later ones: ErrAlreadyUsed, with the
//     record). Another client's poll is ErrNotFound and changes nothing.
//   - Errors are the sentinels below only (wrapped with context), matched with errors.Is;
//     ErrUnavailable means the backend could not be reached and nothing was stored.
//
// Backends: memory (the embedded default, one replica) in store/memory; Redis (many replicas:
// standalone, Sentinel or Cluster) in store/redis.
package store
