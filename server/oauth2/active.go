package oauth2

import (
	"context"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/token"
)

// Revocations tells revoked access tokens and grants; store.Store implements it.
type Revocations interface {
	TokenRevoked(ctx context.Context, jti string) (bool, error)
	FamilyRevoked(ctx context.Context, familyID string) (bool, error)
}

// AccessTokenActive reports whether a verified access token is still in force: its jti and
// its family (latchkey_family) are not revoked, its client still exists and, for a user's
// token, the user of its subject exists and is not disabled (a user re-created under the same
// username is another subject). An error means the store could not answer. Userinfo,
// introspection and token exchange (RFC 8693 subject and actor tokens) share it.
func AccessTokenActive(ctx context.Context, snap *registry.Snapshot, rev Revocations, c *token.AccessTokenClaims) (bool, error) {
	if _, ok := snap.Client(c.ClientID); !ok {
		return false, nil
	}
	if c.ForUser() {
		if u, ok := snap.UserBySubject(c.Subject); !ok || u.Disabled {
			return false, nil
		}
	}
	revoked, err := rev.TokenRevoked(ctx, c.ID)
	if err != nil || revoked {
		return false, err
	}
	if c.ForUser() {
		revoked, err = rev.FamilyRevoked(ctx, c.Family())
		if err != nil || revoked {
			return false, err
		}
	}
	return true, nil
}
