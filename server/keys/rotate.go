package keys

import (
	"slices"
	"time"
)

// Defaults of a RotationPolicy.
const (
	DefaultRotationPeriod   = 30 * 24 * time.Hour
	DefaultMaxTokenLifetime = 24 * time.Hour
)

// RotationPolicy says when Rotate replaces keys and how long it keeps the old ones.
type RotationPolicy struct {
	// Period is how long a key signs before a successor is added; 0: never rotate on age (forced
	// rotations are still retired and dropped on schedule).
	Period time.Duration
	// MaxTokenLifetime is the longest a token signed by a key may live (the longest access or ID
	// token lifetime); 0: DefaultMaxTokenLifetime.
	MaxTokenLifetime time.Duration
	// Algorithms to rotate; empty: SupportedAlgorithms().
	Algorithms []string
}

func (p RotationPolicy) withDefaults() RotationPolicy {
	if p.MaxTokenLifetime <= 0 {
		p.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if len(p.Algorithms) == 0 {
		p.Algorithms = SupportedAlgorithms()
	}
	return p
}

// retireAfter is how long a key stays published after its successor starts signing: a replica
// whose clock lags ClockSkew may still sign with it until then, and its tokens live at most
// MaxTokenLifetime.
func (p RotationPolicy) retireAfter() time.Duration { return p.MaxTokenLifetime + ClockSkew }

// Rotate applies the policy to the set at now and reports whether it changed it:
//   - a key whose successor (the key of the same algorithm with the next ActiveFrom) is active
//     gets RetireAt = successor.ActiveFrom + MaxTokenLifetime + ClockSkew: it stays published
//     until every token it signed has expired;
//   - a key whose RetireAt passed (so it is out of the JWKS) is dropped;
//   - when the newest key of an algorithm has been active for Period or longer, a successor is
//     added that signs from PublishLead after now (published first, like every key added to a
//     published set).
//
// Algorithms without any key are left to Ensure. Rotate is pure apart from key generation and
// idempotent at a given now.
func Rotate(s *Set, now time.Time, policy RotationPolicy) (bool, error) {
	policy = policy.withDefaults()
	changed := retire(s, now, policy)
	if policy.Period <= 0 {
		return changed, nil
	}
	for _, alg := range policy.Algorithms {
		newest, ok := newestKey(s, alg, now)
		if !ok || now.Sub(newest.ActiveFrom) < policy.Period {
			continue // a pending successor (ActiveFrom after now) is never older than Period
		}
		if err := addSuccessor(s, alg, now); err != nil {
			return changed, err
		}
		changed = true
	}
	return changed, nil
}

// RotateNow adds a successor for every algorithm of the policy regardless of the keys' ages; it
// signs from PublishLead after now. The keys it replaces are retired by Rotate once it signs.
func RotateNow(s *Set, now time.Time, policy RotationPolicy) (bool, error) {
	policy = policy.withDefaults()
	for _, alg := range policy.Algorithms {
		if err := addSuccessor(s, alg, now); err != nil {
			return false, err
		}
	}
	return len(policy.Algorithms) > 0, nil
}

// NextChange returns when Rotate would next change the set (a successor becoming active, a key
// to drop, a key reaching Period), or the zero time when nothing is scheduled.
func NextChange(s *Set, now time.Time, policy RotationPolicy) time.Time {
	policy = policy.withDefaults()
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, k := range s.Keys {
		if !k.RetireAt.IsZero() {
			consider(k.RetireAt)
		}
		if succ, ok := successor(s, k); ok && k.RetireAt.IsZero() {
			consider(succ.ActiveFrom)
		}
	}
	if policy.Period > 0 {
		for _, alg := range policy.Algorithms {
			if newest, ok := newestKey(s, alg, now); ok {
				consider(newest.ActiveFrom.Add(policy.Period))
			}
		}
	}
	return next
}

// retire sets RetireAt on every key whose successor is active and drops the retired keys.
func retire(s *Set, now time.Time, policy RotationPolicy) bool {
	changed := false
	for i, k := range s.Keys {
		if !k.RetireAt.IsZero() {
			continue
		}
		if succ, ok := successor(s, k); ok && !now.Before(succ.ActiveFrom) {
			s.Keys[i].RetireAt = succ.ActiveFrom.Add(policy.retireAfter())
			changed = true
		}
	}
	n := len(s.Keys)
	s.Keys = slices.DeleteFunc(s.Keys, func(k Key) bool { return !k.RetireAt.IsZero() && !now.Before(k.RetireAt) })
	return changed || len(s.Keys) != n
}

// successor returns the key of k's algorithm that signs after it: the one with the earliest
// ActiveFrom after k's.
func successor(s *Set, k Key) (Key, bool) {
	var succ Key
	found := false
	for _, o := range s.Keys {
		if o.Algorithm == k.Algorithm && o.ActiveFrom.After(k.ActiveFrom) && (!found || o.ActiveFrom.Before(succ.ActiveFrom)) {
			succ, found = o, true
		}
	}
	return succ, found
}

// newestKey returns the key of alg with the latest ActiveFrom (active or pending) that is not
// retired at now.
func newestKey(s *Set, alg string, now time.Time) (Key, bool) {
	var newest Key
	found := false
	for _, k := range s.Keys {
		if k.Algorithm != alg || (!k.RetireAt.IsZero() && !now.Before(k.RetireAt)) {
			continue
		}
		if !found || k.ActiveFrom.After(newest.ActiveFrom) {
			newest, found = k, true
		}
	}
	return newest, found
}

func addSuccessor(s *Set, alg string, now time.Time) error {
	k, err := NewKey(alg, now)
	if err != nil {
		return err
	}
	k.ActiveFrom = k.Created.Add(PublishLead)
	s.Keys = append(s.Keys, k)
	return nil
}

// KeyState is what a key does at some time.
type KeyState string

// Key states.
const (
	StatePending  KeyState = "pending"  // published, signs from ActiveFrom
	StateActive   KeyState = "active"   // signs new tokens
	StateRetiring KeyState = "retiring" // a successor signs; published until RetireAt
	StateRetired  KeyState = "retired"  // out of the JWKS; dropped by the next Rotate
)

// State returns the state of k in s at now.
func (s *Set) State(k Key, now time.Time) KeyState {
	switch {
	case !k.RetireAt.IsZero() && !now.Before(k.RetireAt):
		return StateRetired
	case now.Before(k.ActiveFrom):
		return StatePending
	}
	if succ, ok := successor(s, k); (ok && !now.Before(succ.ActiveFrom)) || !k.RetireAt.IsZero() {
		return StateRetiring
	}
	return StateActive
}
