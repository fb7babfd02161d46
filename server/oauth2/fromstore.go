package oauth2

import (
	"context"
	"errors"

	"github.com/go-logr/logr"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/store"
)

// FromStore is the one mapping from the errors of the server's backends (the leased store and
// the keyring) to the OAuth error a client gets:
//   - an *Error passes unchanged;
//   - store.ErrUnavailable (the store cannot be reached), keys.ErrNoKey (no signing key yet:
//     keys arrive moments after start, or while the key Secret is repaired) and a request that
//     ended while it waited (its context's error) are temporarily_unavailable (503): a retry
//     will work;
//   - store.ErrNotFound, ErrConflict, ErrAlreadyUsed, ErrReused and ErrRevoked are
//     invalid_grant: the grant (a code, a refresh token) is unknown, expired, used or revoked;
//     callers that answer something else for one of them check it first;
//   - anything else is server_error.
//
// The cause is kept for the server's log and never sent.
func FromStore(err error) error {
	var oe *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &oe):
		return err
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, keys.ErrNoKey),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ErrTemporarilyUnavailable.WithCause(err)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrAlreadyUsed),
		errors.Is(err, store.ErrReused), errors.Is(err, store.ErrRevoked):
		return ErrInvalidGrant.WithCause(err)
	}
	return ErrServerError.WithCause(err)
}

// FailOpen decides what a protection (brute-force limits, rate limits) does when the store
// it counts in fails: when the request has ended (its context is done) it returns the
// request's error as FromStore maps it, since nothing will read the answer; otherwise it logs
// msg at info level (an outage would otherwise log a stack trace per request; the store's error
// metric counts the failures) and returns nil, so the request goes on unprotected.
func FailOpen(ctx context.Context, err error, msg string, keysAndValues ...any) error {
	if ctx.Err() != nil {
		return FromStore(ctx.Err())
	}
	logr.FromContextOrDiscard(ctx).Info(msg, append(keysAndValues, "error", err.Error())...)
	return nil
}
