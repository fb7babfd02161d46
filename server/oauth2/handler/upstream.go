package handler

import (
	"time"

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

// UpstreamConfig configures the sign-in through upstream identity providers.
type UpstreamConfig struct {
	// RecheckInterval is how often, at most, a refresh of an upstream provider's user asks the
	// upstream whether it still accepts them (upstream.DefaultRecheckInterval when zero).
	RecheckInterval time.Duration
	// TokenSealer encrypts the upstream tokens kept for the re-checks (a key every replica
	// shares); nil: a random key of this process (another replica, or this one restarted,
	// cannot open the tokens: those users must sign in again at their next re-check).
	TokenSealer *upstream.Sealer
}

// upstreamLogin is the sign-in through upstream identity providers (server/upstream): their
// users' identities live in the store for the longest refresh token lifetime after each login,
// and the registry finds them by subject (Snapshot.UserBySubject) for the token, userinfo and
// introspection endpoints; the refresh grant re-checks them with the returned dispatcher. A
// registry that cannot (not a *registry.Registry) gets no upstream sign-in: its users could
// never redeem a code. The LDAP providers (the login form's password providers) remember their
// users in the same identities.
func upstreamLogin(cfg Config, st store.Store, lifetimes oauth2.Lifetimes) (*upstream.Providers, browser.PasswordProviders, *upstream.Dispatcher) {
	reg, ok := cfg.Registry.(externalUsersSetter)
	if !ok {
		return nil, nil, nil
	}
	now := cfg.Now()
	sealer := cfg.Upstream.TokenSealer
	if sealer == nil {
		sealer = upstream.RandomSealer()
	}
	ids := upstream.NewIdentities(st, lifetimes.CutoffEnd(now).Sub(now), logr.Discard(), sealer)
	reg.SetExternalUsers(ids)
	providers := upstream.NewProviders(ids, cfg.Now)
	snap := cfg.Registry.Snapshot
	recheck := upstream.NewDispatcher(ids, cfg.Upstream.RecheckInterval, map[string]upstream.Rechecker{
		registry.KindOIDC:   providers.OIDCRechecker(func(name string) (*registry.UpstreamOIDC, bool) { return snap().UpstreamOIDC(name) }),
		registry.KindGitHub: providers.GitHubRechecker(func(name string) (*registry.UpstreamGitHub, bool) { return snap().UpstreamGitHub(name) }),
		registry.KindLDAP:   upstream.NewLDAPRechecker(cfg.Registry),
	})
	return providers, upstream.NewLDAPProviders(ids), recheck
}

// upstreamsOrNil and githubOrNil are the browser flow's sides of p, nil (no sign-in) when p is.
func upstreamsOrNil(p *upstream.Providers) browser.IdentityProviders {
	if p == nil {
		return nil
	}
	return p
}

func githubOrNil(p *upstream.Providers) browser.GitHubSignIn {
	if p == nil {
		return nil
	}
	return p
}
