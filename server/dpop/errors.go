package dpop

import "errors"

// Errors of Verify. Handlers match them with errors.Is and answer invalid_dpop_proof (or
// invalid_token at a resource) for ErrInvalidProof and use_dpop_nonce, with a DPoP-Nonce
// header, for ErrUseNonce. Wrapped errors carry the reason for logs; they never contain the
// proof or a token.
var (
	// ErrInvalidProof is any proof that fails a check (RFC 9449 invalid_dpop_proof).
	ErrInvalidProof = errors.New("invalid_dpop_proof")
	// ErrUseNonce is a proof without the current server nonce (RFC 9449 use_dpop_nonce).
	ErrUseNonce = errors.New("use_dpop_nonce")
)
