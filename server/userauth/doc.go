// Package userauth checks a user's password under the failed-login limits: the one user
// authenticator of the login page and the password grant, so that both apply the same rules.
//
// Decisions:
//   - Unknown users, users without a password hash, disabled users and users without a subject
//     fail exactly like a wrong password (ErrBadCredentials), after the same hashing work: a
//     dummy bcrypt check (server/password.VerifyDummy) when there is no hash to check, so the
//     time taken does not tell whether a username exists.
//   - At most Config.Concurrency hash checks run at once (GOMAXPROCS by default), whoever asks:
//     each argon2id check allocates its memory parameter (19 MiB and more), each bcrypt check
//     takes tens of milliseconds. A request that ends while it waits gets its context's error.
//   - One lockout policy, on an oauth2.Guard of kind "user" over the store's Throttles (so it
//     holds across replicas), keyed by the username typed (not the subject: it is about what
//     people type), known or not. MaxFailuresPerUser failures of a username from one client
//     address lock that username at that address (DefaultLockBackoff, doubled per further
//     failure, at most FailureWindow), the right password too; a success resets that count.
//     MaxFailuresPerAddress failures from one address, any usernames, lock the address alike
//     (successes do not reset it). Failures of a username from all addresses never lock it:
//     from the DefaultSlowAfter-th on they only delay the answers to further failures (250 ms
//     doubling to 4 s), so an attacker locks their own address out of alice's account, never
//     alice herself. The lock is checked before the hash (a locked attempt costs no hash
//     check) and the outcome recorded after it; a lock that concurrent failures set meanwhile
//     refuses even a right password, so a guess made during a lock teaches nothing. A locked
//     attempt is a *LockedError (ErrLocked) that says how long the lock lasts, for
//     Retry-After.
//   - Every failed or locked attempt waits FailureDelay before it answers.
//   - Failed attempts are audited as login_failed (reason "bad credentials") and refused ones as
//     rate_limited, with the client and grant type of the attempt and the username only when
//     it is a user's (what was typed for an unknown one may be a password), and logged without
//     the password; a success is the caller's to audit (the login page records
//     login_succeeded, the password grant token_issued).
//   - The client address is the caller's: server/oauth2.ClientAddress (the connection's, or
//     the one a trusted proxy's header names).
package userauth
