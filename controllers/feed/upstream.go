package feed

import (
	"errors"
	"fmt"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// OIDCIdentityProvider decides about the result of convert.OIDCIdentityProvider: served only
// with its client secret or workload identity token file (a provider without credentials could
// never complete a login), never when its spec is invalid.
func OIDCIdentityProvider(u registry.UpstreamOIDC, err error) Decision {
	switch {
	case err == nil:
		return Decision{Serve, v1alpha1.ReasonReady, fmt.Sprintf("identity provider %q (%s) is served", u.Name, u.Issuer)}
	case errors.Is(err, convert.ErrSecretNotFound):
		return Decision{Withdraw, v1alpha1.ReasonSecretNotFound,
			fmt.Sprintf("OIDCIdentityProvider %s is not served: its client secret is missing: %v", u.Name, err)}
	}
	return withdraw(err)
}

// LDAPIdentityProvider decides about the result of convert.LDAPIdentityProvider: served only
// with its bind Secret (a provider without one could never search for a user), never when its
// spec is invalid. Whether the directory answers is the status controller's concern
// (ConnectionProbe, BindSucceeded): an unreachable directory stays served, so that it works
// again as soon as it answers.
func LDAPIdentityProvider(u registry.UpstreamLDAP, err error) Decision {
	switch {
	case err == nil:
		return Decision{Serve, v1alpha1.ReasonReady, fmt.Sprintf("identity provider %q (LDAP %s) is served", u.Name, u.Host)}
	case errors.Is(err, convert.ErrSecretNotFound):
		return Decision{Withdraw, v1alpha1.ReasonSecretNotFound,
			fmt.Sprintf("LDAPIdentityProvider %s is not served: its bind Secret is missing: %v", u.Name, err)}
	}
	return withdraw(err)
}

// GitHubIdentityProvider decides about the result of convert.GitHubIdentityProvider: served only
// with its OAuth App's credentials, never when its spec is invalid.
func GitHubIdentityProvider(u registry.UpstreamGitHub, err error) Decision {
	switch {
	case err == nil:
		return Decision{Serve, v1alpha1.ReasonReady, fmt.Sprintf("identity provider %q (%s) is served", u.Name, u.WebURL)}
	case errors.Is(err, convert.ErrSecretNotFound):
		return Decision{Withdraw, v1alpha1.ReasonSecretNotFound,
			fmt.Sprintf("GitHubIdentityProvider %s is not served: its OAuth App credentials are missing: %v", u.Name, err)}
	}
	return withdraw(err)
}
