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
//   - One lockout policy. Attempts per username are counted in the store's Counters, keyed by
//     the username typed (not the subject: it is about what people type), incremented before
//     the check (so concurrent guesses cannot slip past the limit) and reset by a success; more
//     than MaxFailuresPerUser attempts without a success within FailureWindow (from the first)
//     lock the name, known or not (a locked name can be a denial of service for its user: the
//     price of not being a password oracle). Failures per client address are counted apart
//     (successes do not count, so many users behind one proxy do not lock it); at
//     MaxFailuresPerAddress failures within FailureWindow the address is locked for
//     FailureWindow (a lock record). A locked attempt is ErrLocked, without a hash check.
//   - Every failed or locked attempt waits FailureDelay before it answers.
//   - Failed and locked attempts are audited (login_failed, reason "bad credentials" or
//     "locked", with the client and grant type of the attempt) and logged without the password;
//     a success is the caller's to audit (the login page records login_succeeded, the password
//     grant token_issued).
//   - The client address is the caller's: server/oauth2.ClientAddress (the connection's, or
//     the one a trusted proxy's header names).
package userauth
