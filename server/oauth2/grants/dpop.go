package grants

import (
	"context"
	"errors"
	"net/http"

	"github.com/latchkey-dev/latchkey/server/dpop"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// proofVerifier checks DPoP proofs; *dpop.Verifier implements it.
type proofVerifier interface {
	Verify(ctx context.Context, r dpop.Request) (dpop.Proof, error)
	Nonce() string
}

var _ proofVerifier = (*dpop.Verifier)(nil)

// DPoP binds the tokens of the token endpoint to DPoP keys (RFC 9449).
type DPoP struct {
	// Verifier checks the proofs; nil: no proof can be checked (a Required client is refused).
	Verifier proofVerifier
	// TokenURI is the token endpoint's URL as the issuer names it: the htu proofs must carry.
	TokenURI string
	// RequireNonce asks every proof for a server nonce (use_dpop_nonce without one).
	RequireNonce bool
}

// bind applies the client's DPoP policy to the request: with a valid proof it sets
// req.DPoPThumbprint (the tokens will be bound to its key); a Required client without one is
// refused with invalid_dpop_proof. A Disabled client's proof is ignored.
func (d DPoP) bind(ctx context.Context, c *registry.Client, req *oauth2.TokenRequest) error {
	req.DPoPThumbprint = ""
	if c.DPoP == registry.DPoPDisabled {
		return nil
	}
	if req.DPoPProof == "" {
		if c.DPoP == registry.DPoPRequired {
			return oauth2.ErrInvalidDPoPProof.WithDescription("The client must send a DPoP proof.")
		}
		return nil
	}
	if d.Verifier == nil {
		return oauth2.ErrInvalidDPoPProof.WithDescription("DPoP is not available on this server.")
	}
	p, err := d.Verifier.Verify(ctx, dpop.Request{
		Proof: req.DPoPProof, Method: http.MethodPost, URI: d.TokenURI, RequireNonce: d.RequireNonce})
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		return oauth2.ErrUseDPoPNonce.WithCause(err)
	case errors.Is(err, dpop.ErrInvalidProof):
		return oauth2.ErrInvalidDPoPProof.WithCause(err)
	case err != nil:
		return oauth2.FromStore(err)
	}
	req.DPoPThumbprint = p.Thumbprint
	return nil
}

// nonce is the nonce to send with every answer, "" when none is used.
func (d DPoP) nonce() string {
	if d.Verifier == nil {
		return ""
	}
	return d.Verifier.Nonce()
}
