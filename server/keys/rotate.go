package keys

import (
	"errors"
	"fmt"
	"slices"
	"strings"
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

// dropAt is when Rotate drops a retired key from the set: at RetireAt for a key retired on
// schedule (every token it signed has expired), retireAfter later for a key retired early (by
// then every token it could have signed has expired too; until then the set records it).
func (p RotationPolicy) dropAt(k Key) time.Time {
	if k.RetiredEarly {
		return k.RetireAt.Add(p.retireAfter())
	}
	return k.RetireAt
}

// retireAfter is how long a key stays published after its successor starts signing: a replica
// whose clock lags ClockSkew may still sign with it until then, and its tokens live at most
// MaxTokenLifetime.
func (p RotationPolicy) retireAfter() time.Duration { return p.MaxTokenLifetime + ClockSkew }

// Rotate applies the policy to the set at now and reports whether it changed it:
//   - a key whose successor (the key of the same algorithm with the next ActiveFrom) is active
//     gets RetireAt = successor.ActiveFrom + MaxTokenLifetime + ClockSkew: it stays published
//     until every token it signed has expired;
//   - a key whose RetireAt passed (so it is out of the JWKS) is dropped; a key retired early
//     (RetireNow) only MaxTokenLifetime + ClockSkew after its RetireAt;
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
			consider(policy.dropAt(k))
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
	s.Keys = slices.DeleteFunc(s.Keys, func(k Key) bool { return !k.RetireAt.IsZero() && !now.Before(policy.dropAt(k)) })
	return changed || len(s.Keys) != n
}

// successor returns the key of k's algorithm that signs after it: the one with the earliest
// ActiveFrom after k's, not retired early (a key retired early succeeds nobody).
func successor(s *Set, k Key) (Key, bool) {
	var succ Key
	found := false
	for _, o := range s.Keys {
		if o.Algorithm == k.Algorithm && !o.RetiredEarly && o.ActiveFrom.After(k.ActiveFrom) && (!found || o.ActiveFrom.Before(succ.ActiveFrom)) {
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
		if k.Algorithm != alg || k.retired(now) {
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
	StateRetired  KeyState = "retired"  // out of the JWKS; dropped by Rotate (see dropAt)
)

// State returns the state of k in s at now.
func (s *Set) State(k Key, now time.Time) KeyState {
	switch {
	case k.retired(now):
		return StateRetired
	case now.Before(k.ActiveFrom):
		return StatePending
	}
	if succ, ok := successor(s, k); (ok && !now.Before(succ.ActiveFrom)) || !k.RetireAt.IsZero() {
		return StateRetiring
	}
	return StateActive
}

// Retirement is what RetireNow did with the key IDs it was given.
type Retirement struct {
	Retired []string // retired now: out of the JWKS and signing nothing, on every replica that loads the set
	Already []string // retired before (early, or on schedule and not dropped yet)
	Unknown []string // not in the set (never there, or dropped)
	Added   []string // new keys that sign at once in place of retired ones
}

// RetireNow retires the keys with the given IDs at once, for a key suspected leaked: each gets
// RetireAt = now and RetiredEarly, so it leaves the JWKS and stops signing as soon as a replica
// loads the set, whatever that replica's clock says, and every token it signed stops verifying.
// For each algorithm whose signing key was retired (or that has no other key left), a new key is
// added that signs at once (ActiveFrom ClockSkew before now, like the keys of a brand-new set):
// there is no publish lead, so verifiers holding a cached JWKS reject its tokens until they
// refetch. A pending successor keeps its schedule and replaces the new key as a rotation does.
// Named keys already retired and unknown IDs change nothing and are reported.
func RetireNow(s *Set, ids []string, now time.Time) (Retirement, error) {
	var out Retirement
	now = now.UTC().Truncate(time.Second)
	var replace []string // algorithms that need a new signing key
	needKey := func(alg string) {
		if !slices.Contains(replace, alg) {
			replace = append(replace, alg)
		}
	}
	for _, id := range ids {
		i := slices.IndexFunc(s.Keys, func(k Key) bool { return k.ID == id })
		if i < 0 {
			out.Unknown = append(out.Unknown, id)
			continue
		}
		k := s.Keys[i]
		state := s.State(k, now)
		if state == StateRetired {
			out.Already = append(out.Already, id)
			continue
		}
		s.Keys[i].RetireAt, s.Keys[i].RetiredEarly = now, true
		out.Retired = append(out.Retired, id)
		if state == StateActive || !slices.ContainsFunc(s.Keys, func(o Key) bool { return o.Algorithm == k.Algorithm && !o.retired(now) }) {
			needKey(k.Algorithm)
		}
	}
	for _, alg := range replace {
		k, err := NewKey(alg, now)
		if err != nil {
			return out, err
		}
		// It signs at once on a replica whose clock lags, and after every unretired key of its
		// algorithm that is active now (Signer picks the newest), so every replica picks it.
		k.ActiveFrom = k.Created.Add(-ClockSkew)
		for _, o := range s.Keys {
			if t := o.ActiveFrom.Add(time.Second); o.Algorithm == alg && !o.retired(now) && !o.ActiveFrom.After(now) && t.After(k.ActiveFrom) {
				k.ActiveFrom = t
			}
		}
		s.Keys = append(s.Keys, k)
		out.Added = append(out.Added, k.ID)
	}
	return out, nil
}

// maxKeyIDs bounds the key IDs of one list; a set holds a few keys per algorithm.
const maxKeyIDs = 64

// ParseKeyIDs parses a comma-separated list of key IDs ("kid[,kid...]"), as an operator writes
// it in an annotation: spaces around each ID are ignored, repeats are dropped (first kept); an
// empty list or entry, an ID with a space, control or non-ASCII character, and more than
// maxKeyIDs IDs are refused.
func ParseKeyIDs(value string) ([]string, error) {
	if strings.TrimSpace(value) == "" {
		return nil, errors.New("keys: no key ID")
	}
	parts := strings.Split(value, ",")
	if len(parts) > maxKeyIDs {
		return nil, fmt.Errorf("keys: more than %d key IDs", maxKeyIDs)
	}
	ids := make([]string, 0, len(parts))
	for i, p := range parts {
		id := strings.TrimSpace(p)
		if id == "" {
			return nil, fmt.Errorf("keys: key ID %d is empty", i+1)
		}
		if j := strings.IndexFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }); j >= 0 {
			return nil, fmt.Errorf("keys: key ID %d has a space, control or non-ASCII character at byte %d", i+1, j)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
