package convert

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestRotationStateNext(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	h1, h2, h3 := registry.HashSecret([]byte("one")), registry.HashSecret([]byte("two")), registry.HashSecret([]byte("three"))
	var none [sha256.Size]byte
	withPrevious := RotationState{HasCurrent: true, Current: h2, CurrentSince: t0, HasPrevious: true, Previous: h1, PreviousUntil: t0.Add(time.Hour)}
	tests := []struct {
		name        string
		state       RotationState
		hash        [sha256.Size]byte
		hasHash     bool
		now         time.Time
		grace       time.Duration
		want        RotationState
		wantRotated bool
	}{
		{
			name: "the first secret seen becomes current since now, without a previous",
			hash: h1, hasHash: true, now: t0, grace: time.Hour,
			want: RotationState{HasCurrent: true, Current: h1, CurrentSince: t0},
		},
		{
			name:  "the same secret again changes nothing",
			state: RotationState{HasCurrent: true, Current: h1, CurrentSince: t0}, hash: h1, hasHash: true, now: t0.Add(time.Minute), grace: time.Hour,
			want: RotationState{HasCurrent: true, Current: h1, CurrentSince: t0},
		},
		{
			name:  "a new secret makes the current one the previous, accepted for the grace period",
			state: RotationState{HasCurrent: true, Current: h1, CurrentSince: t0}, hash: h2, hasHash: true, now: t0.Add(time.Minute), grace: time.Hour,
			want:        RotationState{HasCurrent: true, Current: h2, CurrentSince: t0.Add(time.Minute), HasPrevious: true, Previous: h1, PreviousUntil: t0.Add(time.Hour + time.Minute)},
			wantRotated: true,
		},
		{
			name:  "with a grace period of 0 a new secret leaves no previous",
			state: RotationState{HasCurrent: true, Current: h1, CurrentSince: t0}, hash: h2, hasHash: true, now: t0.Add(time.Minute),
			want:        RotationState{HasCurrent: true, Current: h2, CurrentSince: t0.Add(time.Minute)},
			wantRotated: true,
		},
		{
			name:  "a second rotation inside the window replaces the previous with the secret it rotates away",
			state: withPrevious, hash: h3, hasHash: true, now: t0.Add(time.Minute), grace: time.Hour,
			want:        RotationState{HasCurrent: true, Current: h3, CurrentSince: t0.Add(time.Minute), HasPrevious: true, Previous: h2, PreviousUntil: t0.Add(time.Hour + time.Minute)},
			wantRotated: true,
		},
		{
			name:  "the previous is dropped once its time has come",
			state: withPrevious, hash: h2, hasHash: true, now: t0.Add(time.Hour), grace: time.Hour,
			want: RotationState{HasCurrent: true, Current: h2, CurrentSince: t0},
		},
		{
			name:  "a shorter grace period shortens a running window",
			state: withPrevious, hash: h2, hasHash: true, now: t0.Add(time.Minute), grace: 10 * time.Minute,
			want: RotationState{HasCurrent: true, Current: h2, CurrentSince: t0, HasPrevious: true, Previous: h1, PreviousUntil: t0.Add(10 * time.Minute)},
		},
		{
			name:  "a grace period lowered to 0 ends a running window",
			state: withPrevious, hash: h2, hasHash: true, now: t0.Add(time.Minute),
			want: RotationState{HasCurrent: true, Current: h2, CurrentSince: t0},
		},
		{
			name:  "without a secret the state stays, and its previous still expires",
			state: withPrevious, hash: none, now: t0.Add(2 * time.Hour), grace: time.Hour,
			want: RotationState{HasCurrent: true, Current: h2, CurrentSince: t0},
		},
		{
			name: "without a secret and without a state there is nothing",
			now:  t0, grace: time.Hour,
		},
		{
			name:  "times are kept to the second, as the Secret holds them",
			state: RotationState{HasCurrent: true, Current: h1, CurrentSince: t0}, hash: h2, hasHash: true, now: t0.Add(1500 * time.Millisecond), grace: time.Minute,
			want:        RotationState{HasCurrent: true, Current: h2, CurrentSince: t0.Add(time.Second), HasPrevious: true, Previous: h1, PreviousUntil: t0.Add(time.Minute + time.Second)},
			wantRotated: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, rotated := tc.state.Next(tc.hash, tc.hasHash, tc.now, tc.grace)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantRotated, rotated)
			assert.Equal(t, got, ParseRotationState(got.Data()), "the state survives its Secret")
		})
	}
}

