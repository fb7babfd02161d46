package assertion

import "fmt"

// CheckClaims applies p to the token's claims without checking its signature, for a token that
// another party verifies (the API server, in a TokenReview): a token that cannot pass then
// costs no round trip. p.Rules are not applied. The claims it returns are unverified.
func CheckClaims(tok *Token, p Policy) (UnverifiedClaims, error) {
	if err := p.check(); err != nil {
		return UnverifiedClaims{}, err
	}
	if tok == nil || tok.jws == nil {
		return UnverifiedClaims{}, fmt.Errorf("%w: no token", ErrMalformed)
	}
	c := Claims(tok.claims)
	if err := checkClaims(&c, &p); err != nil {
		return UnverifiedClaims{}, err
	}
	return UnverifiedClaims(c), nil
}
