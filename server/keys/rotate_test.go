package keys

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// issued is one token signed during a simulation.
type issued struct {
	token   string
	alg     string
	kid     string
	signed  int // step
	expires time.Time
}

// TestNoTokenEverFailsVerificationAcrossRotations runs the leader's Rotate on a fake clock and,
// at every step, signs a token per algorithm with a replica's keyring and verifies every token
// still alive against the JWKS every verifier may hold at that step: the one fetched now and the
// one cached JWKSMaxAge ago.
func TestNoTokenEverFailsVerificationAcrossRotations(t *testing.T) {
	const step = 5 * time.Minute
	tests := []struct {
		name      string
		policy    RotationPolicy
		steps     int
		forceAt   []int         // steps at which a forced rotation runs
		signerLag time.Duration // how far the signing replica's clock is behind the leader's
		wantKeys  int           // at least this many distinct kids signed tokens, per algorithm
	}{
		{"periodic rotation keeps every token verifiable", RotationPolicy{Period: 3 * time.Hour, MaxTokenLifetime: time.Hour}, 12 * 12, nil, 0, 4},
		{"a period shorter than the token lifetime keeps several keys published", RotationPolicy{Period: time.Hour, MaxTokenLifetime: 2 * time.Hour}, 6 * 12, nil, 0, 5},
		{"a forced rotation with rotation disabled keeps old tokens verifiable", RotationPolicy{MaxTokenLifetime: time.Hour}, 5 * 12, []int{6, 7, 40}, 0, 3},
		{"a forced rotation on top of periodic rotation keeps every token verifiable", RotationPolicy{Period: 2 * time.Hour, MaxTokenLifetime: time.Hour}, 8 * 12, []int{30}, 0, 4},
		{"a signer whose clock lags by ClockSkew signs only keys still published", RotationPolicy{Period: 2 * time.Hour, MaxTokenLifetime: time.Hour}, 8 * 12, []int{50}, ClockSkew, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.policy.Algorithms = []string{RS256, ES256, EdDSA}
			set, err := Generate(tt.policy.Algorithms, now)
			require.NoError(t, err)
			var published []jose.JSONWebKeySet // by step
			var tokens []issued
			kids := map[string]map[string]bool{}
			for i := range tt.steps {
				clock := now.Add(time.Duration(i) * step)
				if _, err := Rotate(set, clock, tt.policy); err != nil {
					require.NoError(t, err)
				}
				for _, f := range tt.forceAt {
					if f == i {
						_, err := RotateNow(set, clock, tt.policy)
						require.NoError(t, err)
					}
				}
				for _, k := range set.Keys {
					assert.NotEqual(t, StateRetired, set.State(k, clock), "Rotate drops retired keys")
				}
				// What a verifier fetches now.
				verifier := NewKeyring()
				verifier.now = func() time.Time { return clock }
				require.NoError(t, verifier.Load(set))
				var jwks jose.JSONWebKeySet
				require.NoError(t, json.Unmarshal(verifier.JWKS(), &jwks))
				published = append(published, jwks)

				signer := NewKeyring()
				signer.now = func() time.Time { return clock.Add(-tt.signerLag) }
				require.NoError(t, signer.Load(set))
				for _, alg := range tt.policy.Algorithms {
					sg, err := signer.Signer(alg)
					require.NoError(t, err, "step %d: %s always has a signer", i, alg)
					tok, err := sg.Sign(TypeJWT, fmt.Appendf(nil, `{"step":%d}`, i))
					require.NoError(t, err)
					tokens = append(tokens, issued{tok, alg, sg.KeyID, i, clock.Add(tt.policy.MaxTokenLifetime)})
					if kids[alg] == nil {
						kids[alg] = map[string]bool{}
					}
					kids[alg][sg.KeyID] = true
				}
				cached := max(0, i-int(JWKSMaxAge/step)) // the oldest JWKS a verifier may still use
				for _, tok := range tokens {
					if !clock.Before(tok.expires) {
						continue
					}
					for _, at := range []int{cached, i} {
						if at < tok.signed-int(JWKSMaxAge/step) {
							continue
						}
						found := published[at].Key(tok.kid)
						if !assert.Len(t, found, 1, "step %d: key %s of the token signed at step %d is in the JWKS of step %d", i, tok.kid, tok.signed, at) {
							continue
						}
						obj, err := jose.ParseSignedCompact(tok.token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tok.alg)})
						require.NoError(t, err)
						_, err = obj.Verify(found[0].Key)
						assert.NoError(t, err, "step %d: token of step %d", i, tok.signed)
					}
				}
			}
			for _, alg := range tt.policy.Algorithms {
				assert.GreaterOrEqual(t, len(kids[alg]), tt.wantKeys, "%s keys that signed", alg)
			}
			assert.LessOrEqual(t, len(set.Keys), 3*len(tt.policy.Algorithms)+2*len(tt.forceAt), "retired keys are dropped")
		})
	}
}

