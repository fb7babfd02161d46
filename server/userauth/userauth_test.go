package userauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

func newAuthenticator(t *testing.T, cfg Config) (*Authenticator, *registry.Snapshot) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	require.NoError(t, err)
	reg := registry.New()
	reg.PutUser(registry.User{Source: "alice", Subject: "sub-alice", Username: "alice", PasswordHash: hash})
	reg.PutUser(registry.User{Source: "mallory", Subject: "sub-mallory", Username: "mallory", PasswordHash: hash, Disabled: true})
	reg.PutUser(registry.User{Source: "carol", Subject: "sub-carol", Username: "carol"})
	reg.PutUser(registry.User{Source: "ghost", Username: "ghost", PasswordHash: hash})
	reg.PutUser(registry.User{Source: "broken", Subject: "sub-broken", Username: "broken", PasswordHash: []byte("$2a$99$broken")})
	if cfg.FailureDelay == 0 {
		cfg.FailureDelay = -1
	}
	a, err := New(cfg, memory.New())
	require.NoError(t, err)
	return a, reg.Snapshot()
}

func TestAuthenticate(t *testing.T) {
	a, snap := newAuthenticator(t, Config{})
	tests := []struct {
		name, user, password string
		want                 error
	}{
		{"the right password signs the user in", "alice", "right", nil},
		{"a wrong password is ErrBadCredentials", "alice", "wrong", ErrBadCredentials},
		{"an unknown user is ErrBadCredentials", "nobody", "right", ErrBadCredentials},
		{"a disabled user with the right password is ErrBadCredentials", "mallory", "right", ErrBadCredentials},
		{"a user without a hash is ErrBadCredentials", "carol", "right", ErrBadCredentials},
		{"a user without a subject is ErrBadCredentials", "ghost", "right", ErrBadCredentials},
		{"a user with an unusable hash is ErrBadCredentials", "broken", "right", ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := a.Authenticate(t.Context(), snap, Attempt{Username: tt.user, Password: tt.password, Address: "192.0.2.1"})
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
				assert.Nil(t, u)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "sub-alice", u.Subject)
		})
	}
}

func TestLockout(t *testing.T) {
	try := func(t *testing.T, a *Authenticator, snap *registry.Snapshot, user, pw, addr string) error {
		t.Helper()
		_, err := a.Authenticate(t.Context(), snap, Attempt{Username: user, Password: pw, Address: addr})
		return err
	}
	t.Run("a username locks at one address after MaxFailuresPerUser failures, and a success resets the count", func(t *testing.T) {
		a, snap := newAuthenticator(t, Config{MaxFailuresPerUser: 2})
		require.ErrorIs(t, try(t, a, snap, "alice", "wrong", "192.0.2.1"), ErrBadCredentials)
		require.NoError(t, try(t, a, snap, "alice", "right", "192.0.2.1"), "a success resets the count")
		require.ErrorIs(t, try(t, a, snap, "alice", "wrong", "192.0.2.1"), ErrBadCredentials)
		require.ErrorIs(t, try(t, a, snap, "alice", "wrong", "192.0.2.1"), ErrBadCredentials)
		err := try(t, a, snap, "alice", "right", "192.0.2.1")
		require.ErrorIs(t, err, ErrLocked, "locked at that address, even with the right password")
		var locked *LockedError
		require.ErrorAs(t, err, &locked)
		assert.Positive(t, locked.RetryAfter)
		assert.LessOrEqual(t, locked.RetryAfter, DefaultLockBackoff)
		assert.NoError(t, try(t, a, snap, "alice", "right", "192.0.2.2"), "an attacker's failures elsewhere lock nothing here")
	})
	t.Run("an address locks after MaxFailuresPerAddress failures across usernames", func(t *testing.T) {
		a, snap := newAuthenticator(t, Config{MaxFailuresPerAddress: 2})
		for _, user := range []string{"bob", "carol"} {
			require.ErrorIs(t, try(t, a, snap, user, "x", "192.0.2.9"), ErrBadCredentials)
		}
		assert.ErrorIs(t, try(t, a, snap, "alice", "right", "192.0.2.9"), ErrLocked)
		assert.NoError(t, try(t, a, snap, "alice", "right", "192.0.2.10"), "another address is not locked")
	})
	t.Run("an IPv6 address locks by its /64", func(t *testing.T) {
		a, snap := newAuthenticator(t, Config{MaxFailuresPerAddress: 2})
		require.ErrorIs(t, try(t, a, snap, "bob", "x", "2001:db8::1"), ErrBadCredentials)
		require.ErrorIs(t, try(t, a, snap, "carol", "x", "2001:db8::2"), ErrBadCredentials)
		assert.ErrorIs(t, try(t, a, snap, "alice", "right", "2001:db8::ffff"), ErrLocked)
		assert.NoError(t, try(t, a, snap, "alice", "right", "2001:db8:0:1::1"), "another /64")
	})
}

func TestAtMostConcurrencyHashChecksRunAtOnce(t *testing.T) {
	a, snap := newAuthenticator(t, Config{Concurrency: 1})
	a.hashing <- struct{}{} // another attempt holds the one slot
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := a.Authenticate(ctx, snap, Attempt{Username: "alice", Password: "right", Address: "192.0.2.1"})
	require.ErrorIs(t, err, context.DeadlineExceeded, "the attempt waits for the slot until its request ends")
	<-a.hashing
	_, err = a.Authenticate(t.Context(), snap, Attempt{Username: "alice", Password: "right", Address: "192.0.2.1"})
	assert.NoError(t, err, "with the slot free it proceeds")
}

// failingStore fails every call, as a store that cannot be reached does.
type failingStore struct{}

func (failingStore) Throttle(context.Context, []store.ThrottleKey, store.Outcome) (store.ThrottleResult, error) {
	return store.ThrottleResult{}, store.ErrUnavailable
}

func TestAStoreFailureIsNeitherASuccessNorBadCredentials(t *testing.T) {
	_, snap := newAuthenticator(t, Config{})
	a, err := New(Config{}, failingStore{})
	require.NoError(t, err)
	u, err := a.Authenticate(t.Context(), snap, Attempt{Username: "alice", Password: "right"})
	require.ErrorIs(t, err, store.ErrUnavailable)
	assert.False(t, errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrLocked))
	assert.Nil(t, u)
}

func TestConfigIsChecked(t *testing.T) {
	_, err := New(Config{MaxFailuresPerUser: -1}, memory.New())
	assert.Error(t, err, "a negative limit")
	_, err = New(Config{}, nil)
	assert.Error(t, err, "no store")
}
