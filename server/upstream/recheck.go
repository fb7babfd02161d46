package upstream

import (
	"context"
	"errors"
)

// ErrUserRefused is what a Rechecker answers when the upstream no longer accepts a user it
// signed in (deleted, disabled, out of the allowed organizations or groups): the refresh fails
// with invalid_grant and its family is revoked. Any other error means the upstream could not
// be asked; the refresh then fails too, without revoking.
var ErrUserRefused = errors.New("the identity provider no longer accepts the user")

// Rechecker asks an upstream identity provider whether it still accepts a user it signed in
// (issue 16: refresh re-checks the upstream at most once per interval). Each provider kind
// implements it: OIDC with the upstream's refresh token or userinfo, GitHub with its REST API,
// LDAP with a search for the user.
type Rechecker interface {
	Recheck(ctx context.Context, user Identity) error
}
