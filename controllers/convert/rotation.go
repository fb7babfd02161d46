package convert

import (
	"crypto/sha256"
	"time"

	"github.com/go-jose/go-jose/v4"
	corev1 "k8s.io/api/core/v1"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// RotationSecretSuffix is appended to the OAuthClient's name to name the Secret in which the
// leader keeps a client's rotation state (spec.secretRotation): hashes, never secrets.
const RotationSecretSuffix = "-oauth-client-rotation"

// Keys of the rotation state Secret. The hashes are SHA-256 of the client secret's value, as the
// registry keeps them; the times are RFC 3339.
const (
	RotationCurrentHashKey   = "current-sha256"
	RotationCurrentSinceKey  = "current-since"
	RotationPreviousHashKey  = "previous-sha256"
	RotationPreviousUntilKey = "previous-until"
)

// Keys of a generated key pair's Secret (keyPolicy Generate) besides the JWK set (JWKSKey):
// the current private key for the workload, the current key's ID, when the current key was
// generated, and the previous key's ID with the time until which it is accepted (times RFC 3339).
const (
	KeyPrivateKeyKey    = "private-key.pem"
	KeyIDKey            = "kid"
	KeyCurrentSinceKey  = "current-since"
	KeyPreviousIDKey    = "previous-kid"
	KeyPreviousUntilKey = "previous-until"
)

// RotationSecretName is the name of the client's rotation state Secret.
func RotationSecretName(oc *v1alpha1.OAuthClient) string { return oc.Name + RotationSecretSuffix }

// RotationState is what a rotation state Secret holds.
type RotationState struct {
	Current, Previous [sha256.Size]byte
	HasCurrent        bool
	HasPrevious       bool
	CurrentSince      time.Time
	PreviousUntil     time.Time
}

// ParseRotationState reads a rotation state Secret; a missing or malformed entry is absent.
func ParseRotationState(data map[string][]byte) RotationState {
	var st RotationState
	if v := data[RotationCurrentHashKey]; len(v) == sha256.Size {
		st.Current, st.HasCurrent = [sha256.Size]byte(v), true
	}
	if v := data[RotationPreviousHashKey]; len(v) == sha256.Size {
		st.Previous, st.HasPrevious = [sha256.Size]byte(v), true
	}
	st.CurrentSince = parseTime(data[RotationCurrentSinceKey])
	st.PreviousUntil = parseTime(data[RotationPreviousUntilKey])
	return st
}

// Data returns the Secret data of the state.
func (st RotationState) Data() map[string][]byte {
	d := map[string][]byte{}
	if st.HasCurrent {
		d[RotationCurrentHashKey] = st.Current[:]
		d[RotationCurrentSinceKey] = []byte(st.CurrentSince.UTC().Format(time.RFC3339))
	}
	if st.HasPrevious {
		d[RotationPreviousHashKey] = st.Previous[:]
		d[RotationPreviousUntilKey] = []byte(st.PreviousUntil.UTC().Format(time.RFC3339))
	}
	return d
}

func parseTime(v []byte) time.Time {
	t, err := time.Parse(time.RFC3339, string(v))
	if err != nil {
		return time.Time{}
	}
	return t
}

// ClientSecretHash returns the SHA-256 of the client secret secret holds for oc (SecretRef's
// key), as the registry keeps it; ok is false when it holds none (missing, empty).
func ClientSecretHash(oc *v1alpha1.OAuthClient, secret *corev1.Secret) (hash [sha256.Size]byte, ok bool) {
	name, key := SecretRef(oc)
	value, err := secretValue(secret, oc.Namespace, name, key)
	if err != nil {
		return hash, false
	}
	return registry.HashSecret(value), true
}

// Next is the state after seeing, at now, the client secret whose hash is current (hasCurrent
// false: none, then only the expiry applies), for a client whose grace period is grace. The
// one rule of the leader (in the cluster) and of the manifest loader (embedded):
//   - the first secret seen becomes current, since now;
//   - a secret other than the current one is a rotation (rotated true): it becomes current
//     since now, and the current one becomes the previous, accepted until now+grace (none with
//     a grace period of 0);
//   - the previous is accepted at most grace after the current one was first seen (lowering
//     the grace period shortens a running window; 0 ends it) and is dropped once that passed.
//
// Times are kept to the second, as the state Secret holds them.
func (st RotationState) Next(current [sha256.Size]byte, hasCurrent bool, now time.Time, grace time.Duration) (next RotationState, rotated bool) {
	now = now.UTC().Truncate(time.Second)
	grace = max(grace, 0)
	next = st
	if hasCurrent && (!st.HasCurrent || st.Current != current) {
		rotated = st.HasCurrent
		next.HasPrevious, next.Previous, next.PreviousUntil = false, [sha256.Size]byte{}, time.Time{}
		if rotated && grace > 0 {
			next.HasPrevious, next.Previous, next.PreviousUntil = true, st.Current, now.Add(grace)
		}
		next.HasCurrent, next.Current, next.CurrentSince = true, current, now
	}
	if next.HasPrevious {
		if limit := next.CurrentSince.Add(grace); next.PreviousUntil.After(limit) {
			next.PreviousUntil = limit
		}
		if !now.Before(next.PreviousUntil) || !next.HasCurrent {
			next.HasPrevious, next.Previous, next.PreviousUntil = false, [sha256.Size]byte{}, time.Time{}
		}
	}
	return next, rotated
}

// applyRotation sets the client's previous secret from its rotation state: the recorded
// previous secret until its time, or, when the leader has not yet recorded a change it will
// (the state's current hash is not the Secret's), the recorded current one for a grace period
// from now, so that no replica refuses the old secret while the leader catches up.
func applyRotation(oc *v1alpha1.OAuthClient, c *registry.Client, in ClientInputs) {
	if oc.Spec.SecretRotation == nil || in.Rotation == nil {
		return
	}
	st := ParseRotationState(in.Rotation.Data)
	if st.HasPrevious && in.Now.Before(st.PreviousUntil) && st.Previous != c.SecretHash {
		c.PreviousSecretHash, c.PreviousSecretUntil = st.Previous, st.PreviousUntil
	}
	if grace := GracePeriod(oc); grace > 0 && st.HasCurrent && st.Current != c.SecretHash {
		c.PreviousSecretHash, c.PreviousSecretUntil = st.Current, in.Now.Add(grace)
	}
}

// PreviousKeyUntil returns until when the previous key of a generated key pair's Secret is
// accepted; zero when it has none.
func PreviousKeyUntil(keys *corev1.Secret) time.Time {
	if keys == nil || len(keys.Data[KeyPreviousIDKey]) == 0 {
		return time.Time{}
	}
	return parseTime(keys.Data[KeyPreviousUntilKey])
}

// applyKeyRotation drops the previous key of a generated key pair (keyPolicy Generate) once its
// grace period is over.
func applyKeyRotation(oc *v1alpha1.OAuthClient, keys []jose.JSONWebKey, in ClientInputs) []jose.JSONWebKey {
	if oc.Spec.KeyPolicy != v1alpha1.KeyPolicyGenerate || in.Keys == nil {
		return keys
	}
	prev := string(in.Keys.Data[KeyPreviousIDKey])
	if prev == "" || in.Now.Before(PreviousKeyUntil(in.Keys)) {
		return keys
	}
	out := make([]jose.JSONWebKey, 0, len(keys))
	for _, k := range keys {
		if k.KeyID != prev {
			out = append(out, k)
		}
	}
	return out
}
