package oauth2

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/latchkey-dev/latchkey/server/store"
)

// badRefreshToken is the description of every invalid_grant of the refresh_token grant, so
// that the answer tells nothing about why (unknown, expired, revoked, reused, another client's).
const badRefreshToken = "The refresh token is invalid, expired or revoked."

// refreshTokenGrant is RFC 6749 6 with rotation on every use (OAuth 2.0 Security BCP 4.14):
// the presented token is replaced by a new one atomically in the store. Presenting a rotated
// token again within the grace window (a concurrent retry) is invalid_grant and changes
// nothing; later it is reuse, and the store revokes the whole family (every refresh token and,
// through sid, every access token issued from the grant).
type refreshTokenGrant struct {
	tokens *tokenService
}

var _ Grant = refreshTokenGrant{}

func (refreshTokenGrant) Type() string           { return grantRefreshToken }
func (refreshTokenGrant) ConfidentialOnly() bool { return false }

func (g refreshTokenGrant) Exchange(ctx context.Context, req *GrantRequest) (*TokenResponse, error) {
	if req.RefreshToken == "" {
		return nil, invalidRequest("The refresh_token parameter is missing.")
	}
	if !wellFormedRefreshToken(req.RefreshToken) {
		return nil, ErrInvalidGrant.WithDescription(badRefreshToken)
	}
	st := g.tokens.store
	old := store.HashOf(req.RefreshToken)
	rec, err := st.GetRefresh(ctx, old)
	switch {
	case errors.Is(err, store.ErrReused):
		// Rotated before. Unless the record shows it is another client's token, RotateRefresh
		// applies the reuse rules: within the grace window nothing happens, after it the
		// family is revoked. The new record is never stored, since old is not active.
		if rec.ClientID != "" && rec.ClientID != req.Client.ID {
			return nil, ErrInvalidGrant.WithDescription(badRefreshToken)
		}
		_, err = st.RotateRefresh(ctx, old, store.HashOf("reused\x00"+req.RefreshToken), rec, g.tokens.reuseGrace)
		if err == nil { // cannot happen with a conforming store
			err = store.ErrReused
		}
		if errors.Is(err, store.ErrReused) {
			audit(ctx, AuditEvent{
				Event: AuditRefreshReuseDetected, ClientID: req.Client.ID, Subject: rec.Subject,
				GrantType: grantRefreshToken, TokenRef: TokenRef(req.RefreshToken),
				Outcome: "failure", Reason: "family revoked",
			})
			if g.tokens.reuse != nil {
				g.tokens.reuse.RefreshReuseDetected(req.Client.ID)
			}
		}
		return nil, storeError(err)
	case err != nil:
		return nil, storeError(err)
	}
	if rec.ClientID != req.Client.ID {
		// RFC 6749 10.4: bound to the client it was issued to. Nothing is rotated or revoked,
		// so a client cannot burn another client's grant.
		return nil, ErrInvalidGrant.WithDescription(badRefreshToken)
	}
	scopes, err := narrowScopes(req, rec.Scopes)
	if err != nil {
		return nil, err
	}
	user, ok := req.Snapshot.UserBySubject(rec.Subject)
	if !ok || user.Disabled {
		return nil, ErrInvalidGrant.WithDescription(badRefreshToken)
	}
	// The new refresh token keeps the family's scopes (RFC 6749 6: identical to the presented
	// one); only the access and ID tokens get the narrowed set.
	return g.tokens.issue(ctx, userGrant{
		Client: req.Client, User: user, Scopes: scopes, AuthTime: rec.AuthTime, FamilyID: rec.FamilyID,
	}, &rotation{old: old, familyScopes: rec.Scopes})
}

// narrowScopes returns the scopes of the refreshed tokens: the family's when the request names
// none, else the requested ones, each of which must be among the family's (invalid_scope
// otherwise). Either way every scope must still pass the client's scope policy.
func narrowScopes(req *GrantRequest, family []string) ([]string, error) {
	if strings.Trim(req.Scope, " ") == "" {
		for _, name := range family {
			if err := checkScope(req.Snapshot, req.Client, name); err != nil {
				return nil, err
			}
		}
		return family, nil
	}
	// The dispatcher has applied the client's scope policy to the requested scopes.
	for _, name := range req.Scopes {
		if !slices.Contains(family, name) {
			return nil, ErrInvalidScope.WithDescription(fmt.Sprintf("Scope %.64q was not granted to the refresh token.", name))
		}
	}
	return req.Scopes, nil
}

// wellFormedRefreshToken reports whether s has the shape of a token newRefreshToken makes:
// a 22-character family ID, a dot and 43 characters of base64url. Anything else is refused
// before the store is asked.
func wellFormedRefreshToken(s string) bool {
	const familyLen, secretLen = 22, 43
	if len(s) != familyLen+1+secretLen || s[familyLen] != '.' {
		return false
	}
	for i := range len(s) {
		if i != familyLen && !isBase64URL(s[i]) {
			return false
		}
	}
	return true
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// refreshFamily returns the family ID prefix of a well-formed refresh token.
func refreshFamily(s string) string { return s[:22] }
