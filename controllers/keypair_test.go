package controllers

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/assertion"
)

var keyNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestNewKeyPairIsAnES256KeyNamedByItsThumbprint(t *testing.T) {
	kp, err := newKeyPair(keyNow.Add(300 * time.Millisecond))
	require.NoError(t, err)
	assert.Equal(t, elliptic.P256(), kp.private.Curve)
	assert.Equal(t, keyNow, kp.currentSince, "to the second, as it is written")
	assert.Nil(t, kp.previous)
	assert.Equal(t, "ES256", kp.current.Algorithm)
	assert.Equal(t, "sig", kp.current.Use)
	assert.True(t, kp.current.IsPublic())
	assert.True(t, kp.private.PublicKey.Equal(kp.current.Key))
	// RFC 7638: the SHA-256 thumbprint in base64url, 43 characters.
	assert.Equal(t, thumbprint(t, &kp.private.PublicKey), kp.current.KeyID)
	assert.Len(t, kp.current.KeyID, 43)

	other, err := newKeyPair(keyNow)
	require.NoError(t, err)
	assert.NotEqual(t, kp.current.KeyID, other.current.KeyID, "every key pair is new")
}

func TestKeyPairDataIsWhatTheWorkloadAndTheServerRead(t *testing.T) {
	kp, err := newKeyPair(keyNow)
	require.NoError(t, err)
	kp, err = kp.rotate(keyNow.Add(time.Minute), time.Hour)
	require.NoError(t, err)
	data, err := kp.data("public.json")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"private-key.pem", "kid", "current-since", "previous-kid", "previous-until", "public.json"}, mapKeys(data))

	// The workload's part: a PKCS#8 PEM private key.
	block, rest := pem.Decode(data["private-key.pem"])
	require.NotNil(t, block)
	assert.Empty(t, rest)
	assert.Equal(t, "PRIVATE KEY", block.Type)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	assert.True(t, kp.private.Equal(key))
	assert.Equal(t, kp.current.KeyID, string(data["kid"]))
	assert.Equal(t, "2026-03-04T05:07:07Z", string(data["current-since"]))
	assert.Equal(t, kp.previous.KeyID, string(data["previous-kid"]))
	assert.Equal(t, "2026-03-04T06:07:07Z", string(data["previous-until"]))

	// The server's part: the public keys, parsed as the registry's conversion parses them.
	keys, err := assertion.ParseJWKS(data["public.json"])
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, []string{kp.current.KeyID, kp.previous.KeyID}, []string{keys[0].KeyID, keys[1].KeyID})
	for _, k := range keys {
		assert.True(t, k.IsPublic())
	}
	assert.True(t, kp.private.PublicKey.Equal(keys[0].Key))
	assert.NotContains(t, string(data["public.json"]), `"d"`, "no private part")

	// And back.
	back, err := parseKeyPair(data, "public.json")
	require.NoError(t, err)
	assert.True(t, kp.private.Equal(back.private))
	assert.Equal(t, kp.current.KeyID, back.current.KeyID)
	assert.Equal(t, kp.currentSince, back.currentSince)
	require.NotNil(t, back.previous)
	assert.Equal(t, kp.previous.KeyID, back.previous.KeyID)
	assert.True(t, kp.previousUntil.Equal(back.previousUntil))
	again, err := back.data("public.json")
	require.NoError(t, err)
	assert.Equal(t, data, again, "the data is stable: an unchanged key pair writes nothing")
}

func TestKeyPairRotation(t *testing.T) {
	first, err := newKeyPair(keyNow)
	require.NoError(t, err)
	for _, tc := range []struct {
		name         string
		grace        time.Duration
		wantPrevious bool
		wantUntil    time.Time
	}{
		{name: "A grace period keeps the old public key until it is over", grace: 10 * time.Minute,
			wantPrevious: true, wantUntil: keyNow.Add(time.Hour + 10*time.Minute)},
		{name: "No grace period keeps no old key", grace: 0},
		{name: "A negative grace period keeps no old key", grace: -time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, err := first.rotate(keyNow.Add(time.Hour), tc.grace)
			require.NoError(t, err)
			assert.NotEqual(t, first.current.KeyID, next.current.KeyID)
			assert.False(t, first.private.Equal(next.private))
			assert.Equal(t, keyNow.Add(time.Hour), next.currentSince)
			if !tc.wantPrevious {
				assert.Nil(t, next.previous)
				assert.Len(t, next.publicKeys().Keys, 1)
				return
			}
			require.NotNil(t, next.previous)
			assert.Equal(t, first.current, *next.previous)
			assert.Equal(t, tc.wantUntil, next.previousUntil)
			assert.Equal(t, []jose.JSONWebKey{next.current, first.current}, next.publicKeys().Keys, "the current key first")
		})
	}

	t.Run("A second rotation within the grace period drops the older key", func(t *testing.T) {
		second, err := first.rotate(keyNow.Add(time.Hour), time.Hour)
		require.NoError(t, err)
		third, err := second.rotate(keyNow.Add(2*time.Hour), time.Hour)
		require.NoError(t, err)
		assert.Equal(t, []jose.JSONWebKey{third.current, second.current}, third.publicKeys().Keys)
	})
}

