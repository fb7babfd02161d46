package oauth2

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/password"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Password grant limits.
const (
	// maxLoginFailures failed password attempts for one username within loginFailureWindow
	// lock the username until the window (which starts at the first failure) ends.
	maxLoginFailures   = 10
	loginFailureWindow = 15 * time.Minute
)

// Descriptions of the password grant's invalid_grant answers. Unknown user, disabled user,
// user without a password and wrong password share one description.
const (
	badCredentials  = "The username or password is wrong."
	tooManyFailures = "Too many failed attempts; try again later."
)

// passwordGrant is RFC 6749 4.3, the resource owner password credentials grant, for clients
// that list "password". Public clients identify themselves by client_id alone (auth method
// none); a request that names no client is invalid_client, like every token request.
type passwordGrant struct {
	tokens *tokenService
	// hashing bounds the password checks running at once: each argon2id check allocates its
	// memory parameter (19 MiB and more), each bcrypt check takes tens of milliseconds.
	hashing chan struct{}
}

var _ Grant = passwordGrant{}

func newPasswordGrant(tokens *tokenService, concurrency int) passwordGrant {
	return passwordGrant{tokens: tokens, hashing: make(chan struct{}, max(concurrency, 1))}
}

func (passwordGrant) Type() string           { return "password" }
func (passwordGrant) ConfidentialOnly() bool { return false }

func (g passwordGrant) Exchange(ctx context.Context, req *GrantRequest) (*TokenResponse, error) {
	if req.Username == "" || req.Password == "" {
		return nil, invalidRequest("The username and password parameters are required.")
	}
	st := g.tokens.store
	counter := loginFailureKey(req.Username)
	// The counter counts attempts since the last success: it is incremented before the check
	// and reset after a success, so concurrent guesses cannot slip past the limit.
	n, err := st.Incr(ctx, counter, loginFailureWindow)
	if err != nil {
		return nil, storeUnavailable(err)
	}
	if n > maxLoginFailures {
		return nil, ErrInvalidGrant.WithDescription(tooManyFailures)
	}

	user, ok := req.Snapshot.User(req.Username)
	if err := g.acquire(ctx); err != nil {
		return nil, err
	}
	var match bool
	var verifyErr error
	if ok {
		match, verifyErr = password.Verify(user.PasswordHash, req.Password)
		if errors.Is(verifyErr, password.ErrNoHash) {
			password.VerifyDummy(req.Password)
		}
	} else {
		password.VerifyDummy(req.Password)
	}
	<-g.hashing
	if verifyErr != nil && !errors.Is(verifyErr, password.ErrNoHash) {
		// The hash in the user's Secret is unusable: the operator must fix it.
		logr.FromContextOrDiscard(ctx).Error(verifyErr, "unusable password hash", "user", user.Source)
	}
	if !ok || !match || user.Disabled {
		return nil, ErrInvalidGrant.WithDescription(badCredentials)
	}
	if err := st.Reset(ctx, counter); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "could not reset the failed-login counter")
	}
	return g.tokens.issueForUser(ctx, userGrant{
		Client: req.Client, User: user, Scopes: req.Scopes, AuthTime: g.tokens.now(),
	})
}

// acquire waits for a hashing slot, or for the request to end.
func (g passwordGrant) acquire(ctx context.Context) error {
	select {
	case g.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ErrTemporarilyUnavailable.WithCause(ctx.Err())
	}
}

// loginFailureKey is the counter of failed logins of a username.
func loginFailureKey(username string) store.Hash {
	return store.HashOf("login-failures\x00" + username)
}

// storeUnavailable maps a store error outside the refresh token paths.
func storeUnavailable(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return ErrTemporarilyUnavailable.WithCause(err)
	}
	return ErrServerError.WithCause(err)
}
