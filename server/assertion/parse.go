package assertion

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// MaxTokenBytes bounds a token Parse accepts.
const MaxTokenBytes = 16 << 10

// Signing algorithms Parse accepts (RFC 7518 and RFC 8037); "none" and HMAC are not among them.
const (
	RS256 = string(jose.RS256)
	RS384 = string(jose.RS384)
	RS512 = string(jose.RS512)
	PS256 = string(jose.PS256)
	PS384 = string(jose.PS384)
	PS512 = string(jose.PS512)
	ES256 = string(jose.ES256)
	ES384 = string(jose.ES384)
	ES512 = string(jose.ES512)
	EdDSA = string(jose.EdDSA)
)

// SupportedAlgorithms returns the algorithms Parse accepts, for token_endpoint_auth_signing_alg_values_supported.
func SupportedAlgorithms() []string {
	return []string{RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA}
}

func joseAlgorithms() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
		jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
	}
}

// Header is the protected header of a token.
type Header struct {
	Algorithm string // alg, one of SupportedAlgorithms
	KeyID     string // kid, possibly ""
	Type      string // typ, possibly ""
}

// Token is a parsed, not yet verified, JWT. Nothing in it is trustworthy until Verify returns
// its Claims.
type Token struct {
	jws    *jwt.JSONWebToken
	header Header
	claims UnverifiedClaims
}

// Header returns the token's protected header (unverified until Verify succeeds).
func (t *Token) Header() Header { return t.header }

// UnverifiedClaims returns the token's claims before any check: use them only to find which
// client, issuer or policy to verify the token with. Its Raw map is shared: do not modify it.
func (t *Token) UnverifiedClaims() UnverifiedClaims { return t.claims }

// Parse parses a compact JWS whose payload is a JSON object of claims. It refuses tokens over
// MaxTokenBytes, anything other than three base64url parts, an alg outside
// SupportedAlgorithms (ErrUnsupportedAlgorithm), a "crit" or "b64" header, and claims of the
// wrong JSON type (ErrMalformed). It checks no signature and no claim value.
func Parse(compact string) (*Token, error) {
	if len(compact) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	if strings.Count(compact, ".") != 2 || strings.HasSuffix(compact, ".") {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	parsed, err := jwt.ParseSigned(compact, joseAlgorithms())
	if err != nil {
		if alg, ok := unexpectedAlgorithm(err); ok {
			return nil, fmt.Errorf("%w: %s", ErrUnsupportedAlgorithm, quote(alg))
		}
		return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	if len(parsed.Headers) != 1 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	h := parsed.Headers[0]
	for _, name := range []jose.HeaderKey{"crit", "b64"} {
		if _, ok := h.ExtraHeaders[name]; ok {
			return nil, fmt.Errorf("%w: header %q not supported", ErrMalformed, name)
		}
	}
	typ, ok := h.ExtraHeaders[jose.HeaderType].(string)
	if _, present := h.ExtraHeaders[jose.HeaderType]; present && !ok {
		return nil, fmt.Errorf("%w: typ is not a string", ErrMalformed)
	}
	var payload rawPayload
	if err := parsed.UnsafeClaimsWithoutVerification(&payload); err != nil {
		return nil, fmt.Errorf("%w: claims are not JSON", ErrMalformed)
	}
	raw, err := decodeClaims(payload)
	if err != nil {
		return nil, err
	}
	claims, err := typedClaims(raw)
	if err != nil {
		return nil, err
	}
	return &Token{
		jws:    parsed,
		header: Header{Algorithm: h.Algorithm, KeyID: h.KeyID, Type: typ},
		claims: UnverifiedClaims(claims),
	}, nil
}

func unexpectedAlgorithm(err error) (string, bool) {
	var ua *jose.ErrUnexpectedSignatureAlgorithm
	if errors.As(err, &ua) {
		return string(ua.Got), true
	}
	return "", false
}

// rawPayload keeps the payload bytes go-jose hands over, so one decoder (encoding/json) reads
// them.
type rawPayload []byte

func (p *rawPayload) UnmarshalJSON(b []byte) error {
	*p = append((*p)[:0], b...)
	return nil
}

// decodeClaims decodes a JSON object, integers as int64 and other numbers as float64.
func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: claims are not JSON", ErrMalformed)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: claims are not one JSON object", ErrMalformed)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: claims are not a JSON object", ErrMalformed)
	}
	if err := convertNumbers(m); err != nil {
		return nil, err
	}
	return m, nil
}

func convertNumbers(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			n, err := convertNumber(e)
			if err != nil {
				return err
			}
			v[k] = n
		}
	case []any:
		for i, e := range v {
			n, err := convertNumber(e)
			if err != nil {
				return err
			}
			v[i] = n
		}
	}
	return nil
}

func convertNumber(v any) (any, error) {
	n, ok := v.(json.Number)
	if !ok {
		return v, convertNumbers(v)
	}
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := n.Float64()
	if err != nil {
		return nil, fmt.Errorf("%w: number out of range", ErrMalformed)
	}
	return f, nil
}
