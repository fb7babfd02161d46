package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
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

// recordRecheck is the store record of a user's last re-check (or login), keyed by the hash
// of its subject and leased for the re-check interval: every replica sees it. Its value is
// recheckAccepted or recheckRefused.
const recordRecheck = "upstream-recheck"

// The values of a recordRecheck: the upstream accepted the user (or they signed in), or it
// refused them. A refusal is remembered for the interval too, so that a refresh token of a
// refused family presented again (revoked, or of another family of the user) does not make
// the upstream be asked at every presentation; a new login replaces it.
var (
	recheckAccepted = []byte{1}
	recheckRefused  = []byte{0}
)

// DefaultRecheckInterval is how often a refresh of an upstream user asks the upstream
// (--upstream-recheck-interval).
const DefaultRecheckInterval = 5 * time.Minute

// Dispatcher re-checks upstream users at refresh, with the Rechecker of their provider's kind,
// at most once per interval per user (the last check's answer is a record in the leased
// store, so replicas share it; two replicas refreshing the same user at the same moment may
// both ask; a login counts as a check; a refusal is remembered for the interval too, an
// upstream that could not be asked is not). Users of User resources are never re-checked.
// It is safe for concurrent use.
type Dispatcher struct {
	ids      *Identities
	interval time.Duration

	mu    sync.RWMutex
	kinds map[string]Rechecker
	// flight makes concurrent re-checks of one user on this replica one: an upstream that
	// rotates refresh tokens sees its refresh token once.
	flight singleflight.Group
}

// NewDispatcher re-checks the users of ids every interval (zero: DefaultRecheckInterval) with
// kinds' Recheckers, by registry.Kind* constant.
func NewDispatcher(ids *Identities, interval time.Duration, kinds map[string]Rechecker) *Dispatcher {
	if interval <= 0 {
		interval = DefaultRecheckInterval
	}
	d := &Dispatcher{ids: ids, interval: interval, kinds: map[string]Rechecker{}}
	ids.checked = interval // a login (and a re-check's refreshed tokens) counts as a check
	for k, r := range kinds {
		d.kinds[k] = r
	}
	return d
}

// Add sets the Rechecker of a provider kind (registry.KindLDAP, ...).
func (d *Dispatcher) Add(kind string, r Rechecker) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.kinds[kind] = r
}

// RecheckUser re-checks an upstream user, unless one was re-checked within the interval: nil
// when the upstream still accepts them, ErrUserRefused (wrapped) when it does not, any other
// error when it could not be asked (or the kind has no Rechecker: fail closed).
func (d *Dispatcher) RecheckUser(ctx context.Context, u *registry.User) error {
	if u == nil || !registry.IsExternalSubject(u.Subject) || u.IdentityProvider == "" {
		return nil
	}
	_, err, _ := d.flight.Do(u.Subject, func() (any, error) { return nil, d.recheck(context.WithoutCancel(ctx), u) })
	return err
}

// recheck is RecheckUser for one user at a time (on this replica).
func (d *Dispatcher) recheck(ctx context.Context, u *registry.User) error {
	h := store.HashOf(u.Subject)
	if last, err := d.ids.records.GetRecord(ctx, recordRecheck, h); err == nil {
		if bytes.Equal(last, recheckRefused) {
			return fmt.Errorf("%w: refused at the last re-check", ErrUserRefused)
		}
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	err := d.ask(ctx, u.Subject)
	if errors.Is(err, ErrUserRefused) {
		if perr := d.ids.records.PutRecord(ctx, recordRecheck, h, recheckRefused, d.interval); perr != nil {
			return errors.Join(err, perr)
		}
		return err
	}
	if err != nil {
		return err
	}
	return d.ids.records.PutRecord(ctx, recordRecheck, h, recheckAccepted, d.interval)
}

// ask asks the upstream of the user of subject whether it still accepts them.
func (d *Dispatcher) ask(ctx context.Context, subject string) error {
	id, err := d.ids.Lookup(ctx, subject)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: no identity record", ErrUserRefused)
	} else if err != nil {
		return err
	}
	d.mu.RLock()
	r, ok := d.kinds[id.Kind]
	d.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: no re-check for %s", ErrUnavailable, id.Kind)
	}
	return r.Recheck(ctx, id)
}
