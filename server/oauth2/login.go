package oauth2

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/password"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Defaults of LoginConfig.
const (
	DefaultMaxFailuresPerUser    = maxLoginFailures
	DefaultMaxFailuresPerAddress = 50
	DefaultFailureWindow         = 15 * time.Minute
	DefaultFailureDelay          = 250 * time.Millisecond
	DefaultSessionLifetime       = 8 * time.Hour
	DefaultConsentLifetime       = 90 * 24 * time.Hour
	DefaultRequestLifetime       = 10 * time.Minute
)

// LoginConfig configures the login and consent pages. Zero fields take the defaults above.
type LoginConfig struct {
	// MaxFailuresPerUser attempts for one username without a success lock the username until
	// the window that started with the first of them ends, whether or not the user exists. The
	// counter is the password grant's (loginFailureKey): attempts there count here too.
	MaxFailuresPerUser int
	// MaxFailuresPerAddress failed logins from one client address within FailureWindow lock the
	// address for FailureWindow.
	MaxFailuresPerAddress int
	// FailureWindow is the window of the address counter and lock.
	FailureWindow time.Duration
	// FailureDelay is added to every failed or locked login attempt; negative means none.
	FailureDelay time.Duration
	// SessionLifetime is how long a login session lasts (not extended by use).
	SessionLifetime time.Duration
	// ConsentLifetime is how long a remembered consent lasts.
	ConsentLifetime time.Duration
	// RequestLifetime is how long a pending authorization request waits for the login and
	// consent pages.
	RequestLifetime time.Duration
	// ClientIPHeader names a header that a trusted reverse proxy sets to the client address,
	// e.g. X-Forwarded-For or X-Real-IP; its last value is used. Empty uses the address of the
	// connection. Set it only behind a proxy that overwrites or appends to the header.
	ClientIPHeader string
}

func (c LoginConfig) withDefaults() (LoginConfig, error) {
	if c.MaxFailuresPerUser < 0 || c.MaxFailuresPerAddress < 0 || c.FailureWindow < 0 ||
		c.SessionLifetime < 0 || c.ConsentLifetime < 0 || c.RequestLifetime < 0 {
		return c, errors.New("oauth2: login limits and lifetimes must not be negative")
	}
	setDefault(&c.MaxFailuresPerUser, DefaultMaxFailuresPerUser)
	setDefault(&c.MaxFailuresPerAddress, DefaultMaxFailuresPerAddress)
	setDefault(&c.FailureWindow, DefaultFailureWindow)
	setDefault(&c.FailureDelay, DefaultFailureDelay)
	setDefault(&c.SessionLifetime, DefaultSessionLifetime)
	setDefault(&c.ConsentLifetime, DefaultConsentLifetime)
	setDefault(&c.RequestLifetime, DefaultRequestLifetime)
	return c, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Messages of the login page. They never say whether the username exists.
const (
	msgMissingCredentials = "Enter your username and password."
	msgBadCredentials     = "Incorrect username or password."
	msgLocked             = "Too many failed sign-in attempts. Wait a few minutes, then try again."
)

// Bounds of the login form's fields.
const (
	maxUsernameLength = 256
	maxPasswordLength = 1024
)

var (
	errBadCredentials = errors.New("wrong username or password")
	errLocked         = errors.New("login locked")
)

// serveLoginPage shows the login form of a pending request.
func (a *authorizer) serveLoginPage(w http.ResponseWriter, r *http.Request) {
	id, p, client, ok := a.pendingFromQuery(w, r)
	if !ok {
		return
	}
	a.pages.renderLogin(w, r, http.StatusOK, loginPage{
		Client: clientName(client), RequestID: id, CSRFToken: p.CSRFToken, Username: p.LoginHint,
	}, formActionSource(p.RedirectURI))
}

// handleLogin checks the password, starts a session and continues the pending request: to the
// consent page, or straight back to the client when no consent is needed.
func (a *authorizer) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, id, p, client, ok := a.pendingFromForm(w, r)
	if !ok {
		return
	}
	username, pw := form.Get("username"), form.Get("password")
	page := loginPage{Client: clientName(client), RequestID: id, CSRFToken: p.CSRFToken, Username: username}
	formAction := formActionSource(p.RedirectURI)
	if username == "" || pw == "" || len(username) > maxUsernameLength || len(pw) > maxPasswordLength {
		page.Error = msgMissingCredentials
		if len(username) > maxUsernameLength {
			page.Username = ""
		}
		a.pages.renderLogin(w, r, http.StatusBadRequest, page, formAction)
		return
	}
	user, err := a.authenticate(ctx, r, client, username, pw)
	switch {
	case errors.Is(err, errLocked):
		page.Error = msgLocked
		a.pages.renderLogin(w, r, http.StatusTooManyRequests, page, formAction)
		return
	case errors.Is(err, errBadCredentials):
		page.Error = msgBadCredentials
		a.pages.renderLogin(w, r, http.StatusBadRequest, page, formAction)
		return
	case err != nil:
		a.pageStoreError(w, r, err)
		return
	}

	now := a.now().Unix()
	sessHash, err := a.sessions.start(ctx, w, r, loginSession{Subject: user.Subject, AuthTime: now})
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	p.Subject, p.AuthTime, p.SessionHash = user.Subject, now, sessHash[:]
	need, err := a.consentRequired(ctx, client, p)
	if err != nil {
		a.pageStoreError(w, r, err)
		return
	}
	if need {
		if err := a.savePending(ctx, id, p); err != nil {
			a.pageStoreError(w, r, err)
			return
		}
		redirectToPage(w, ConsentPath, id)
		return
	}
	a.respondWithCode(w, r, client, p, id)
}

