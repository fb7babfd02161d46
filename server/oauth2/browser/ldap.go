package browser

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/upstream"
	"github.com/latchkey-dev/latchkey/server/userauth"
)

// PasswordProviders are the identity providers that check a username and password the login
// form sends (LDAPIdentityProvider); server/upstream.LDAPProviders implements it.
type PasswordProviders interface {
	// SignIn checks the password at the provider and returns the user, remembered for the
	// token endpoints; upstream.ErrBadCredentials for a wrong password or an unknown user.
	SignIn(ctx context.Context, p *registry.UpstreamLDAP, username, password string) (*registry.User, error)
}

// ldapChoices are the LDAP providers the client allows (nil: any), in display order.
func ldapChoices(snap *registry.Snapshot, client *registry.Client) []*registry.UpstreamLDAP {
	all := snap.UpstreamLDAPs()
	out := all[:0:0]
	for _, u := range all {
		if client == nil || client.AllowsIdentityProvider(u.Name) {
			out = append(out, u)
		}
	}
	return out
}

// ldapRealm is what an LDAP provider's failed logins count under (apart from the User
// resources' and from other providers').
func ldapRealm(name string) string { return registry.KindLDAP + "/" + name }

// authenticateLDAP checks the form's username and password at the LDAP provider of the name,
// under the failed-login limits; a provider the client does not allow (or that does not exist)
// is the same wrong-credentials answer as a wrong password.
func (a *Flow) authenticateLDAP(ctx context.Context, p *pendingRequest, client *registry.Client, provider string, at userauth.Attempt) (*registry.User, error) {
	u, ok := a.registry.Snapshot().UpstreamLDAP(provider)
	if a.ldap == nil || !ok || (!p.Account && !client.AllowsIdentityProvider(provider)) {
		return nil, userauth.ErrBadCredentials
	}
	return a.auth.AuthenticateWith(ctx, ldapRealm(provider), at, func(ctx context.Context) (*registry.User, error) {
		user, err := a.ldap.SignIn(ctx, u, at.Username, at.Password)
		if errors.Is(err, upstream.ErrBadCredentials) {
			return nil, nil
		}
		return user, err
	})
}

// directoryError reports whether err is an LDAP provider's failure (not the store's).
func directoryError(err error) bool {
	return errors.Is(err, upstream.ErrUnavailable) || errors.Is(err, upstream.ErrServiceBind) ||
		errors.Is(err, upstream.ErrClaims) || errors.Is(err, upstream.ErrInvalidMapping)
}

// pageLDAPError shows why an LDAP sign-in failed for another reason than its credentials (the
// directory unreachable, the service bind refused, an entry without its UID), never the
// directory's answer.
func (a *Flow) pageLDAPError(w http.ResponseWriter, r *http.Request, client *registry.Client, provider string, err error) {
	ctx := r.Context()
	reason, status, msg := upstreamFailure(err)
	logr.FromContextOrDiscard(ctx).Info("LDAP sign-in failed", "identityProvider", provider, "reason", reason, "error", err.Error())
	a.auditUpstreamFailure(ctx, client, provider, reason)
	a.pages.renderError(w, r, status, errorPage{Title: titleUpstreamFailed, Message: msg})
}
