package oauth2

import (
	"context"
	"errors"

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
