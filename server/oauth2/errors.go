package oauth2

import (
	"net/http"
	"time"
)

// Error is an OAuth 2.0 error response (RFC 6749 5.2). The sentinels below are its only roots:
// the With methods return changed copies, and errors.Is matches any copy against its sentinel
// by error code.
type Error struct {
	code        string
	description string
	status      int
	// basicChallenge adds WWW-Authenticate: Basic, for invalid_client after a Basic attempt.
	basicChallenge bool
	// retryAfter, when positive, is written as Retry-After (in whole seconds, rounded up).
	retryAfter time.Duration
	// cause is logged, never written to the client.
	cause error
}

// NewError returns a new sentinel: an error code, the status it is written with and its default
// description. Packages that own an endpoint declare their sentinels with it (RFC 7591's
// invalid_client_metadata, say); copies are made with the With methods.
func NewError(code string, status int, description string) *Error {
	return &Error{code: code, status: status, description: description}
}

// RFC 6749 errors, with the status each is written with unless changed by WithStatus.
var (
	ErrInvalidRequest = &Error{code: "invalid_request", status: http.StatusBadRequest,
		description: "The request is missing a required parameter, includes an invalid parameter value, or is otherwise malformed."}
	ErrInvalidClient = &Error{code: "invalid_client", status: http.StatusBadRequest,
		description: "Client authentication failed."}
	ErrInvalidGrant = &Error{code: "invalid_grant", status: http.StatusBadRequest,
		description: "The provided authorization grant is invalid, expired or revoked."}
	ErrUnauthorizedClient = &Error{code: "unauthorized_client", status: http.StatusBadRequest,
		description: "The client is not authorized to use this grant type."}
	ErrUnsupportedGrantType = &Error{code: "unsupported_grant_type", status: http.StatusBadRequest,
		description: "The authorization grant type is not supported by the authorization server."}
	ErrInvalidScope = &Error{code: "invalid_scope", status: http.StatusBadRequest,
		description: "The requested scope is invalid, unknown, or malformed."}
	ErrServerError = &Error{code: "server_error", status: http.StatusInternalServerError,
		description: "The authorization server encountered an unexpected condition."}
	ErrTemporarilyUnavailable = &Error{code: "temporarily_unavailable", status: http.StatusServiceUnavailable,
		description: "The authorization server is temporarily unable to handle the request."}
	// ErrAccessDenied is RFC 6749 4.1.2.1's (the user denied the request), written as 403 when
	// it is not sent to a redirect URI (a registrar at its bound).
	ErrAccessDenied = &Error{code: "access_denied", status: http.StatusForbidden,
		description: "The user denied the request."}
)

// RFC 8628 3.5 errors of the device_code grant's token requests.
var (
	ErrAuthorizationPending = &Error{code: "authorization_pending", status: http.StatusBadRequest,
		description: "The user has not yet approved or denied the request; poll again after the interval."}
	ErrSlowDown = &Error{code: "slow_down", status: http.StatusBadRequest,
		description: "Polling too fast: the interval grew by 5 seconds; wait that long between polls."}
	ErrExpiredToken = &Error{code: "expired_token", status: http.StatusBadRequest,
		description: "The device code has expired; start a new device authorization."}
)

// RFC 9449 errors of requests with a DPoP proof: the token endpoint writes them as 400; a
// resource answers 401 with a DPoP challenge. With use_dpop_nonce the DPoP-Nonce header
// carries the nonce to use.
var (
	ErrInvalidDPoPProof = &Error{code: "invalid_dpop_proof", status: http.StatusBadRequest,
		description: "The DPoP proof is missing or invalid."}
	ErrUseDPoPNonce = &Error{code: "use_dpop_nonce", status: http.StatusBadRequest,
		description: "Resend the request with a DPoP proof carrying the nonce of the DPoP-Nonce header."}
)

// RFC 6750 3.1 errors of requests with a Bearer token. They are written with a
// WWW-Authenticate: Bearer challenge (see WriteBearerError).
var (
	ErrInvalidToken = &Error{code: "invalid_token", status: http.StatusUnauthorized,
		description: "The access token is missing or invalid."}
	ErrInsufficientScope = &Error{code: "insufficient_scope", status: http.StatusForbidden,
		description: "The access token lacks a scope the request needs."}
)

// Error returns the error code and description.
func (e *Error) Error() string {
	if e.description == "" {
		return e.code
	}
	return e.code + ": " + e.description
}

// Is reports whether target is an *Error with the same error code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.code == e.code
}

// Unwrap returns the internal cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Code is the RFC 6749 error code, e.g. "invalid_request".
func (e *Error) Code() string { return e.code }

// Description is the human-readable error_description.
func (e *Error) Description() string { return e.description }

// StatusCode is the HTTP status the error is written with.
func (e *Error) StatusCode() int { return e.status }

// WithDescription returns a copy with the error_description.
func (e *Error) WithDescription(description string) *Error {
	c := *e
	c.description = description
	return &c
}

// WithStatus returns a copy written with the HTTP status.
func (e *Error) WithStatus(status int) *Error {
	c := *e
	c.status = status
	return &c
}

// WithBasicChallenge returns a copy written as 401 with WWW-Authenticate: Basic, as RFC 6749
// 5.2 requires for invalid_client when the client authenticated with the Authorization header.
func (e *Error) WithBasicChallenge() *Error {
	c := *e
	c.status = http.StatusUnauthorized
	c.basicChallenge = true
	return &c
}

// WithRetryAfter returns a copy written with a Retry-After header of d (rounded up to whole
// seconds, at least one).
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	c := *e
	c.retryAfter = d
	return &c
}

// WithCause returns a copy carrying an internal cause for the server's log; it is never sent.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}
