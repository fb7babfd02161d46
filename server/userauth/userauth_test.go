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
	t.Run("the username locks after MaxFailuresPerUser attempts and a success resets the count", func(t *testing.T) {
		a, snap := newAuthenticator(t, Config{MaxFailuresPerUser: 2})
		try := func(pw, addr string) error {
			_, err := a.Authenticate(t.Context(), snap, Attempt{Username: "alice", Password: pw, Address: addr})
			return err
		}
		require.ErrorIs(t, try("wrong", "192.0.2.1"), ErrBadCredentials)
		require.NoError(t, try("right", "192.0.2.2"), "a success resets the count")
		require.ErrorIs(t, try("wrong", "192.0.2.3"), ErrBadCredentials)
		require.ErrorIs(t, try("wrong", "192.0.2.4"), ErrBadCredentials)
		assert.ErrorIs(t, try("right", "192.0.2.5"), ErrLocked, "locked from any address, even with the right password")
	})
	t.Run("an address locks after MaxFailuresPerAddress failures across usernames", func(t *testing.T) {
		a, snap := newAuthenticator(t, Config{MaxFailuresPerAddress: 2})
		for _, user := range []string{"bob", "carol"} {
			_, err := a.Authenticate(t.Context(), snap, Attempt{Username: user, Password: "x", Address: "192.0.2.9"})
			require.ErrorIs(t, err, ErrBadCredentials)
		}
		_, err := a.Authenticate(t.Context(), snap, Attempt{Username: "alice", Password: "right", Address: "192.0.2.9"})
		assert.ErrorIs(t, err, ErrLocked)
		_, err = a.Authenticate(t.Context(), snap, Attempt{Username: "alice", Password: "right", Address: "192.0.2.10"})
		assert.NoError(t, err, "another address is not locked")
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

func (failingStore) Incr(context.Context, store.Hash, time.Duration) (int64, error) {
	return 0, store.ErrUnavailable
}
func (failingStore) Reset(context.Context, store.Hash) error { return store.ErrUnavailable }
func (failingStore) PutRecord(context.Context, string, store.Hash, []byte, time.Duration) error {
	return store.ErrUnavailable
}
func (failingStore) GetRecord(context.Context, string, store.Hash) ([]byte, error) {
	return nil, store.ErrUnavailable
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
