package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestErrorsMatchTheirSentinel(t *testing.T) {
	cause := errors.New("disk on fire")
	e := ErrInvalidGrant.WithDescription("code expired").WithStatus(http.StatusConflict).WithCause(cause)

	t.Run("a copy matches its sentinel and no other", func(t *testing.T) {
		assert.ErrorIs(t, e, ErrInvalidGrant)
		assert.NotErrorIs(t, e, ErrInvalidRequest)
		assert.ErrorIs(t, fmt.Errorf("wrapped: %w", e), ErrInvalidGrant)
	})
	t.Run("a copy unwraps to its cause", func(t *testing.T) {
		assert.ErrorIs(t, e, cause)
	})
	t.Run("With methods leave the sentinel unchanged", func(t *testing.T) {
		assert.Equal(t, http.StatusBadRequest, ErrInvalidGrant.StatusCode())
		assert.NotEqual(t, "code expired", ErrInvalidGrant.Description())
		assert.NoError(t, ErrInvalidGrant.Unwrap())
		assert.Equal(t, http.StatusConflict, e.StatusCode())
		assert.Equal(t, "invalid_grant", e.Code())
	})
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		status    int
		code      string
		challenge bool
	}{
		{"an RFC 6749 error is written with its status", ErrInvalidScope, 400, "invalid_scope", false},
		{"invalid_client after Basic is 401 with a challenge", ErrInvalidClient.WithBasicChallenge(), 401, "invalid_client", true},
		{"temporarily_unavailable is 503", ErrTemporarilyUnavailable, 503, "temporarily_unavailable", false},
		{"a wrapped error keeps its code", fmt.Errorf("ctx: %w", ErrInvalidGrant), 400, "invalid_grant", false},
		{"an unexpected error is server_error without its text", errors.New("secret internals"), 500, "server_error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, httptest.NewRequest(http.MethodPost, TokenPath, nil), tt.err)
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, "application/json;charset=UTF-8", rec.Header().Get("Content-Type"))
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			assert.Equal(t, "no-cache", rec.Header().Get("Pragma"))
			assert.Equal(t, tt.challenge, rec.Header().Get("WWW-Authenticate") != "")
			var body map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			assert.Equal(t, tt.code, body["error"])
			assert.NotContains(t, rec.Body.String(), "internals")
		})
	}
}

func TestRecoverPanicsAnswersServerError(t *testing.T) {
	h := RecoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, TokenPath, nil))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.JSONEq(t, `{"error":"server_error","error_description":"The authorization server encountered an unexpected condition."}`,
		rec.Body.String())
	assert.NotContains(t, rec.Body.String(), "boom")
}

func TestRecoverPanicsLetsAbortHandlerThrough(t *testing.T) {
	h := RecoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	})
}

func TestWriteErrorLogsAHungUpClientAtDebugNotAsAnError(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hangUp    bool
		wantError bool
	}{
		{"a store failure of a live request is an error", false, true},
		{"a cancelled request's failure is not", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errorLines int
			sink := funcr.New(func(prefix, args string) {}, funcr.Options{Verbosity: 1})
			logger := logr.New(&errorCounter{LogSink: sink.GetSink(), errors: &errorLines})
			ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), logger))
			defer cancel()
			if tc.hangUp {
				cancel()
			}
			r := httptest.NewRequestWithContext(ctx, http.MethodPost, TokenPath, nil)
			rec := httptest.NewRecorder()
			WriteError(rec, r, FromStore(fmt.Errorf("redis: %w", context.Canceled)))
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
			assert.Equal(t, tc.wantError, errorLines > 0)
		})
	}
}

// errorCounter counts the Error calls of a sink.
type errorCounter struct {
	logr.LogSink
	errors *int
}

func (e *errorCounter) Error(err error, msg string, kv ...any) {
	*e.errors++
	e.LogSink.Error(err, msg, kv...)
}

func (e *errorCounter) WithValues(kv ...any) logr.LogSink {
	return &errorCounter{LogSink: e.LogSink.WithValues(kv...), errors: e.errors}
}
