package token

import (
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey-dev/latchkey/server/keys"
)

// ErrInvalidHint: an id_token_hint is not an ID token this server signed (malformed, alg none
// or another algorithm than its key's, unknown key, wrong signature, type or issuer, issued in
// the future, or without sub or aud). Errors of VerifyIDTokenHint wrap it with the reason, for
// logs only.
var ErrInvalidHint = errors.New("token: id_token_hint is invalid")

// IDTokenHint is what a verified id_token_hint (OpenID Connect RP-Initiated Logout 1.0 2) says.
type IDTokenHint struct {
	// Subject is sub; ClientID is aud (Latchkey's ID tokens have one audience, the client).
	Subject, ClientID string
	// SessionID is sid, the OP session the token was issued in; "" when it has none.
	SessionID string
	// Expired reports that exp has passed: the hint still identifies the user and the client.
	Expired bool
}

// hintClaims are the claims of an ID token that a logout or a token exchange reads.
type hintClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	SessionID string   `json:"sid"`
	MayAct    *Actor   `json:"may_act"`
	Actor     *Actor   `json:"act"`
}

// VerifyIDTokenHint checks an ID token presented as id_token_hint: signed by a published key
// with that key's algorithm (never alg none), header typ JWT, iss this issuer, iat no later
// than keys.ClockSkew ahead, sub and exactly one aud. An expired token is accepted (and says
// so): RP-Initiated Logout lets an RP identify the user with an ID token it got long ago.
func (v *Verifier) VerifyIDTokenHint(tok string) (*IDTokenHint, error) {
	c, err := v.idToken(tok)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHint, err)
	}
	return &IDTokenHint{
		Subject: c.Subject, ClientID: c.Audience[0], SessionID: c.SessionID,
		Expired: c.Expiry == 0 || v.now().Unix() >= c.Expiry,
	}, nil
}

// IDToken is what a verified ID token presented as a token exchange's subject or actor token
// (RFC 8693) says.
type IDToken struct {
	// Subject is sub; ClientID is aud (Latchkey's ID tokens have one audience, the client).
	Subject, ClientID string
	// SessionID is sid, the OP session the token was issued in; "" when it has none.
	SessionID string
	// Expiry is exp.
	Expiry time.Time
	// MayAct and Actor are the may_act and act claims, nil when absent (Latchkey's ID tokens
	// have neither).
	MayAct, Actor *Actor
}

// VerifyIDToken checks an ID token as VerifyIDTokenHint does and also refuses an expired one.
// Errors wrap ErrInvalid.
func (v *Verifier) VerifyIDToken(tok string) (*IDToken, error) {
	c, err := v.idToken(tok)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if c.Expiry == 0 || v.now().Unix() >= c.Expiry {
		return nil, fmt.Errorf("%w: expired", ErrInvalid)
	}
	return &IDToken{
		Subject: c.Subject, ClientID: c.Audience[0], SessionID: c.SessionID,
		Expiry: time.Unix(c.Expiry, 0), MayAct: c.MayAct, Actor: c.Actor,
	}, nil
}

// idToken verifies an ID token but its expiry; the error says why, for logs only.
func (v *Verifier) idToken(tok string) (*hintClaims, error) {
	if len(tok) > MaxTokenBytes || strings.Count(tok, ".") != 2 {
		return nil, errors.New("not a compact JWS")
	}
	parsed, err := jwt.ParseSigned(tok, v.algs)
	if err != nil {
		return nil, err
	}
	h := parsed.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != keys.TypeJWT {
		return nil, fmt.Errorf("typ %q", typ)
	}
	published := v.keys.PublicKeys()
	found := published.Key(h.KeyID)
	if len(found) != 1 || found[0].Algorithm != h.Algorithm {
		return nil, errors.New("unknown key")
	}
	var c hintClaims
	if err := parsed.Claims(found[0].Key, &c); err != nil {
		return nil, err
	}
	switch {
	case c.Issuer != v.issuer:
		return nil, errors.New("foreign issuer")
	case c.IssuedAt != 0 && v.now().Add(keys.ClockSkew).Unix() < c.IssuedAt:
		return nil, errors.New("issued in the future")
	case c.Subject == "" || len(c.Audience) != 1 || c.Audience[0] == "":
		return nil, errors.New("missing claims")
	}
	return &c, nil
}
