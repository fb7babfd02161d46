package token

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// A rotation keeps its new refresh token sealed beside the old token's record for the reuse
// grace window (store.RotateRefresh), so that the old token's holder, retrying a refresh whose
// answer was lost, gets the same new token again. The store must hold no token, so the key is
// derived from the old token, which only its holder (and no copy of the store: it keeps the
// hash) knows: HKDF-SHA256 Expand of the old token's secret part, info successorInfo, 32
// bytes. Its 32 random bytes are a uniformly random key already, so the Extract step is
// skipped, as RFC 5869 3.3 allows (eight allocations less per rotation). The cipher is
// ChaCha20-Poly1305 (golang.org/x/crypto: one allocation and 1.2 KB less than AES-GCM, and
// faster here) with a random nonce. The binding (the client ID and how it authenticated) is
// the additional data: a retry by another client, or by the same client authenticated another
// way, cannot open it. Format: successorVersion, the 12-byte nonce, then the ciphertext and
// its tag. BenchmarkSealSuccessor: about 1.5 µs and 15 allocations (shared machine).
const (
	successorInfo    = "latchkey refresh token successor v1"
	successorVersion = 1
	successorNonce   = chacha20poly1305.NonceSize
)

// errSealedSuccessor is every failure to open a sealed successor: the answer tells nothing of
// why (wrong token, wrong binding, tampered or truncated).
var errSealedSuccessor = errors.New("token: sealed successor does not open")

func successorAEAD(old string) (cipher.AEAD, error) {
	if !IsRefreshToken(old) {
		return nil, errSealedSuccessor
	}
	var secret [refreshSecretBytes]byte
	if _, err := base64.RawURLEncoding.Decode(secret[:], []byte(old[familyIDLength+1:])); err != nil {
		return nil, errSealedSuccessor
	}
	key, err := hkdf.Expand(sha256.New, secret[:], successorInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("token: successor key: %w", err)
	}
	return chacha20poly1305.New(key)
}

// SealSuccessor seals the refresh token next, which replaces old, for old's holder and the
// binding; OpenSuccessor opens it.
func SealSuccessor(old, next, binding string) ([]byte, error) {
	aead, err := successorAEAD(old)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+successorNonce, 1+successorNonce+len(next)+aead.Overhead())
	out[0] = successorVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("token: successor nonce: %w", err)
	}
	return aead.Seal(out, out[1:], []byte(next), []byte(binding)), nil
}

// OpenSuccessor opens what SealSuccessor sealed with the same old token and binding, and
// checks that it is a refresh token of old's family.
func OpenSuccessor(old string, sealed []byte, binding string) (string, error) {
	if !IsRefreshToken(old) || len(sealed) < 1+successorNonce || sealed[0] != successorVersion {
		return "", errSealedSuccessor
	}
	aead, err := successorAEAD(old)
	if err != nil {
		return "", err
	}
	plain, err := aead.Open(nil, sealed[1:1+successorNonce], sealed[1+successorNonce:], []byte(binding))
	if err != nil {
		return "", errSealedSuccessor
	}
	next := string(plain)
	if !IsRefreshToken(next) || RefreshFamily(next) != RefreshFamily(old) || next == old {
		return "", errSealedSuccessor
	}
	return next, nil
}