func TestRotateSchedulesSuccessorsAndRetirement(t *testing.T) {
	policy := RotationPolicy{Period: 24 * time.Hour, MaxTokenLifetime: 2 * time.Hour, Algorithms: []string{ES256}}
	set, err := Generate([]string{ES256}, now)
	require.NoError(t, err)
	old := set.Keys[0]

	changed, err := Rotate(set, now.Add(time.Hour), policy)
	require.NoError(t, err)
	assert.False(t, changed, "a young key is kept")
	assert.Equal(t, old.ActiveFrom.Add(24*time.Hour), NextChange(set, now.Add(time.Hour), policy), "the next change is the key's rotation")

	rotation := old.ActiveFrom.Add(24 * time.Hour)
	changed, err = Rotate(set, rotation, policy)
	require.NoError(t, err)
	assert.True(t, changed)
	require.Len(t, set.Keys, 2)
	succ := set.Keys[1]
	assert.Equal(t, rotation.Add(PublishLead), succ.ActiveFrom, "the successor is published PublishLead before it signs")
	assert.Equal(t, StatePending, set.State(succ, rotation))
	assert.Equal(t, StateActive, set.State(set.Keys[0], rotation))
	assert.True(t, set.Keys[0].RetireAt.IsZero(), "the old key signs until the successor does")
	assert.Equal(t, succ.ActiveFrom, NextChange(set, rotation, policy))

	changed, err = Rotate(set, rotation.Add(time.Minute), policy)
	require.NoError(t, err)
	assert.False(t, changed, "idempotent while the successor is pending")

	changed, err = Rotate(set, succ.ActiveFrom, policy)
	require.NoError(t, err)
	assert.True(t, changed)
	retireAt := succ.ActiveFrom.Add(2*time.Hour + ClockSkew)
	assert.Equal(t, retireAt, set.Keys[0].RetireAt, "published until every token it signed expired")
	assert.Equal(t, StateRetiring, set.State(set.Keys[0], succ.ActiveFrom))
	assert.Equal(t, StateActive, set.State(set.Keys[1], succ.ActiveFrom))
	assert.Equal(t, retireAt, NextChange(set, succ.ActiveFrom, policy))

	changed, err = Rotate(set, retireAt, policy)
	require.NoError(t, err)
	assert.True(t, changed)
	require.Len(t, set.Keys, 1, "the retired key is dropped")
	assert.Equal(t, succ.ID, set.Keys[0].ID)
}

func TestRotationDisabledOnlyFinishesForcedRotations(t *testing.T) {
	policy := RotationPolicy{Algorithms: []string{EdDSA}}
	set, err := Generate([]string{EdDSA}, now)
	require.NoError(t, err)
	changed, err := Rotate(set, now.Add(365*24*time.Hour), policy)
	require.NoError(t, err)
	assert.False(t, changed)
	assert.True(t, NextChange(set, now, policy).IsZero(), "nothing scheduled")

	changed, err = RotateNow(set, now, policy)
	require.NoError(t, err)
	assert.True(t, changed)
	require.Len(t, set.Keys, 2)
	assert.Equal(t, now.Add(PublishLead), set.Keys[1].ActiveFrom)
	end := now.Add(PublishLead + DefaultMaxTokenLifetime + ClockSkew)
	_, err = Rotate(set, now.Add(PublishLead), policy)
	require.NoError(t, err)
	assert.Equal(t, end, set.Keys[0].RetireAt, "MaxTokenLifetime defaults to 24h")
	_, err = Rotate(set, end, policy)
	require.NoError(t, err)
	assert.Len(t, set.Keys, 1)
}

