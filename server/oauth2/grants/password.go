package grants

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/userauth"
)

// badCredentials is the description of the password grant's invalid_grant: unknown user,
// disabled user, user without a password and wrong password share it.
const badCredentials = "The username or password is wrong."

// userAuthenticator checks a password under the failed-login limits; *userauth.Authenticator
// implements it (the login page uses the same one).
type userAuthenticator interface {
	Authenticate(ctx context.Context, snap *registry.Snapshot, at userauth.Attempt) (*registry.User, error)
}

var _ userAuthenticator = (*userauth.Authenticator)(nil)

// Password is RFC 6749 4.3, the resource owner password credentials grant, for clients that
// list "password". Public clients identify themselves by client_id alone (auth method none); a
// request that names no client is invalid_client, like every token request.
type Password struct {
	auth   userAuthenticator
	tokens *TokenSet
	now    func() time.Time
}

var _ Grant = Password{}

// NewPassword returns the grant, checking passwords with auth and issuing with tokens.
func NewPassword(auth userAuthenticator, tokens *TokenSet, now func() time.Time) Password {
	return Password{auth: auth, tokens: tokens, now: now}
}

// Type is password.
func (Password) Type() string { return oauth2.GrantPassword }

// ConfidentialOnly is false: a public client (a first-party app) may use it.
func (Password) ConfidentialOnly() bool { return false }

// IssuedEvent is token_issued.
func (Password) IssuedEvent() string { return oauth2.AuditTokenIssued }

// Exchange checks the username and password and issues the user's tokens.
func (g Password) Exchange(ctx context.Context, req *Request) (*Response, error) {
	if req.Username == "" || req.Password == "" {
		return nil, oauth2.InvalidRequest("The username and password parameters are required.")
	}
	user, err := g.auth.Authenticate(ctx, req.Snapshot, userauth.Attempt{
		Username: req.Username, Password: req.Password, Address: oauth2.ClientAddress(ctx),
		ClientID: req.Client.ID, GrantType: oauth2.GrantPassword,
	})
	var locked *userauth.LockedError
	switch {
	case errors.As(err, &locked):
		return nil, oauth2.ErrTooManyRequests.WithDescription("Too many failed attempts; retry after the Retry-After delay.").
			WithRetryAfter(locked.RetryAfter)
	case errors.Is(err, userauth.ErrBadCredentials):
		return nil, oauth2.ErrInvalidGrant.WithDescription(badCredentials)
	case err != nil:
		return nil, err
	}
	return g.tokens.Issue(ctx, UserGrant{
		AccessNotAfter: req.AccessNotAfter(),
		Client:         req.Client, User: user, Snapshot: req.Snapshot, Scopes: req.Scopes, Resources: req.Resources, AuthTime: g.now(),
		DPoPThumbprint: req.DPoPThumbprint,
	})
}