// authenticate checks a username and password under the failed-login limits. Unknown users,
// users without a password hash and disabled users fail exactly like a wrong password, after
// the same hashing work. It returns the user signed in; its errors are errLocked,
// errBadCredentials or a store error. The failed-login counter stays keyed by the username
// typed, not the subject: it is about what people type.
func (a *authorizer) authenticate(ctx context.Context, r *http.Request, client *registry.Client, username, pw string) (*registry.User, error) {
	log := logr.FromContextOrDiscard(ctx)
	// The username's counter counts attempts since the last success: it is incremented before
	// the check (so concurrent guesses cannot slip past the limit) and reset after a success.
	// The address's counter counts failures only, so that the successful logins of many users
	// behind one proxy do not lock it; a lock record marks it locked.
	userKey := loginFailureKey(username)
	addrKey := store.HashOf("login-failures-addr\x00" + a.clientAddress(r))
	attempts, err := a.store.Incr(ctx, userKey, loginFailureWindow)
	if err != nil {
		return nil, err
	}
	locked, err := a.locked(ctx, addrKey)
	if err != nil {
		return nil, err
	}
	if locked || attempts > int64(a.login.MaxFailuresPerUser) {
		log.Info("login refused: locked after failed attempts", "client_id", client.ID)
		audit(ctx, AuditEvent{Event: AuditLoginFailed, ClientID: client.ID, Username: username, Outcome: "failure", Reason: "locked"})
		a.failureDelay(ctx)
		return nil, errLocked
	}

	user, exists := a.registry.Snapshot().User(username)
	valid, err := a.verifyPassword(ctx, user, exists, pw)
	if err != nil {
		return nil, err
	}
	if valid && !user.Disabled && user.Subject != "" {
		if err := a.store.Reset(ctx, userKey); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.Error(err, "failed-login counter not reset", "user", username)
		}
		log.Info("login succeeded", "user", username, "client_id", client.ID)
		audit(ctx, AuditEvent{Event: AuditLoginSucceeded, ClientID: client.ID, Username: username, Subject: user.Subject})
		return user, nil
	}

	if exists {
		log.Info("login failed", "user", username, "disabled", user.Disabled, "client_id", client.ID)
	} else {
		log.Info("login failed for an unknown user", "client_id", client.ID)
	}
	audit(ctx, AuditEvent{Event: AuditLoginFailed, ClientID: client.ID, Username: username, Outcome: "failure", Reason: "bad credentials"})
	if err := a.countFailure(ctx, addrKey, a.login.MaxFailuresPerAddress); err != nil {
		return nil, err
	}
	a.failureDelay(ctx)
	return nil, errBadCredentials
}

// verifyPassword checks the password against the user's hash, or against a dummy hash when
// there is no user or no hash, so that the time taken does not tell. At most GOMAXPROCS checks
// run at once: each argon2id check allocates its memory parameter.
func (a *authorizer) verifyPassword(ctx context.Context, user *registry.User, exists bool, pw string) (bool, error) {
	select {
	case a.hashing <- struct{}{}:
	case <-ctx.Done():
		return false, ErrTemporarilyUnavailable.WithCause(ctx.Err())
	}
	defer func() { <-a.hashing }()
	if !exists || len(user.PasswordHash) == 0 {
		password.VerifyDummy(pw)
		return false, nil
	}
	ok, err := password.Verify(user.PasswordHash, pw)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "unusable password hash", "user", user.Source)
		return false, nil
	}
	return ok, nil
}

// locked reports whether any of the keys is locked.
func (a *authorizer) locked(ctx context.Context, keys ...store.Hash) (bool, error) {
	for _, k := range keys {
		_, err := a.store.GetRecord(ctx, recordLoginLock, k)
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, store.ErrNotFound):
			return false, err
		}
	}
	return false, nil
}

// countFailure counts a failed login and locks the key for the window once it reaches max.
func (a *authorizer) countFailure(ctx context.Context, key store.Hash, maxFailures int) error {
	n, err := a.store.Incr(ctx, key, a.login.FailureWindow)
	if err != nil {
		return err
	}
	if n >= int64(maxFailures) {
		return a.store.PutRecord(ctx, recordLoginLock, key, []byte{1}, a.login.FailureWindow)
	}
	return nil
}

// failureDelay waits the fixed delay of a failed attempt.
func (a *authorizer) failureDelay(ctx context.Context) {
	if a.login.FailureDelay <= 0 {
		return
	}
	t := time.NewTimer(a.login.FailureDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// clientAddress is the address failed logins are counted under.
func (a *authorizer) clientAddress(r *http.Request) string {
	if a.login.ClientIPHeader != "" {
		if vals := r.Header.Values(a.login.ClientIPHeader); len(vals) > 0 {
			last := vals[len(vals)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip := strings.TrimSpace(last); ip != "" {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