func TestKeyPairExpiry(t *testing.T) {
	first, err := newKeyPair(keyNow)
	require.NoError(t, err)
	kp, err := first.rotate(keyNow, time.Minute)
	require.NoError(t, err)
	for _, tc := range []struct {
		name        string
		now         time.Time
		grace       time.Duration
		wantDropped bool
		wantUntil   time.Time
	}{
		{"The previous key stays before its time", keyNow.Add(time.Minute - time.Nanosecond), time.Minute, false, keyNow.Add(time.Minute)},
		{"The previous key goes at its time", keyNow.Add(time.Minute), time.Minute, true, time.Time{}},
		{"The previous key goes after its time", keyNow.Add(time.Hour), time.Minute, true, time.Time{}},
		{"A longer grace period does not lengthen a running overlap", keyNow.Add(30 * time.Second), time.Hour, false, keyNow.Add(time.Minute)},
		{"A shorter grace period shortens a running overlap", keyNow.Add(5 * time.Second), 10 * time.Second, false, keyNow.Add(10 * time.Second)},
		{"A shorter grace period that is over drops the previous key", keyNow.Add(30 * time.Second), 10 * time.Second, true, time.Time{}},
		{"A grace period of 0 drops the previous key", keyNow, 0, true, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, dropped := kp.expire(tc.now, tc.grace)
			assert.Equal(t, tc.wantDropped, dropped)
			assert.Equal(t, tc.wantDropped, got.previous == nil)
			assert.Equal(t, tc.wantUntil, got.previousUntil)
			assert.Equal(t, kp.current, got.current, "the current key stays")
			assert.NotNil(t, kp.previous, "kp itself is unchanged")
		})
	}
	t.Run("A key pair without a previous key drops nothing", func(t *testing.T) {
		_, dropped := first.expire(keyNow.Add(time.Hour), time.Minute)
		assert.False(t, dropped)
	})
}

func TestParseKeyPairKeepsOnlyAPreviousKeyItCanFind(t *testing.T) {
	first, err := newKeyPair(keyNow)
	require.NoError(t, err)
	kp, err := first.rotate(keyNow, time.Hour)
	require.NoError(t, err)
	good, err := kp.data("jwks.json")
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		change func(d map[string][]byte)
	}{
		{"A previous-kid not in the JWK set is no previous key", func(d map[string][]byte) { d["previous-kid"] = []byte("unknown") }},
		{"A previous key without previous-until is no previous key", func(d map[string][]byte) { delete(d, "previous-until") }},
		{"An unreadable previous-until is no previous key", func(d map[string][]byte) { d["previous-until"] = []byte("tomorrow") }},
		{"An unreadable JWK set has no previous key", func(d map[string][]byte) { d["jwks.json"] = []byte("{") }},
		{"A previous-kid naming the current key is no previous key", func(d map[string][]byte) { d["previous-kid"] = d["kid"] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := maps.Clone(good)
			tc.change(d)
			got, err := parseKeyPair(d, "jwks.json")
			require.NoError(t, err)
			assert.Nil(t, got.previous)
			assert.True(t, kp.private.Equal(got.private), "the current key is read from the private key")
			assert.Equal(t, kp.current.KeyID, got.current.KeyID)
		})
	}
	t.Run("A missing current-since is zero", func(t *testing.T) {
		d := maps.Clone(good)
		delete(d, "current-since")
		got, err := parseKeyPair(d, "jwks.json")
		require.NoError(t, err)
		assert.True(t, got.currentSince.IsZero())
	})
}

func TestParsePrivateKeyRefusesAllButPKCS8P256(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1, err := x509.MarshalECPrivateKey(p256)
	require.NoError(t, err)
	good := pkcs8(p256)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"Nothing is refused", nil},
		{"Text that is not PEM is refused", []byte("not a key")},
		{"A SEC1 EC PRIVATE KEY block is refused", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})},
		{"A PRIVATE KEY block that is not PKCS#8 is refused", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: sec1})},
		{"A P-384 key is refused", pkcs8(p384)},
		{"An RSA key is refused", pkcs8(rsaKey)},
		{"An Ed25519 key is refused", pkcs8(edKey)},
		{"A second block after the key is refused", append(append([]byte{}, good...), good...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePrivateKey(tc.in)
			require.Error(t, err)
			if len(tc.in) > 0 {
				assert.NotContains(t, err.Error(), string(tc.in), "never quotes the key")
			}
		})
	}
	t.Run("A PKCS#8 P-256 key is read", func(t *testing.T) {
		got, err := parsePrivateKey(good)
		require.NoError(t, err)
		assert.True(t, p256.Equal(got))
	})
}
