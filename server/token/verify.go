package token

import (
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey-dev/latchkey/server/keys"
)

// MaxTokenBytes bounds a presented token; the tokens Latchkey signs are well under 2 KiB.
const MaxTokenBytes = 8 << 10

// ErrInvalid: a presented token is not an access token this server issued that is still valid
// (malformed, unknown key, wrong signature, type or issuer, expired, not yet valid, or missing
// claims). Errors of Verify wrap it with the reason, for logs only.
var ErrInvalid = errors.New("token: access token is invalid")

// PublicKeys gives the keys that verify the tokens this server signed; *keys.Keyring
// implements it.
type PublicKeys interface {
	PublicKeys() jose.JSONWebKeySet
}

var _ PublicKeys = (*keys.Keyring)(nil)

// Verifier checks access tokens this server issued: the signature with a published key (only
// the algorithms of keys.SupportedAlgorithms, and the key's own), the header typ at+jwt, iss,
// exp, iat and nbf (with keys.ClockSkew), and the claims every access token has. It does not
// know about revocation: that is the store's (the bearer endpoints check it). It is safe for
// concurrent use.
type Verifier struct {
	issuer string
	keys   PublicKeys
	now    func() time.Time
	algs   []jose.SignatureAlgorithm
}

// NewVerifier returns a Verifier of the tokens of issuer; now nil means time.Now.
func NewVerifier(issuer string, pub PublicKeys, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	algs := make([]jose.SignatureAlgorithm, 0, len(keys.SupportedAlgorithms()))
	for _, a := range keys.SupportedAlgorithms() {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	return &Verifier{issuer: issuer, keys: pub, now: now, algs: algs}
}

// Issuer is the iss the verifier accepts.
func (v *Verifier) Issuer() string { return v.issuer }

// Verify returns the claims of a valid access token, else an error wrapping ErrInvalid.
func (v *Verifier) Verify(tok string) (*AccessTokenClaims, error) {
	c, _, err := v.verify(tok)
	return c, err
}

// verify is Verify that also returns the published key that verified the signature.
func (v *Verifier) verify(tok string) (*AccessTokenClaims, *jose.JSONWebKey, error) {
	if len(tok) > MaxTokenBytes || strings.Count(tok, ".") != 2 {
		return nil, nil, fmt.Errorf("%w: not a compact JWS", ErrInvalid)
	}
	parsed, err := jwt.ParseSigned(tok, v.algs)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	h := parsed.Headers[0] // ParseSigned accepts the compact serialization only: one signature
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != keys.TypeAccessToken {
		return nil, nil, fmt.Errorf("%w: typ %q", ErrInvalid, typ)
	}
	published := v.keys.PublicKeys()
	found := published.Key(h.KeyID)
	if len(found) != 1 || found[0].Algorithm != h.Algorithm {
		return nil, nil, fmt.Errorf("%w: unknown key", ErrInvalid)
	}
	var c AccessTokenClaims
	if err := parsed.Claims(found[0].Key, &c); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	now := v.now()
	skewed := now.Add(keys.ClockSkew).Unix()
	switch {
	case c.Issuer != v.issuer:
		return nil, nil, fmt.Errorf("%w: foreign issuer", ErrInvalid)
	case c.Expiry == 0 || now.Unix() >= c.Expiry:
		return nil, nil, fmt.Errorf("%w: expired", ErrInvalid)
	case c.NotBefore != 0 && skewed < c.NotBefore, c.IssuedAt != 0 && skewed < c.IssuedAt:
		return nil, nil, fmt.Errorf("%w: not yet valid", ErrInvalid)
	case c.ID == "" || c.ClientID == "" || c.Subject == "":
		return nil, nil, fmt.Errorf("%w: missing claims", ErrInvalid)
	}
	return &c, &found[0], nil
}

// published reports whether k (the key that verified a token) is still published: under its
// kid, with its algorithm, and the same public key.
func (v *Verifier) published(k *jose.JSONWebKey) bool {
	var found *jose.JSONWebKey
	published := v.keys.PublicKeys().Keys
	for i := range published { // no allocation, unlike JSONWebKeySet.Key
		if published[i].KeyID != k.KeyID {
			continue
		}
		if found != nil {
			return false // two keys under one kid: verify refuses such a token too
		}
		found = &published[i]
	}
	if found == nil || found.Algorithm != k.Algorithm {
		return false
	}
	pub, ok := found.Key.(interface{ Equal(x crypto.PublicKey) bool })
	return ok && pub.Equal(k.Key)
}