// added stands for the key RetireNow adds in the expected signers of a retireCase.
const added = "(added)"

// retireCase is a set, the key IDs to retire at some time and what must follow.
type retireCase struct {
	set                       *Set
	ids                       []string
	at                        time.Time
	retired, already, unknown []string
	signers                   map[string]string // algorithm -> kid that signs after the retirement, or added
}

func TestRetireNowCutsAKeyAtOnce(t *testing.T) {
	generate := func(t *testing.T, algs ...string) *Set {
		set, err := Generate(algs, now.Add(-48*time.Hour))
		require.NoError(t, err)
		return set
	}
	rotateNow := func(t *testing.T, set *Set, at time.Time) Key {
		_, err := RotateNow(set, at, RotationPolicy{Algorithms: []string{ES256}})
		require.NoError(t, err)
		return set.Keys[len(set.Keys)-1]
	}
	tests := []struct {
		name    string
		lag     time.Duration // how far the replica that loads the set lags the leader's clock
		prepare func(t *testing.T) retireCase
	}{
		{"the only key of its algorithm is replaced by a key that signs at once", 0, func(t *testing.T) retireCase {
			set := generate(t, ES256)
			id := set.Keys[0].ID
			return retireCase{set: set, ids: []string{id}, at: now, retired: []string{id}, signers: map[string]string{ES256: added}}
		}},
		{"a replica whose clock lags by ClockSkew drops the key and signs with the new one at once", ClockSkew, func(t *testing.T) retireCase {
			set := generate(t, ES256)
			id := set.Keys[0].ID
			return retireCase{set: set, ids: []string{id}, at: now, retired: []string{id}, signers: map[string]string{ES256: added}}
		}},
		{"the keys of other algorithms keep signing", 0, func(t *testing.T) retireCase {
			set := generate(t, RS256, ES256)
			rs, es := set.Keys[0].ID, set.Keys[1].ID
			return retireCase{set: set, ids: []string{es}, at: now, retired: []string{es}, signers: map[string]string{RS256: rs, ES256: added}}
		}},
		{"several keys are retired in one call, each replaced once", 0, func(t *testing.T) retireCase {
			set := generate(t, RS256, ES256)
			rs, es := set.Keys[0].ID, set.Keys[1].ID
			return retireCase{set: set, ids: []string{es, rs}, at: now, retired: []string{es, rs}, signers: map[string]string{RS256: added, ES256: added}}
		}},
		{"a pending successor stays published and signs on its schedule", 0, func(t *testing.T) retireCase {
			set := generate(t, ES256)
			id := set.Keys[0].ID
			rotateNow(t, set, now.Add(-time.Minute))
			return retireCase{set: set, ids: []string{id}, at: now, retired: []string{id}, signers: map[string]string{ES256: added}}
		}},
		{"a pending key leaves the JWKS and the signing key keeps signing", 0, func(t *testing.T) retireCase {
			set := generate(t, ES256)
			id := set.Keys[0].ID
			pending := rotateNow(t, set, now.Add(-time.Minute))
			return retireCase{set: set, ids: []string{pending.ID}, at: now, retired: []string{pending.ID}, signers: map[string]string{ES256: id}}
		}},
		{"a retiring key leaves the JWKS at once and its active successor keeps signing", 0, func(t *testing.T) retireCase {
			set := generate(t, ES256)
			id := set.Keys[0].ID
			succ := rotateNow(t, set, now.Add(-2*time.Hour))
			_, err := Rotate(set, succ.ActiveFrom, RotationPolicy{Algorithms: []string{ES256}})
			require.NoError(t, err)
			require.Equal(t, StateRetiring, set.State(set.Keys[0], now))
			return retireCase{set: set, ids: []string{id}, at: now, retired: []string{id}, signers: map[string]string{ES256: succ.ID}}
		}},
		{"the new key outranks a key that started signing minutes ago", 0, func(t *testing.T) retireCase {
			set := generate(t, ES256)
			rotateNow(t, set, now.Add(-14*time.Minute)) // signs from now-4m
			latest := rotateNow(t, set, now.Add(-12*time.Minute))
			_, err := Rotate(set, now, RotationPolicy{Algorithms: []string{ES256}})
			require.NoError(t, err)
			return retireCase{set: set, ids: []string{latest.ID}, at: now, retired: []string{latest.ID}, signers: map[string]string{ES256: added}}
		}},
		{"a key already retired early changes nothing", 0, func(t *testing.T) retireCase {
			set := generate(t, ES256)
			id := set.Keys[0].ID
			_, err := RetireNow(set, []string{id}, now.Add(-time.Minute))
			require.NoError(t, err)
			return retireCase{set: set, ids: []string{id}, at: now, already: []string{id}, signers: map[string]string{ES256: set.Keys[1].ID}}
		}},
		{"an unknown key ID changes nothing", 0, func(t *testing.T) retireCase {
			set := generate(t, ES256)
			return retireCase{set: set, ids: []string{"ES256-unknown"}, at: now, unknown: []string{"ES256-unknown"}, signers: map[string]string{ES256: set.Keys[0].ID}}
		}},
		{"known keys are retired when an unknown one is named with them", 0, func(t *testing.T) retireCase {
			set := generate(t, ES256)
			id := set.Keys[0].ID
			return retireCase{set: set, ids: []string{"nope", id}, at: now, retired: []string{id}, unknown: []string{"nope"}, signers: map[string]string{ES256: added}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.prepare(t)
			before, err := c.set.Marshal()
			require.NoError(t, err)
			got, err := RetireNow(c.set, c.ids, c.at)
			require.NoError(t, err)
			assert.Equal(t, c.retired, got.Retired, "retired")
			assert.Equal(t, c.already, got.Already, "already retired")
			assert.Equal(t, c.unknown, got.Unknown, "unknown")
			if len(c.retired) == 0 {
				after, err := c.set.Marshal()
				require.NoError(t, err)
				assert.Equal(t, string(before), string(after), "nothing changed")
			}
			addedBy := map[string]string{} // algorithm -> added kid
			for _, id := range got.Added {
				k := c.set.Keys[slices.IndexFunc(c.set.Keys, func(k Key) bool { return k.ID == id })]
				assert.NotContains(t, addedBy, k.Algorithm, "one new key per algorithm")
				addedBy[k.Algorithm] = id
			}

			replica := NewKeyring()
			replica.now = func() time.Time { return c.at.Add(-tt.lag) }
			require.NoError(t, replica.Load(c.set))
			var jwks jose.JSONWebKeySet
			require.NoError(t, json.Unmarshal(replica.JWKS(), &jwks))
			public := replica.PublicKeys()
			for _, id := range c.retired {
				k := c.set.Keys[slices.IndexFunc(c.set.Keys, func(k Key) bool { return k.ID == id })]
				assert.Equal(t, StateRetired, c.set.State(k, c.at), "%s is recorded as retired", id)
				assert.Empty(t, jwks.Key(id), "%s left the JWKS", id)
				assert.Empty(t, public.Key(id), "tokens of %s no longer verify", id)
			}
			assert.Len(t, got.Added, len(addedBy))
			for alg, want := range c.signers {
				if want == added {
					want = addedBy[alg]
					assert.NotEmpty(t, want, "%s got a new key", alg)
				}
				sg, err := replica.Signer(alg)
				require.NoError(t, err, "%s signs at once", alg)
				assert.Equal(t, want, sg.KeyID, "%s signer", alg)
				tok, err := sg.Sign(TypeAccessToken, []byte(`{"sub":"after"}`))
				require.NoError(t, err)
				obj, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
				require.NoError(t, err)
				found := jwks.Key(sg.KeyID)
				require.Len(t, found, 1, "the new signer is published")
				_, err = obj.Verify(found[0].Key)
				assert.NoError(t, err)
			}
			for alg := range addedBy {
				assert.Contains(t, c.signers, alg, "no key added for %s", alg)
			}
		})
	}
}

// A key retired early stays in the set, for the record, until every token it could have signed
// has expired; a pending successor then takes over from the key added in its place.
func TestRotateKeepsAKeyRetiredEarlyUntilItsTokensExpired(t *testing.T) {
	policy := RotationPolicy{MaxTokenLifetime: time.Hour, Algorithms: []string{ES256}}
	set, err := Generate([]string{ES256}, now.Add(-48*time.Hour))
	require.NoError(t, err)
	old := set.Keys[0]
	_, err = RotateNow(set, now.Add(-time.Minute), policy)
	require.NoError(t, err)
	pending := set.Keys[1]
	r, err := RetireNow(set, []string{old.ID}, now)
	require.NoError(t, err)
	require.Len(t, r.Added, 1)

	changed, err := Rotate(set, now, policy)
	require.NoError(t, err)
	assert.False(t, changed, "the retired key is kept and the new key is not retired")
	assert.Len(t, set.Keys, 3)
	assert.Equal(t, StateRetired, set.State(set.Keys[0], now))
	assert.Equal(t, pending.ActiveFrom, NextChange(set, now, policy), "the pending successor signs on its schedule")

	changed, err = Rotate(set, pending.ActiveFrom, policy)
	require.NoError(t, err)
	assert.True(t, changed)
	assert.Equal(t, StateRetiring, set.State(set.Keys[2], pending.ActiveFrom), "the added key steps down like a rotated one")
	kr := NewKeyring()
	kr.now = func() time.Time { return pending.ActiveFrom }
	require.NoError(t, kr.Load(set))
	sg, err := kr.Signer(ES256)
	require.NoError(t, err)
	assert.Equal(t, pending.ID, sg.KeyID)

	drop := now.Add(time.Hour + ClockSkew)
	assert.Equal(t, drop, NextChange(set, pending.ActiveFrom, policy), "the retired key is dropped when its tokens would have expired")
	_, err = Rotate(set, drop, policy)
	require.NoError(t, err)
	assert.False(t, slices.ContainsFunc(set.Keys, func(k Key) bool { return k.ID == old.ID }), "dropped")
}

func TestParseKeyIDs(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []string
	}{
		{"one key ID is a list", "RS256-0a1b", []string{"RS256-0a1b"}},
		{"key IDs are separated by commas", "RS256-0a1b,ES256-2c3d", []string{"RS256-0a1b", "ES256-2c3d"}},
		{"spaces around key IDs are ignored", " RS256-0a1b , ES256-2c3d\t", []string{"RS256-0a1b", "ES256-2c3d"}},
		{"a repeated key ID counts once", "a,b,a", []string{"a", "b"}},
		{"an empty value is refused", "  ", nil},
		{"an empty entry is refused", "a,,b", nil},
		{"a trailing comma is refused", "a,", nil},
		{"a space inside a key ID is refused", "RS256 0a1b", nil},
		{"a control character is refused", "a\x00b", nil},
		{"a non-ASCII character is refused", "RS256-\u202e", nil},
		{"more than maxKeyIDs key IDs are refused", strings.Repeat("k,", maxKeyIDs) + "k", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeyIDs(tt.value)
			if tt.want == nil {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseKeyIDs(f *testing.F) {
	for _, s := range []string{"RS256-0a1b", "a, b ,a", "", ",", "a,,b", "\u202e", "a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		ids, err := ParseKeyIDs(value)
		if err != nil {
			return
		}
		if len(ids) == 0 || len(ids) > maxKeyIDs {
			t.Fatalf("%q parsed to %d key IDs", value, len(ids))
		}
		for _, id := range ids {
			if id == "" || strings.ContainsAny(id, ", ") || strings.IndexFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
				t.Fatalf("%q parsed to the key ID %q", value, id)
			}
		}
		again, err := ParseKeyIDs(strings.Join(ids, ","))
		if err != nil || !slices.Equal(ids, again) {
			t.Fatalf("%q: the parsed list %q does not parse back (%v, %q)", value, ids, err, again)
		}
	})
}
