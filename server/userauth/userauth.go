package userauth

import (
	"context"
	"errors"
	"runtime"
	"time"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/password"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
)

// Defaults of Config.
const (
	DefaultMaxFailuresPerUser    = 10
	DefaultMaxFailuresPerAddress = 50
	DefaultFailureWindow         = 15 * time.Minute
	DefaultFailureDelay          = 250 * time.Millisecond
)

// Errors of Authenticate besides the store's and the context's.
var (
	// ErrBadCredentials: unknown user, wrong password, no usable hash or a disabled user.
	ErrBadCredentials = errors.New("userauth: wrong username or password")
	// ErrLocked: the username or the client address is locked after failed attempts.
	ErrLocked = errors.New("userauth: login locked after failed attempts")
)

// Config is the lockout policy. Zero fields take the defaults above.
type Config struct {
	// MaxFailuresPerUser attempts for one username without a success lock the username until
	// the window that started with the first of them ends, whether or not the user exists.
	MaxFailuresPerUser int
	// MaxFailuresPerAddress failed logins from one client address within FailureWindow lock the
	// address for FailureWindow.
	MaxFailuresPerAddress int
	// FailureWindow is the window of both counters and of the address lock.
	FailureWindow time.Duration
	// FailureDelay is added to every failed or locked attempt; negative means none.
	FailureDelay time.Duration
	// Concurrency bounds the hash checks running at once; zero means GOMAXPROCS.
	Concurrency int
}

func (c Config) withDefaults() (Config, error) {
	if c.MaxFailuresPerUser < 0 || c.MaxFailuresPerAddress < 0 || c.FailureWindow < 0 || c.Concurrency < 0 {
		return c, errors.New("userauth: login limits must not be negative")
	}
	c.MaxFailuresPerUser = orDefault(c.MaxFailuresPerUser, DefaultMaxFailuresPerUser)
	c.MaxFailuresPerAddress = orDefault(c.MaxFailuresPerAddress, DefaultMaxFailuresPerAddress)
	c.FailureWindow = orDefault(c.FailureWindow, DefaultFailureWindow)
	c.FailureDelay = orDefault(c.FailureDelay, DefaultFailureDelay)
	c.Concurrency = orDefault(c.Concurrency, max(runtime.GOMAXPROCS(0), 1))
	return c, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Store keeps the failure counters and the address locks; store.Store implements it.
type Store interface {
	Incr(ctx context.Context, key store.Hash, window time.Duration) (int64, error)
	Reset(ctx context.Context, key store.Hash) error
	PutRecord(ctx context.Context, kind string, h store.Hash, value []byte, ttl time.Duration) error
	GetRecord(ctx context.Context, kind string, h store.Hash) ([]byte, error)
}

var _ Store = store.Store(nil)

// recordLock is the kind of the records that lock a client address.
const recordLock = "login-lock"

// Authenticator checks passwords; see the package documentation. It is safe for concurrent
// use; make one per server (the concurrency bound is its own).
type Authenticator struct {
	cfg     Config
	store   Store
	hashing chan struct{}
}

// New returns an Authenticator with the policy of cfg over st.
func New(cfg Config, st Store) (*Authenticator, error) {
	if st == nil {
		return nil, errors.New("userauth: a Store is required")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Authenticator{cfg: cfg, store: st, hashing: make(chan struct{}, cfg.Concurrency)}, nil
}

// Attempt is one login attempt.
type Attempt struct {
	Username string
	// Password is never logged or audited.
	Password string
	// Address is the client address failures are counted under (oauth2.ClientAddress).
	Address string
	// ClientID and GrantType say where the attempt came from, for the audit record: the
	// client of the authorization request (GrantType "") or of the password grant.
	ClientID, GrantType string
}

// Authenticate returns the user the attempt signs in. Its errors are ErrLocked,
// ErrBadCredentials, a store error, or the context's error while it waited for a hash check.
func (a *Authenticator) Authenticate(ctx context.Context, snap *registry.Snapshot, at Attempt) (*registry.User, error) {
	log := logr.FromContextOrDiscard(ctx)
	userKey := failureKey(at.Username)
	addrKey := store.HashOf("login-failures-addr\x00" + at.Address)
	attempts, err := a.store.Incr(ctx, userKey, a.cfg.FailureWindow)
	if err != nil {
		return nil, err
	}
	locked, err := a.addressLocked(ctx, addrKey)
	if err != nil {
		return nil, err
	}
	if locked || attempts > int64(a.cfg.MaxFailuresPerUser) {
		log.Info("login refused: locked after failed attempts", "client_id", at.ClientID)
		a.fail(ctx, at, "locked")
		return nil, ErrLocked
	}

	user, exists := snap.User(at.Username)
	valid, err := a.verify(ctx, user, exists, at.Password)
	if err != nil {
		return nil, err
	}
	if valid && !user.Disabled && user.Subject != "" {
		if err := a.store.Reset(ctx, userKey); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.Error(err, "failed-login counter not reset", "user", at.Username)
		}
		return user, nil
	}
	if exists {
		log.Info("login failed", "user", at.Username, "disabled", user.Disabled, "client_id", at.ClientID)
	} else {
		log.Info("login failed for an unknown user", "client_id", at.ClientID)
	}
	if err := a.countAddressFailure(ctx, addrKey); err != nil {
		return nil, err
	}
	a.fail(ctx, at, "bad credentials")
	return nil, ErrBadCredentials
}

// fail audits a failed attempt and waits the failure delay.
func (a *Authenticator) fail(ctx context.Context, at Attempt, reason string) {
	oauth2.Audit(ctx, oauth2.AuditEvent{
		Event: oauth2.AuditLoginFailed, ClientID: at.ClientID, GrantType: at.GrantType, Username: at.Username,
		Outcome: "failure", Reason: reason,
	})
	if a.cfg.FailureDelay <= 0 {
		return
	}
	t := time.NewTimer(a.cfg.FailureDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// verify checks the password against the user's hash, or against a dummy hash when there is
// no user or no hash, so that the time taken does not tell.
func (a *Authenticator) verify(ctx context.Context, user *registry.User, exists bool, pw string) (bool, error) {
	select {
	case a.hashing <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-a.hashing }()
	if !exists || len(user.PasswordHash) == 0 {
		password.VerifyDummy(pw)
		return false, nil
	}
	ok, err := password.Verify(user.PasswordHash, pw)
	if err != nil {
		// The hash in the user's Secret is unusable: the operator must fix it.
		logr.FromContextOrDiscard(ctx).Error(err, "unusable password hash", "user", user.Source)
		return false, nil
	}
	return ok, nil
}

// addressLocked reports whether the address is locked.
func (a *Authenticator) addressLocked(ctx context.Context, key store.Hash) (bool, error) {
	_, err := a.store.GetRecord(ctx, recordLock, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, err
}

// countAddressFailure counts a failure of the address and locks it at the limit.
func (a *Authenticator) countAddressFailure(ctx context.Context, key store.Hash) error {
	n, err := a.store.Incr(ctx, key, a.cfg.FailureWindow)
	if err != nil {
		return err
	}
	if n >= int64(a.cfg.MaxFailuresPerAddress) {
		return a.store.PutRecord(ctx, recordLock, key, []byte{1}, a.cfg.FailureWindow)
	}
	return nil
}

// failureKey is the counter of the attempts of a username.
func failureKey(username string) store.Hash {
	return store.HashOf("login-failures\x00" + username)
}
