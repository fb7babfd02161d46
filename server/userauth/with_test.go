package userauth

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestAuthenticateWith(t *testing.T) {
	user := &registry.User{Subject: "sub-dir-alice", Username: "alice"}
	right := func(context.Context) (*registry.User, error) { return user, nil }
	wrong := func(context.Context) (*registry.User, error) { return nil, nil }
	down := errors.New("directory unreachable")
	unreachable := func(context.Context) (*registry.User, error) { return nil, down }
	at := Attempt{Username: "alice", Address: "192.0.2.1"}

	t.Run("the checker's user signs in and a nil user is ErrBadCredentials", func(t *testing.T) {
		a, _ := newAuthenticator(t, Config{})
		u, err := a.AuthenticateWith(t.Context(), "ldap/corp", at, right)
		require.NoError(t, err)
		assert.Same(t, user, u)
		_, err = a.AuthenticateWith(t.Context(), "ldap/corp", at, wrong)
		assert.ErrorIs(t, err, ErrBadCredentials)
	})

	t.Run("failures lock the account of the realm only, even for the right password", func(t *testing.T) {
		a, snap := newAuthenticator(t, Config{MaxFailuresPerUser: 2})
		for range 2 {
			_, err := a.AuthenticateWith(t.Context(), "ldap/corp", at, wrong)
			require.ErrorIs(t, err, ErrBadCredentials)
		}
		_, err := a.AuthenticateWith(t.Context(), "ldap/corp", at, right)
		assert.ErrorIs(t, err, ErrLocked)
		_, err = a.AuthenticateWith(t.Context(), "ldap/other", at, right)
		assert.NoError(t, err, "another provider's alice is not locked")
		_, err = a.Authenticate(t.Context(), snap, Attempt{Username: "alice", Password: "right", Address: "192.0.2.1"})
		assert.NoError(t, err, "the local alice is not locked")
	})

	t.Run("a checker that could not ask is its error, not a failed attempt", func(t *testing.T) {
		a, _ := newAuthenticator(t, Config{MaxFailuresPerUser: 1})
		for range 3 {
			_, err := a.AuthenticateWith(t.Context(), "ldap/corp", at, unreachable)
			require.ErrorIs(t, err, down)
		}
		_, err := a.AuthenticateWith(t.Context(), "ldap/corp", at, right)
		assert.NoError(t, err)
	})

	t.Run("a directory that hangs does not hold up the local users' logins", func(t *testing.T) {
		a, snap := newAuthenticator(t, Config{Concurrency: 1})
		release := make(chan struct{})
		started := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = a.AuthenticateWith(context.Background(), "ldap/corp", at, func(context.Context) (*registry.User, error) {
				close(started)
				<-release
				return nil, nil
			})
		}()
		<-started
		_, err := a.Authenticate(t.Context(), snap, Attempt{Username: "alice", Password: "right", Address: "192.0.2.9"})
		assert.NoError(t, err)
		close(release)
		<-done
	})
}
