package dpop

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey-dev/latchkey/server/store"
)

// Algorithms are the proof signature algorithms accepted (and advertised as
// dpop_signing_alg_values_supported). Never none, never HMAC.
var Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256}

// AlgorithmNames is Algorithms as strings, for discovery.
func AlgorithmNames() []string {
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return names
}

const (
	// HeaderName is the request header that carries a proof and the scheme of a DPoP token.
	HeaderName = "DPoP"
	// NonceHeader is the response header with the nonce the client must use.
	NonceHeader = "DPoP-Nonce"
	// MaxProofSize bounds the header: a proof with an RSA-4096 jwk is about 1.5 KiB.
	MaxProofSize = 8 << 10
	// maxJTI bounds the jti claim.
	maxJTI = 256
	// DefaultWindow is the iat tolerance, either way, when Config.Window is zero.
	DefaultWindow = 60 * time.Second
	// typ is the required JOSE header typ.
	typ = "dpop+jwt"
	// replayKind separates jti counters from every other counter in the store.
	replayKind = "dpop-jti\x00"
)

// Counter is the part of the leased store that remembers jti values (store.Counters.Incr).
type Counter interface {
	Incr(ctx context.Context, key store.Hash, window time.Duration) (int64, error)
}

// Config configures a Verifier.
type Config struct {
	// Replay remembers the jti values seen; required.
	Replay Counter
	// Window is how far iat may be from now, either way (DefaultWindow when zero).
	Window time.Duration
	// Nonces issues and checks server nonces; nil never asks for one.
	Nonces *Nonces
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Verifier checks proofs. It is safe for concurrent use.
type Verifier struct {
	replay Counter
	window time.Duration
	nonces *Nonces
	now    func() time.Time
}

// NewVerifier returns a Verifier.
func NewVerifier(c Config) (*Verifier, error) {
	if c.Replay == nil {
		return nil, errors.New("dpop: a replay counter is required")
	}
	v := &Verifier{replay: c.Replay, window: c.Window, nonces: c.Nonces, now: c.Now}
	if v.window <= 0 {
		v.window = DefaultWindow
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Request is what a proof is checked against.
type Request struct {
	// Proof is the DPoP header's value (see FromHeader).
	Proof string
	// Method is the HTTP method of the request (htm).
	Method string
	// URI is the URI the server was called at (htu), as the server's issuer names it; its query
	// and fragment are ignored.
	URI string
	// AccessToken, when not empty, must be hashed into the proof's ath (a resource request).
	AccessToken string
	// RequireNonce refuses a proof without a valid nonce with ErrUseNonce.
	RequireNonce bool
}

// Proof is a verified proof.
type Proof struct {
	// Thumbprint is the base64url RFC 7638 SHA-256 thumbprint of the key: the cnf.jkt.
	Thumbprint string
	// JTI and IssuedAt are the proof's claims.
	JTI      string
	IssuedAt time.Time
}

type claims struct {
	JTI   string           `json:"jti"`
	HTM   string           `json:"htm"`
	HTU   string           `json:"htu"`
	IAT   *jwt.NumericDate `json:"iat"`
	ATH   string           `json:"ath"`
	Nonce string           `json:"nonce"`
}

// FromHeader returns the request's one DPoP header: ok is false without one, and more than one
// is an error (RFC 9449 4.3 check 1).
func FromHeader(h http.Header) (proof string, ok bool, err error) {
	values := h.Values(HeaderName)
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
		return values[0], true, nil
	default:
		return "", true, fmt.Errorf("%w: more than one DPoP header", ErrInvalidProof)
	}
}

// parse checks a proof's form, header, key and signature and returns its thumbprint and
// claims, without the checks that need a request, the clock or the store.
func parse(proof string) (thumbprint string, c claims, err error) {
	invalid := func(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidProof, reason) }
	if proof == "" || len(proof) > MaxProofSize {
		return "", c, invalid("empty or oversized proof")
	}
	jws, err := jose.ParseSignedCompact(proof, Algorithms)
	if err != nil {
		return "", c, invalid("not a compact JWS with an allowed algorithm")
	}
	if len(jws.Signatures) != 1 {
		return "", c, invalid("not exactly one signature")
	}
	h := jws.Signatures[0].Protected
	if t, _ := h.ExtraHeaders[jose.HeaderType].(string); t != typ {
		return "", c, invalid("typ is not dpop+jwt")
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() {
		return "", c, invalid("no valid jwk header")
	}
	if !jwk.IsPublic() {
		return "", c, invalid("the jwk holds a private key")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return "", c, invalid("signature does not verify with the jwk")
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", c, invalid("claims are not a JSON object of the right types")
	}
	if c.JTI == "" || len(c.JTI) > maxJTI || c.HTM == "" || c.HTU == "" || c.IAT == nil {
		return "", c, invalid("jti, htm, htu or iat missing")
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", c, invalid("no thumbprint for the jwk")
	}
	return base64.RawURLEncoding.EncodeToString(tp), c, nil
}

// Verify checks a proof against a request (RFC 9449 4.3) and records its jti; a proof is
// accepted once. It returns ErrInvalidProof or ErrUseNonce (wrapped), or a store error.
func (v *Verifier) Verify(ctx context.Context, r Request) (Proof, error) {
	invalid := func(reason string) (Proof, error) {
		return Proof{}, fmt.Errorf("%w: %s", ErrInvalidProof, reason)
	}
	tp, c, err := parse(r.Proof)
	if err != nil {
		return Proof{}, err
	}
	if c.HTM != r.Method {
		return invalid("htm does not match the method")
	}
	want, err := NormalizeURI(r.URI)
	if err != nil {
		return Proof{}, fmt.Errorf("dpop: request URI: %w", err)
	}
	got, err := NormalizeURI(c.HTU)
	if err != nil || got != want {
		return invalid("htu does not match the request URI")
	}
	now := v.now()
	iat := c.IAT.Time()
	if iat.Before(now.Add(-v.window)) || iat.After(now.Add(v.window)) {
		return invalid("iat is outside the accepted window")
	}
	if r.AccessToken != "" {
		sum := sha256.Sum256([]byte(r.AccessToken))
		ath := base64.RawURLEncoding.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(ath), []byte(c.ATH)) != 1 {
			return invalid("ath does not match the access token")
		}
	}
	if v.nonces != nil && (r.RequireNonce || c.Nonce != "") && !v.nonces.Valid(c.Nonce, now) {
		return Proof{}, fmt.Errorf("%w: missing or stale nonce", ErrUseNonce)
	}
	if r.RequireNonce && v.nonces == nil {
		return Proof{}, errors.New("dpop: a nonce is required but no nonce source is configured")
	}
	n, err := v.replay.Incr(ctx, store.HashOf(replayKind+tp+"\x00"+c.JTI), 2*v.window)
	if err != nil {
		return Proof{}, fmt.Errorf("dpop: recording the jti: %w", err)
	}
	if n > 1 {
		return invalid("jti was already used")
	}
	return Proof{Thumbprint: tp, JTI: c.JTI, IssuedAt: iat}, nil
}

// Nonce returns the nonce to send in a DPoP-Nonce header, or "" without a nonce source.
func (v *Verifier) Nonce() string {
	if v.nonces == nil {
		return ""
	}
	return v.nonces.Current(v.now())
}
