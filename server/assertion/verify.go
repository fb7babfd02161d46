package assertion

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Leeway bounds: the clock skew allowed on exp, nbf and iat.
const (
	DefaultLeeway = 30 * time.Second
	MaxLeeway     = 5 * time.Minute
)

// Policy is what Verify requires of a token's claims.
type Policy struct {
	// Issuer is the iss required, exactly; it must not be empty.
	Issuer string
	// Audiences: the token's aud must contain at least one of them. It must not be empty (nor
	// contain ""); it must not contain the API server's own audience for ServiceAccount tokens.
	Audiences []string
	// ExactAudience requires aud to be exactly one value, in Audiences (ServiceAccount tokens:
	// a token also valid for another audience, such as the API server's, never passes).
	ExactAudience bool
	// Subject, when not empty, is the sub required, exactly.
	Subject string
	// MaxLifetime, when positive, requires exp and iat and exp - iat <= MaxLifetime.
	MaxLifetime time.Duration
	// RequireJTI requires a non-empty jti.
	RequireJTI bool
	// RefuseExtendedKubernetesTokens refuses tokens with a kubernetes.io warnafter claim: the
	// kubelet extended their lifetime to a year for old clients.
	RefuseExtendedKubernetesTokens bool
	// Leeway is the clock skew allowed on exp, nbf and iat: zero means DefaultLeeway, negative
	// none; more than MaxLeeway is refused (ErrPolicy).
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rules, when not nil, are CEL claim rules checked last, on a token whose signature
	// verified (ErrClaims).
	Rules *ClaimRules
}

func (p *Policy) check() error {
	switch {
	case p.Issuer == "":
		return fmt.Errorf("%w: no issuer", ErrPolicy)
	case len(p.Audiences) == 0:
		return fmt.Errorf("%w: no audience", ErrPolicy)
	case slices.Contains(p.Audiences, ""):
		return fmt.Errorf("%w: empty audience", ErrPolicy)
	case p.Leeway > MaxLeeway:
		return fmt.Errorf("%w: leeway over %s", ErrPolicy, MaxLeeway)
	}
	return nil
}

func (p *Policy) leeway() time.Duration {
	switch {
	case p.Leeway == 0:
		return DefaultLeeway
	case p.Leeway < 0:
		return 0
	}
	return p.Leeway
}

// Verify checks tok against p and its signature with keys, and returns its claims. The claims
// are checked first (a token they refuse costs no key lookup); the first failure is returned,
// wrapping one of the package's sentinels (ErrPolicy when p itself is invalid).
func Verify(ctx context.Context, tok *Token, keys KeySet, p Policy) (*Claims, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if tok == nil || tok.jws == nil {
		return nil, fmt.Errorf("%w: no token", ErrMalformed)
	}
	c := Claims(tok.claims)
	if err := checkClaims(&c, &p); err != nil {
		return nil, err
	}
	if err := checkSignature(ctx, tok, keys); err != nil {
		return nil, err
	}
	if err := p.Rules.Check(c.Raw); err != nil {
		return nil, err
	}
	return &c, nil
}

func checkClaims(c *Claims, p *Policy) error {
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	leeway := p.leeway()
	if c.Issuer != p.Issuer {
		return fmt.Errorf("%w: iss %s", ErrIssuer, quote(c.Issuer))
	}
	if err := checkAudience(c.Audience, p); err != nil {
		return err
	}
	if p.Subject != "" && c.Subject != p.Subject {
		return fmt.Errorf("%w: sub %s", ErrSubject, quote(c.Subject))
	}
	switch {
	case c.Expiry.IsZero():
		return fmt.Errorf("%w: no exp", ErrExpired)
	case !now.Add(-leeway).Before(c.Expiry):
		return fmt.Errorf("%w: exp is past", ErrExpired)
	case !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore):
		return fmt.Errorf("%w: nbf is in the future", ErrNotYetValid)
	case !c.IssuedAt.IsZero() && now.Add(leeway).Before(c.IssuedAt):
		return fmt.Errorf("%w: iat is in the future", ErrNotYetValid)
	}
	if p.MaxLifetime > 0 {
		switch {
		case c.IssuedAt.IsZero():
			return fmt.Errorf("%w: no iat", ErrLifetime)
		case c.Expiry.Sub(c.IssuedAt) > p.MaxLifetime:
			return fmt.Errorf("%w: exp - iat over %s", ErrLifetime, p.MaxLifetime)
		}
	}
	if p.RefuseExtendedKubernetesTokens && c.Kubernetes != nil && !c.Kubernetes.WarnAfter.IsZero() {
		return fmt.Errorf("%w: extended ServiceAccount token (kubernetes.io warnafter)", ErrLifetime)
	}
	if p.RequireJTI && c.ID == "" {
		return fmt.Errorf("%w: no jti", ErrClaims)
	}
	return nil
}

func checkAudience(aud []string, p *Policy) error {
	if p.ExactAudience {
		if len(aud) != 1 || !slices.Contains(p.Audiences, aud[0]) {
			return fmt.Errorf("%w: aud must be exactly one accepted audience", ErrAudience)
		}
		return nil
	}
	for _, a := range aud {
		if slices.Contains(p.Audiences, a) {
			return nil
		}
	}
	return fmt.Errorf("%w: aud has no accepted audience", ErrAudience)
}

func checkSignature(ctx context.Context, tok *Token, keys KeySet) error {
	if keys == nil {
		return fmt.Errorf("%w: no key set", ErrNoKey)
	}
	kid, alg := tok.header.KeyID, tok.header.Algorithm
	found, err := keys.Keys(ctx, kid)
	if err != nil {
		switch {
		case errors.Is(err, ErrKeysUnavailable):
			return err
		case ctx.Err() != nil:
			return fmt.Errorf("%w: %w", ErrKeysUnavailable, ctx.Err())
		}
		return fmt.Errorf("%w: key lookup failed", ErrKeysUnavailable)
	}
	tried := 0
	for i := range found {
		k := &found[i]
		if (kid != "" && k.KeyID != kid) || !keyFits(k, alg) {
			continue
		}
		if tried++; tried > MaxKeys {
			break
		}
		if tok.jws.Claims(k.Key) == nil { // no destination: only the signature is checked
			return nil
		}
	}
	if tried == 0 {
		if kid != "" {
			return fmt.Errorf("%w: no %s key with kid %s", ErrNoKey, alg, quote(kid))
		}
		return fmt.Errorf("%w: no %s key", ErrNoKey, alg)
	}
	return ErrSignature
}