func TestClientSecretHash(t *testing.T) {
	oc := oauthClient(nil)
	h, ok := ClientSecretHash(oc, secret("payments", "billing-oauth-client", map[string]string{"client-secret": "s3cret"}))
	require.True(t, ok)
	assert.Equal(t, registry.HashSecret([]byte("s3cret")), h)
	_, ok = ClientSecretHash(oc, secret("payments", "billing-oauth-client", map[string]string{"client-secret": ""}))
	assert.False(t, ok, "an empty value is no secret")
	_, ok = ClientSecretHash(oc, nil)
	assert.False(t, ok, "no Secret, no secret")
}

// TestRotationStateIsAppliedByTheConversion checks the rule every replica applies to the state
// the leader (or the manifest loader) keeps.
func TestRotationStateIsAppliedByTheConversion(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	rotating := func(oc *v1alpha1.OAuthClient) {
		oc.Spec.SecretRotation = &v1alpha1.SecretRotation{GracePeriod: &metav1.Duration{Duration: time.Hour}}
	}
	newSecret := secret("payments", "billing-oauth-client", map[string]string{"client-secret": "new"})
	oldHash, newHash := registry.HashSecret([]byte("old")), registry.HashSecret([]byte("new"))
	tests := []struct {
		name      string
		mutate    func(*v1alpha1.OAuthClient)
		state     *RotationState
		now       time.Time
		wantUntil time.Time // zero: no previous
	}{
		{
			name: "the recorded previous is accepted until its time", mutate: rotating, now: t0.Add(time.Minute), wantUntil: t0.Add(time.Hour),
			state: &RotationState{HasCurrent: true, Current: newHash, CurrentSince: t0, HasPrevious: true, Previous: oldHash, PreviousUntil: t0.Add(time.Hour)},
		},
		{
			name: "the recorded previous is not accepted after its time", mutate: rotating, now: t0.Add(time.Hour),
			state: &RotationState{HasCurrent: true, Current: newHash, CurrentSince: t0, HasPrevious: true, Previous: oldHash, PreviousUntil: t0.Add(time.Hour)},
		},
		{
			name: "a change not recorded yet keeps the recorded current working for a grace period from now", mutate: rotating,
			now: t0.Add(time.Minute), wantUntil: t0.Add(time.Hour + time.Minute),
			state: &RotationState{HasCurrent: true, Current: oldHash, CurrentSince: t0},
		},
		{
			name: "without secretRotation the state is ignored", now: t0.Add(time.Minute),
			state: &RotationState{HasCurrent: true, Current: newHash, CurrentSince: t0, HasPrevious: true, Previous: oldHash, PreviousUntil: t0.Add(time.Hour)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oc := oauthClient(tc.mutate)
			in := ClientInputs{Secret: newSecret, Now: tc.now}
			if tc.state != nil {
				in.Rotation = secret("payments", RotationSecretName(oc), nil)
				in.Rotation.Data = tc.state.Data()
			}
			c, err := ClientWith(oc, in)
			require.NoError(t, err)
			assert.Equal(t, registry.CurrentSecret, c.MatchSecret("new", tc.now))
			if tc.wantUntil.IsZero() {
				assert.Equal(t, registry.NoSecret, c.MatchSecret("old", tc.now))
				return
			}
			assert.Equal(t, tc.wantUntil, c.PreviousSecretUntil)
			assert.Equal(t, registry.PreviousSecret, c.MatchSecret("old", tc.now))
			assert.Equal(t, registry.NoSecret, c.MatchSecret("old", tc.wantUntil), "not at its end")
		})
	}
}
