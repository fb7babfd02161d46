package oauth2

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-logr/logr"
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
	// cause is logged, never written to the client.
	cause error
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

// WithCause returns a copy carrying an internal cause for the server's log; it is never sent.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// errorBody is the JSON of an error response.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// basicRealm is the challenge sent with invalid_client after a Basic attempt.
const basicRealm = `Basic realm="latchkey", charset="UTF-8"`

// writeError writes err as an RFC 6749 error response. An error that is not an *Error is
// unexpected: it is logged and answered with server_error, revealing nothing of it.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	log := logr.FromContextOrDiscard(r.Context())
	var oe *Error
	if !errors.As(err, &oe) {
		log.Error(err, "unexpected error", "path", r.URL.Path)
		oe = ErrServerError
	} else if oe.status >= http.StatusInternalServerError {
		log.Error(oe.cause, "request failed", "path", r.URL.Path, "error", oe.code)
	} else {
		log.V(1).Info("request refused", "path", r.URL.Path, "error", oe.code, "description", oe.description)
	}
	rm := metricsOf(r.Context())
	rm.m.OAuthError(rm.endpoint, oe.code)
	body, mErr := json.Marshal(errorBody{Error: oe.code, Description: oe.description})
	if mErr != nil { // cannot happen for two strings; never leave the client without an answer
		body = []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if oe.basicChallenge {
		h.Set("WWW-Authenticate", basicRealm)
	}
	w.WriteHeader(oe.status)
	_, _ = w.Write(body)
}
