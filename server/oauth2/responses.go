package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// errorCodeKey is the span attribute of an error response's error code.
const errorCodeKey = attribute.Key("oauth2.error")

// Response headers and content types. Key rotation must publish a key longer than
// JWKSCacheControl's max-age before it signs with it.
const (
	ContentTypeJSON       = "application/json;charset=UTF-8"
	DiscoveryCacheControl = "public, max-age=300"
	JWKSCacheControl      = "public, max-age=300"
)

// basicRealm is the challenge sent with invalid_client after a Basic attempt.
const basicRealm = `Basic realm="latchkey", charset="UTF-8"`

// bearerRealm starts every Bearer challenge (RFC 6750 3).
const bearerRealm = `Bearer realm="latchkey"`

// errorBody is the JSON of an error response.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// clientGone reports whether cause is the request's own context ending: the client closed the
// connection or the server is shutting down.
func clientGone(r *http.Request, cause error) bool {
	return r.Context().Err() != nil && (errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded))
}

// WriteError writes err as an RFC 6749 error response. An error that is not an *Error is
// unexpected: it is logged and answered with server_error, revealing nothing of it.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	log := logr.FromContextOrDiscard(r.Context())
	var oe *Error
	if !errors.As(err, &oe) {
		log.Error(err, "unexpected error", "path", r.URL.Path)
		oe = ErrServerError
	} else if oe.status >= http.StatusInternalServerError && clientGone(r, oe.cause) {
		// The client hung up (or the server is stopping): nothing failed that an operator
		// should read about.
		log.V(1).Info("request abandoned", "path", r.URL.Path, "error", oe.code)
	} else if oe.status >= http.StatusInternalServerError {
		log.Error(oe.cause, "request failed", "path", r.URL.Path, "error", oe.code)
	} else {
		log.V(1).Info("request refused", "path", r.URL.Path, "error", oe.code, "description", oe.description)
	}
	recordOAuthError(r.Context(), oe.code)
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetAttributes(errorCodeKey.String(oe.code))
		if oe.status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, oe.code)
		}
	}
	body, mErr := json.Marshal(errorBody{Error: oe.code, Description: oe.description})
	if mErr != nil { // cannot happen for two strings; never leave the client without an answer
		body = []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", ContentTypeJSON)
	setNoStore(h)
	if oe.basicChallenge {
		h.Set("WWW-Authenticate", basicRealm)
	}
	if oe.retryAfter > 0 {
		h.Set("Retry-After", RetryAfterSeconds(oe.retryAfter))
	}
	w.WriteHeader(oe.status)
	_, _ = w.Write(body)
}

// Challenge shapes the WWW-Authenticate: Bearer header of WriteBearerError.
type Challenge struct {
	// NoToken: the request sent no token, so the challenge names no error (RFC 6750 3.1).
	NoToken bool
	// Describe repeats the error_description in the challenge.
	Describe bool
	// Scope is the scope the resource needs, for insufficient_scope.
	Scope string
	// DPoPAlgs, when set, makes it a DPoP challenge (RFC 9449 7.1) naming these
	// space-separated proof algorithms, for a request with the DPoP scheme.
	DPoPAlgs string
}

// WriteBearerError writes err as the answer to a request with a Bearer token (RFC 6750 3): a
// WWW-Authenticate: Bearer challenge and the same error as JSON. An err that is not an *Error
// is written by WriteError, without a challenge.
func WriteBearerError(w http.ResponseWriter, r *http.Request, err error, ch Challenge) {
	var oe *Error
	if !errors.As(err, &oe) {
		WriteError(w, r, err)
		return
	}
	challenge := bearerRealm
	if ch.DPoPAlgs != "" {
		challenge = `DPoP realm="latchkey", algs="` + quoted(ch.DPoPAlgs) + `"`
	}
	if !ch.NoToken {
		challenge += `, error="` + quoted(oe.code) + `"`
		if ch.Describe && oe.description != "" {
			challenge += `, error_description="` + quoted(oe.description) + `"`
		}
	}
	if ch.Scope != "" {
		challenge += `, scope="` + quoted(ch.Scope) + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	WriteError(w, r, oe)
}

// quoted escapes s for a quoted-string (RFC 9110 5.6.4).
func quoted(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// WriteJSON writes v, marshalled by encoding/json, with the status; the answer must not be
// cached. A HEAD request gets the headers only. A value that cannot be marshalled (never one of
// Latchkey's response types) is a server_error.
func WriteJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		WriteError(w, r, ErrServerError.WithCause(err))
		return
	}
	if r.Method == http.MethodHead {
		body = nil
	}
	h := w.Header()
	h.Set("Content-Type", ContentTypeJSON)
	setNoStore(h)
	w.WriteHeader(status)
	_, _ = w.Write(body) //nolint:gosec // JSON from encoding/json, served as application/json
}

// WriteEmpty answers with the status and no body, never cached (revocation's 200, a
// registration's 204).
func WriteEmpty(w http.ResponseWriter, status int) {
	setNoStore(w.Header())
	w.WriteHeader(status)
}

// WritePublicJSON writes a cacheable JSON document (discovery, JWKS).
func WritePublicJSON(w http.ResponseWriter, body []byte, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", ContentTypeJSON)
	h.Set("Cache-Control", cacheControl)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// RetryAfterSeconds is d as a Retry-After value: whole seconds, rounded up, at least one.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10)
}

func setNoStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// MethodNotAllowed answers 405 with a JSON error and the Allow header.
func MethodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		WriteError(w, r, ErrInvalidRequest.WithStatus(http.StatusMethodNotAllowed).
			WithDescription("The endpoint accepts "+allow+" only."))
	}
}

// NotFound answers 404 with a JSON error.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, ErrInvalidRequest.WithStatus(http.StatusNotFound).WithDescription("No endpoint at this path."))
}
