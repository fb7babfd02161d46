package assertion

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func jwkJSON(t *testing.T, k jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(k)
	require.NoError(t, err)
	return string(b)
}

func jwks(keys ...string) []byte {
	return []byte(`{"keys":[` + strings.Join(keys, ",") + `]}`)
}

func TestParseJWKS(t *testing.T) {
	es := newTestKey(t, ES256, "es")
	rs := newTestKey(t, RS256, "rs")
	ed := newTestKey(t, EdDSA, "ed")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	require.NoError(t, err)
	xb := x25519.PublicKey().Bytes()
	x25519JSON := fmt.Sprintf(`{"kty":"OKP","crv":"X25519","kid":"x","x":%q}`, base64.RawURLEncoding.EncodeToString(xb))

	t.Run("public RSA, EC and Ed25519 keys parse", func(t *testing.T) {
		keys, err := ParseJWKS(jwks(jwkJSON(t, es.public), jwkJSON(t, rs.public), jwkJSON(t, ed.public)))
		require.NoError(t, err)
		require.Len(t, keys, 3)
		assert.Equal(t, []string{"es", "rs", "ed"}, []string{keys[0].KeyID, keys[1].KeyID, keys[2].KeyID})
		assert.Equal(t, ES256, keys[0].Algorithm)
		assert.Equal(t, "sig", keys[0].Use)
	})
	t.Run("keys of unusable types are skipped", func(t *testing.T) {
		keys, err := ParseJWKS(jwks(x25519JSON, `{"kty":"XYZ","kid":"future"}`, jwkJSON(t, es.public)))
		require.NoError(t, err)
		require.Len(t, keys, 1)
		assert.Equal(t, "es", keys[0].KeyID)
	})
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"a private RSA key is refused", jwks(jwkJSON(t, jose.JSONWebKey{Key: rs.private, KeyID: "p"}))},
		{"a private EC key is refused", jwks(jwkJSON(t, es.public), jwkJSON(t, jose.JSONWebKey{Key: es.private, KeyID: "p"}))},
		{"a private Ed25519 key is refused", jwks(jwkJSON(t, jose.JSONWebKey{Key: ed.private, KeyID: "p"}))},
		{"a symmetric key is refused", jwks(`{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`)},
		{"a key without kty is refused", jwks(`{"kid":"a","n":"AQAB","e":"AQAB"}`)},
		{"an RSA key under 2048 bits is refused", jwks(jwkJSON(t, jose.JSONWebKey{Key: &small.PublicKey}))},
		{"an EC key off its curve is refused", jwks(`{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}`)},
		{"more than 64 keys are refused", jwks(strings.Repeat(jwkJSON(t, es.public)+",", MaxKeys) + jwkJSON(t, es.public))},
		{"a set with no usable key is refused", jwks(x25519JSON)},
		{"an empty set is refused", jwks()},
		{"JSON without keys is refused", []byte(`{}`)},
		{"a set that is not JSON is refused", []byte(`not json`)},
		{"a key that is not an object is refused", jwks(`"key"`)},
		{"a set over 1 MiB is refused", []byte(`{"keys":[],"x":"` + strings.Repeat("a", MaxJWKSBytes) + `"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseJWKS(tc.data)
			require.ErrorIs(t, err, ErrInvalidJWKS)
			assert.Nil(t, keys)
		})
	}
}

func TestStaticKeys(t *testing.T) {
	es := newTestKey(t, ES256, "es")
	es2 := newTestKey(t, ES256, "es")
	rs := newTestKey(t, RS256, "rs")
	ctx := context.Background()
	t.Run("keys are found by kid, all of them for no kid", func(t *testing.T) {
		s := staticKeys(t, es, es2, rs)
		got, err := s.Keys(ctx, "es")
		require.NoError(t, err)
		assert.Len(t, got, 2)
		got, err = s.Keys(ctx, "")
		require.NoError(t, err)
		assert.Len(t, got, 3)
		got, err = s.Keys(ctx, "nope")
		require.NoError(t, err)
		assert.Empty(t, got)
		assert.Equal(t, 3, s.Len())
	})
	t.Run("a nil StaticKeys has no keys", func(t *testing.T) {
		var s *StaticKeys
		got, err := s.Keys(ctx, "")
		require.NoError(t, err)
		assert.Empty(t, got)
	})
	for _, tc := range []struct {
		name string
		keys []jose.JSONWebKey
	}{
		{"a private key is refused", []jose.JSONWebKey{{Key: es.private}}},
		{"a symmetric key is refused", []jose.JSONWebKey{{Key: []byte("secret")}}},
		{"a nil key is refused", []jose.JSONWebKey{{}}},
		{"more than 64 keys are refused", make([]jose.JSONWebKey, MaxKeys+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewStaticKeys(tc.keys)
			require.ErrorIs(t, err, ErrInvalidJWKS)
		})
	}
}
