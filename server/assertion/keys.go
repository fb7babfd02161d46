package assertion

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// KeySet gives the public keys that may have signed a token: those with key ID kid, or every
// key when kid is "". It returns no keys and no error when none matches; an error wrapping
// ErrKeysUnavailable when it has no keys to give and cannot get them. StaticKeys and *Remote
// implement it.
type KeySet interface {
	Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error)
}

var (
	_ KeySet = (*StaticKeys)(nil)
	_ KeySet = (*Remote)(nil)
)

// Bounds of key sets.
const (
	MaxKeys       = 64      // keys in a set, and keys Verify tries for one token
	MaxJWKSBytes  = 1 << 20 // JWK set JSON
	MinRSAKeyBits = 2048
)

// StaticKeys is a fixed key set: a client's registered keys (private_key_jwt) or an issuer's
// configured JWK set. The zero value has no keys.
type StaticKeys struct {
	keys []jose.JSONWebKey
}

// NewStaticKeys returns the key set of keys, which must be public RSA (at least MinRSAKeyBits),
// ECDSA (P-256, P-384, P-521) or Ed25519 keys, at most MaxKeys.
func NewStaticKeys(keys []jose.JSONWebKey) (*StaticKeys, error) {
	if len(keys) > MaxKeys {
		return nil, fmt.Errorf("%w: more than %d keys", ErrInvalidJWKS, MaxKeys)
	}
	for i := range keys {
		if err := checkPublicKey(keys[i].Key); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
	}
	return &StaticKeys{keys: append([]jose.JSONWebKey(nil), keys...)}, nil
}

// Keys implements KeySet.
func (s *StaticKeys) Keys(_ context.Context, kid string) ([]jose.JSONWebKey, error) {
	if s == nil {
		return nil, nil
	}
	return matchKeys(s.keys, kid), nil
}

// Len is the number of keys.
func (s *StaticKeys) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

func matchKeys(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	if kid == "" {
		return keys
	}
	var out []jose.JSONWebKey
	for _, k := range keys {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

// ParseJWKS parses a JWK set (RFC 7517 section 5) of public signing keys. It refuses input over
// MaxJWKSBytes, more than MaxKeys keys, a key without kty, private or symmetric keys, and RSA keys
// under MinRSAKeyBits; it skips keys of a type it cannot verify with (RFC 7517 section 5: X25519,
// ML-DSA, unknown kty), and refuses a set left with no key.
func ParseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	if len(data) > MaxJWKSBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidJWKS, MaxJWKSBytes)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object with a keys array", ErrInvalidJWKS)
	}
	if len(set.Keys) > MaxKeys {
		return nil, fmt.Errorf("%w: more than %d keys", ErrInvalidJWKS, MaxKeys)
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for i, raw := range set.Keys {
		k, ok, err := parseJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no usable signing key", ErrInvalidJWKS)
	}
	return keys, nil
}

// parseJWK parses one key; ok is false for a key of a type that is skipped.
func parseJWK(raw json.RawMessage) (jose.JSONWebKey, bool, error) {
	var probe struct {
		Kty string `json:"kty"`
		// Private (RFC 7518 6.2.2, 6.3.2, RFC 8037) and symmetric (6.4) members.
		D    json.RawMessage `json:"d"`
		P    json.RawMessage `json:"p"`
		Q    json.RawMessage `json:"q"`
		DP   json.RawMessage `json:"dp"`
		DQ   json.RawMessage `json:"dq"`
		QI   json.RawMessage `json:"qi"`
		OTH  json.RawMessage `json:"oth"`
		K    json.RawMessage `json:"k"`
		Priv json.RawMessage `json:"priv"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return jose.JSONWebKey{}, false, fmt.Errorf("%w: not a JSON object", ErrInvalidJWKS)
	}
	switch {
	case probe.Kty == "":
		return jose.JSONWebKey{}, false, fmt.Errorf("%w: no kty", ErrInvalidJWKS)
	case probe.Kty == "oct" || probe.K != nil:
		return jose.JSONWebKey{}, false, fmt.Errorf("%w: symmetric key", ErrInvalidJWKS)
	case probe.D != nil || probe.P != nil || probe.Q != nil || probe.DP != nil || probe.DQ != nil ||
		probe.QI != nil || probe.OTH != nil || probe.Priv != nil:
		return jose.JSONWebKey{}, false, fmt.Errorf("%w: private key", ErrInvalidJWKS)
	case probe.Kty != "RSA" && probe.Kty != "EC" && probe.Kty != "OKP":
		return jose.JSONWebKey{}, false, nil
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		if errors.Is(err, jose.ErrUnsupportedKeyType) {
			return jose.JSONWebKey{}, false, nil
		}
		return jose.JSONWebKey{}, false, fmt.Errorf("%w: %s key does not parse", ErrInvalidJWKS, probe.Kty)
	}
	if _, ok := k.Key.(ed25519.PublicKey); !ok && probe.Kty == "OKP" {
		return jose.JSONWebKey{}, false, nil
	}
	if err := checkPublicKey(k.Key); err != nil {
		return jose.JSONWebKey{}, false, err
	}
	return k, true, nil
}

// checkPublicKey accepts the public key types Verify can use.
func checkPublicKey(key any) error {
	switch key := key.(type) {
	case *rsa.PublicKey:
		if key == nil || key.N == nil || key.N.BitLen() < MinRSAKeyBits {
			return fmt.Errorf("%w: RSA key under %d bits", ErrInvalidJWKS, MinRSAKeyBits)
		}
	case *ecdsa.PublicKey:
		if key == nil || curveAlgorithm(key.Curve) == "" {
			return fmt.Errorf("%w: EC key on an unsupported curve", ErrInvalidJWKS)
		}
	case ed25519.PublicKey:
		if len(key) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 key of the wrong size", ErrInvalidJWKS)
		}
	default:
		return fmt.Errorf("%w: not a public RSA, EC or Ed25519 key", ErrInvalidJWKS)
	}
	return nil
}

func curveAlgorithm(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return ES256
	case elliptic.P384():
		return ES384
	case elliptic.P521():
		return ES512
	}
	return ""
}

// keyFits reports whether k may verify a signature of alg: a public key of alg's type (and
// curve), whose use, when set, is "sig" and whose alg, when set, is alg.
func keyFits(k *jose.JSONWebKey, alg string) bool {
	if (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != alg) {
		return false
	}
	if checkPublicKey(k.Key) != nil {
		return false
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case RS256, RS384, RS512, PS256, PS384, PS512:
			return true
		}
	case *ecdsa.PublicKey:
		return curveAlgorithm(key.Curve) == alg
	case ed25519.PublicKey:
		return alg == EdDSA
	}
	return false
}
