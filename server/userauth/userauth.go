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
	// DefaultLockBackoff is the first block of a username at an address (or of an address);
	// each further failure doubles it, up to the failure window.
	DefaultLockBackoff = time.Minute
	// DefaultSlowAfter failures of a username from all addresses slow its further failures
	// down (never a refusal: see oauth2.BruteForcePolicy).
	DefaultSlowAfter = 20
)

// Errors of Authenticate besides the store's and the context's.
var (
	// ErrBadCredentials: unknown user, wrong password, no usable hash or a disabled user.
	ErrBadCredentials = errors.New("userauth: wrong username or password")
	// ErrLocked: the username at this address, or the address, is locked after failed
	// attempts. The error is a *LockedError, which says for how long.
	ErrLocked = errors.New("userauth: login locked after failed attempts")
)

// LockedError is ErrLocked with how long the lock lasts.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string { return ErrLocked.Error() }

// Is matches ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Config is the lockout policy. Zero fields take the defaults above.
type Config struct {
	// MaxFailuresPerUser failed attempts for one username from one client address lock that
	// username at that address (every attempt is refused, the right password too), for a
	// minute, doubled for every further failure, at most FailureWindow; a success resets the
	// count. From other addresses the username is only slowed down, never locked: an attacker
	// cannot lock a user out.
	MaxFailuresPerUser int
	// MaxFailuresPerAddress failed logins from one client address, any username, lock the
	// address likewise.
	MaxFailuresPerAddress int
	// FailureWindow is how long failures are remembered after the last one and its lock, and
	// the longest lock.
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

// BruteForcePolicy is the brute-force policy of the config, its defaults applied.
func (c Config) BruteForcePolicy() (oauth2.BruteForcePolicy, error) {
	c, err := c.withDefaults()
	if err != nil {
		return oauth2.BruteForcePolicy{}, err
	}
	return c.policy(), nil
}

// policy is the brute-force policy of a config whose defaults are applied.
func (c Config) policy() oauth2.BruteForcePolicy {
	return oauth2.BruteForcePolicy{
		PerIdentityAddress: c.MaxFailuresPerUser, PerAddress: c.MaxFailuresPerAddress, SlowAfter: DefaultSlowAfter,
		Window: c.FailureWindow, Backoff: min(DefaultLockBackoff, c.FailureWindow), MaxBackoff: c.FailureWindow,
		SlowDelay: 250 * time.Millisecond, MaxSlowDelay: 4 * time.Second,
	}
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Authenticator checks passwords; see the package documentation. It is safe for concurrent
// use; make one per server (the concurrency bound is its own).
type Authenticator struct {
	cfg     Config
	guard   *oauth2.Guard
	hashing chan struct{}
	// checking bounds the concurrent checks of AuthenticateWith apart from hashing: a slow
	// directory never holds up the User resources' logins.
	checking chan struct{}
}

// maxConcurrentChecks bounds the password checks identity providers run at once (network
// round trips, not CPU: more than hashes).
const maxConcurrentChecks = 32

// New returns an Authenticator with the policy of cfg over the store's throttles.
func New(cfg Config, st store.Throttles) (*Authenticator, error) {
	if st == nil {
		return nil, errors.New("userauth: a Store is required")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Authenticator{cfg: cfg, guard: oauth2.NewGuard(st, "user", cfg.policy()), hashing: make(chan struct{}, cfg.Concurrency),
		checking: make(chan struct{}, maxConcurrentChecks),
	}, nil
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

// Authenticate returns the user the attempt signs in. Its errors are a *LockedError
// (ErrLocked), ErrBadCredentials, a store error, or the context's error while it waited for a
// hash check.
func (a *Authenticator) Authenticate(ctx context.Context, snap *registry.Snapshot, at Attempt) (*registry.User, error) {
	log := logr.FromContextOrDiscard(ctx)
	// Checked before the hash: a locked attempt costs no hash check.
	v, err := a.guard.Check(ctx, at.Username, at.Address)
	if err != nil {
		return nil, err
	}
	if v.RetryAfter > 0 {
		return nil, a.locked(ctx, snap, at, v.RetryAfter)
	}
	user, exists := snap.User(at.Username)
	valid, err := a.verify(ctx, user, exists, at.Password)
	if err != nil {
		return nil, err
	}
	ok := valid && !user.Disabled && user.Subject != ""
	// Recorded after it; a lock that concurrent failures set meanwhile refuses even a right
	// password, so a guess made during a lock teaches nothing.
	v, err = a.guard.Record(ctx, at.Username, at.Address, !ok)
	if err != nil {
		return nil, err
	}
	if v.RetryAfter > 0 {
		return nil, a.locked(ctx, snap, at, v.RetryAfter)
	}
	if ok {
		return user, nil
	}
	if exists {
		log.Info("login failed", "user", at.Username, "disabled", user.Disabled, "client_id", at.ClientID)
	} else {
		log.Info("login failed for an unknown user", "client_id", at.ClientID)
	}
	a.fail(ctx, oauth2.AuditEvent{Event: oauth2.AuditLoginFailed, ClientID: at.ClientID, GrantType: at.GrantType,
		Username: auditedUsername(snap, at.Username), Outcome: "failure", Reason: "bad credentials"})
	return nil, ErrBadCredentials
}

// locked records a refused attempt and returns its error.
func (a *Authenticator) locked(ctx context.Context, snap *registry.Snapshot, at Attempt, retryAfter time.Duration) error {
	logr.FromContextOrDiscard(ctx).Info("login refused: locked after failed attempts", "client_id", at.ClientID)
	oauth2.RecordRateLimited(ctx, oauth2.RateLimitUserLogin)
	a.fail(ctx, oauth2.AuditEvent{Event: oauth2.AuditRateLimited, ClientID: at.ClientID, GrantType: at.GrantType,
		Username: auditedUsername(snap, at.Username), Outcome: "failure", Reason: "login locked after failed attempts"})
	return &LockedError{RetryAfter: retryAfter}
}

// auditedUsername is the username an audit record may hold: a user's, never what was typed
// for an unknown one (it may be a password typed into the wrong field).
func auditedUsername(snap *registry.Snapshot, username string) string {
	if snap == nil {
		return "" // an identity provider's user: whether it exists is not known
	}
	if _, ok := snap.User(username); ok {
		return username
	}
	return ""
}

// fail audits a failed attempt and waits the failure delay.
func (a *Authenticator) fail(ctx context.Context, e oauth2.AuditEvent) {
	oauth2.Audit(ctx, e)
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

// Checker checks a password that another party holds (an LDAP directory): it returns the user,
// nil for wrong credentials (an unknown user included), or an error when the party could not be
// asked.
type Checker func(ctx context.Context) (*registry.User, error)

// AuthenticateWith is Authenticate for a password check runs: the same failed-login limits
// (per username and address, per address, and the slow-down per username), counted apart from
// the User resources' under realm (an identity provider's kind and name), the same failure
// delay, logs and audit records, and a concurrency bound of its own (maxConcurrentChecks: a
// slow directory never holds up the User resources' logins). A check that could not ask (an error) is no
// failed attempt: its error is returned as is.
func (a *Authenticator) AuthenticateWith(ctx context.Context, realm string, at Attempt, check Checker) (*registry.User, error) {
	identity := realm + "\x00" + at.Username
	v, err := a.guard.Check(ctx, identity, at.Address)
	if err != nil {
		return nil, err
	}
	if v.RetryAfter > 0 {
		return nil, a.locked(ctx, nil, at, v.RetryAfter)
	}
	select {
	case a.checking <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	user, err := check(ctx)
	<-a.checking
	if err != nil {
		return nil, err
	}
	v, err = a.guard.Record(ctx, identity, at.Address, user == nil)
	if err != nil {
		return nil, err
	}
	if v.RetryAfter > 0 {
		return nil, a.locked(ctx, nil, at, v.RetryAfter)
	}
	if user != nil {
		return user, nil
	}
	logr.FromContextOrDiscard(ctx).Info("login failed", "identityProvider", realm, "client_id", at.ClientID)
	a.fail(ctx, oauth2.AuditEvent{Event: oauth2.AuditLoginFailed, ClientID: at.ClientID, GrantType: at.GrantType,
		Outcome: "failure", Reason: "bad credentials"})
	return nil, ErrBadCredentials
}
