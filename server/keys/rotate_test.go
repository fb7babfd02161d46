package keys

import (
	"encoding/json"
	"fmt"
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
