package feed

import (
	"fmt"
	"strings"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// ProtectedResource decides what to do with a converted ProtectedResource: serve it, or
// withdraw it when its spec cannot be served. unknown are the OAuthClients it names that do
// not exist (named in the Ready message; they are allowed all the same, should they appear).
func ProtectedResource(p registry.ProtectedResource, err error, unknown []string) Decision {
	if err != nil {
		return withdraw(err)
	}
	msg := fmt.Sprintf("protected resource %q is served; allowed clients: %d", p.Audience, len(p.AllowedClients))
	if len(unknown) > 0 {
		msg += fmt.Sprintf("; OAuthClients %s do not exist (yet)", strings.Join(limit(unknown), ", "))
	}
	return Decision{Serve, v1alpha1.ReasonReady, msg}
}

// AudienceConflict is the conflict of a ProtectedResource whose audience another one, created
// earlier, holds: only the holder decides who may reach the audience.
func AudienceConflict(audience, holder string) Conflict {
	return Conflict{v1alpha1.ReasonAudienceConflict, fmt.Sprintf(
		"audience %s is already held by ProtectedResource %s, created earlier; this resource does not decide who may reach it",
		quote(audience), holder)}
}

// ResourceScopesResolved is the ScopesResolved condition of a ProtectedResource: every scope
// it owns is built in or defined by a Scope (defined reports which are).
func ResourceScopesResolved(owned []string, defined func(name string) bool) ScopesResolution {
	var unknown []string
	for _, name := range owned {
		if !oauth2.IsBuiltinScope(name) && !defined(name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return ScopesResolution{Resolved: true, Reason: v1alpha1.ReasonResolved,
			Message: "every scope the resource owns is a built-in OIDC scope or defined by a Scope"}
	}
	return ScopesResolution{Reason: v1alpha1.ReasonUnknownScope, Unknown: unknown, Message: fmt.Sprintf(
		"unknown scopes %s: neither built-in OIDC scopes nor defined by a Scope; no client can be granted them", quoteAll(unknown))}
}

// maxNamed bounds the names a message lists.
const maxNamed = 10

// limit returns at most maxNamed names, then "and N more".
func limit(names []string) []string {
	if len(names) <= maxNamed {
		return names
	}
	return append(names[:maxNamed:maxNamed], fmt.Sprintf("and %d more", len(names)-maxNamed))
}
