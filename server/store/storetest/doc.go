// Package storetest is the conformance suite of the leased store: every backend of
// server/store runs Run from its own tests, e.g.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return newBackend(t) }, storetest.Options{})
//	}
//
// newStore must return an empty store for each call: tests run in parallel, one store each.
//
// Time: a backend that can read a fake clock passes one (harness.NewClock) as Options.Clock
// (and makes the stores newStore returns read its Now); the suite then advances it instead of sleeping, and runs its
// tests one at a time since they share the clock. Without a Clock the suite runs on real time
// (a backend with server-side TTLs, like Redis, runs it this way), its tests in parallel (as
// many at once as go test -parallel, GOMAXPROCS by default); it then takes a few seconds. Leases
// are then a few hundred milliseconds; the throttle and rate-limit tests, which a stall of a
// loaded machine between two calls once failed, use windows of about two seconds and slow
// refills, or check a remaining block against the time that passed.
//
// What the suite holds every backend to, beyond the comments of server/store:
//   - Errors match exactly one sentinel with errors.Is (ErrNotFound is never ErrConflict...).
//   - Times come back within a millisecond of what was stored; a zero time stays zero. Scopes
//     come back in order; nil and empty are the same.
//   - Records are copies both ways: changing a slice after storing it, or one returned, changes
//     nothing stored.
//   - PutCode and CreateRefresh under a hash that holds a live record are ErrConflict (a used
//     code must never be replaced by an unused one).
//   - A family revocation outlives its until for as long as tokens of the family live (else a
//     revoked token would come back to life); a token created in a revoked family is revoked.
//   - Family IDs come back exactly as given, canonical (22 characters of base64url) or not.
//   - Revoking a token ID twice never shortens its revocation.
//   - A rotation's sealed successor comes back byte for byte (any byte value), to every
//     presentation within the rotation's own grace and never after it, even with a longer
//     grace on the retry; concurrent retries all get it (successor.go).
//   - DeleteRecord of a missing record and Reset of a missing counter are not errors.
//   - A call with a context that is already cancelled returns promptly, either succeeding or
//     with an error that matches the context's error; when it fails, nothing changed.
//
// It is test-support code and may import internal/harness (for its fake clock), which server/
// code never does.
package storetest
