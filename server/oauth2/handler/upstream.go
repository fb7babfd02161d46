package handler

import (
	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/browser"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/upstream"
)

// externalUsersSetter is the registry that can find upstream providers' users;
// *registry.Registry implements it.
type externalUsersSetter interface {
	SetExternalUsers(ext registry.ExternalUsers)
}

// upstreamLogin is the sign-in through upstream identity providers (server/upstream): their
// users' identities live in the store for the longest refresh token lifetime after each login,
// and the registry finds them by subject (Snapshot.UserBySubject) for the token, userinfo and
// introspection endpoints. A registry that cannot (not a *registry.Registry) gets no upstream
// sign-in: its users could never redeem a code. The LDAP providers (the login form's password
// providers) remember their users in the same identities.
func upstreamLogin(cfg Config, st store.Store, lifetimes oauth2.Lifetimes) (browser.IdentityProviders, browser.PasswordProviders) {
	reg, ok := cfg.Registry.(externalUsersSetter)
	if !ok {
		return nil, nil
	}
	now := cfg.Now()
	ids := upstream.NewIdentities(st, lifetimes.CutoffEnd(now).Sub(now), logr.Discard())
	reg.SetExternalUsers(ids)
	return upstream.NewProviders(ids, cfg.Now), upstream.NewLDAPProviders(ids)
}
