package dpop

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// DefaultNoncePeriod is how often the nonce changes when NewNonces gets no period.
const DefaultNoncePeriod = 5 * time.Minute

// Nonces issues and checks stateless server nonces: base64url(window || HMAC-SHA256(key,
// window)). A nonce of the current or the previous window is valid, so every replica given the
// same key accepts every other's nonces without a store round trip.
type Nonces struct {
	key    []byte
	period time.Duration
}

// NonceKey derives the nonce key from a secret every replica shares (the signing key set's
// bytes), so no secret is stored for nonces alone; the label keeps the key apart from any
// other use of that secret.
func NonceKey(shared []byte) ([]byte, error) {
	if len(shared) == 0 {
		return nil, errors.New("dpop: empty shared secret")
	}
	return hkdf.Key(sha256.New, shared, nil, "latchkey dpop nonce v1", 32)
}

// NewNonces returns a nonce source with a key of at least 32 bytes.
func NewNonces(key []byte, period time.Duration) (*Nonces, error) {
	if len(key) < 32 {
		return nil, errors.New("dpop: nonce key shorter than 32 bytes")
	}
	if period <= 0 {
		period = DefaultNoncePeriod
	}
	return &Nonces{key: append([]byte(nil), key...), period: period}, nil
}

func (n *Nonces) window(t time.Time) uint64 { return uint64(t.UnixNano() / int64(n.period)) }

func (n *Nonces) mac(w uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], w)
	m := hmac.New(sha256.New, n.key)
	m.Write(b[:])
	return append(b[:], m.Sum(nil)...)
}

// Current returns the nonce of now's window.
func (n *Nonces) Current(now time.Time) string {
	return base64.RawURLEncoding.EncodeToString(n.mac(n.window(now)))
}

// Valid reports whether nonce is of now's window or the one before.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != 8+sha256.Size {
		return false
	}
	w := binary.BigEndian.Uint64(raw[:8])
	cur := n.window(now)
	if w != cur && w+1 != cur {
		return false
	}
	return hmac.Equal(raw, n.mac(w))
}
