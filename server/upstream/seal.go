package upstream

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// ErrSealed is what Sealer.Open answers for a sealed value it cannot open (another key, another
// subject, altered).
var ErrSealed = errors.New("upstream: sealed token cannot be opened")

// Sealer encrypts the upstream tokens kept in an identity record (AES-256-GCM with a key derived
// by HKDF-SHA256 from a secret every replica shares; the record's subject is the additional
// data, so a sealed token moved to another record does not open). It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer derives the sealing key from secret (at least 32 bytes).
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) < 32 {
		return nil, errors.New("upstream: the token key secret must be at least 32 bytes")
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "latchkey upstream token v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// RandomSealer is a Sealer with a random key, for one process.
func RandomSealer() *Sealer {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails (Go 1.24)
	s, err := NewSealer(secret)
	if err != nil {
		panic(err) // a 32-byte secret always makes a sealer
	}
	return s
}

// Seal encrypts plaintext for the subject: a random nonce, then the ciphertext.
func (s *Sealer) Seal(subject string, plaintext []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24)
	return s.aead.Seal(nonce, nonce, plaintext, []byte(subject))
}

// Open decrypts what Seal sealed for the subject; anything else is ErrSealed.
func (s *Sealer) Open(subject string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrSealed
	}
	out, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(subject))
	if err != nil {
		return nil, ErrSealed
	}
	return out, nil
}
