package oauth2

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/token"
)

// Built-in OIDC scopes (OIDC Core 5.4 and 11): accepted when the client lists them, with or
// without a Scope resource.
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeAddress       = "address"
	ScopePhone         = "phone"
	ScopeOfflineAccess = "offline_access"
	// ScopeGroups is not built in, but without a Scope resource of its own it releases the
	// groups claim (see ReleasedClaims).
	ScopeGroups = "groups"
)

// BuiltinScopes lists OIDC's standard scopes in the order discovery shows them.
func BuiltinScopes() []string {
	return []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeAddress, ScopePhone, ScopeOfflineAccess}
}

// IsBuiltinScope reports whether the scope is one of OIDC's standard scopes.
func IsBuiltinScope(name string) bool { return slices.Contains(BuiltinScopes(), name) }

// ScopeDescription is what the consent page says of a scope: the Scope resource's description,
// else the built-in one of an OIDC scope, else "".
func ScopeDescription(snap *registry.Snapshot, name string) string {
	if sc, ok := snap.Scope(name); ok && sc.Description != "" {
		return sc.Description
	}
	switch name {
	case ScopeOpenID:
		return "Confirm who you are"
	case ScopeProfile:
		return "See your name and username"
	case ScopeEmail:
		return "See your email address"
	case ScopeAddress:
		return "See your postal address"
	case ScopePhone:
		return "See your phone number"
	case ScopeOfflineAccess:
		return "Keep access while you are away"
	case ScopeGroups:
		return "See the groups you belong to"
	}
	return ""
}

// ScopesSupported returns the registry's scope names merged with OIDC's built-in scopes,
// sorted, without duplicates (discovery's scopes_supported).
func ScopesSupported(snap *registry.Snapshot) []string {
	out := BuiltinScopes()
	for _, sc := range snap.Scopes() {
		out = append(out, sc.Name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ResolveScopes applies the scope policy to a requested scope parameter. Every requested scope
// must pass CheckScope, else invalid_scope. With none requested, the client gets its
// DefaultScopes, else its allowed scopes marked Default; those defaults that fail the policy
// are dropped (and logged), not refused. The result may be empty.
func ResolveScopes(ctx context.Context, snap *registry.Snapshot, c *registry.Client, requested string) ([]string, error) {
	// Each name is checked before it is kept, so names holds at most len(c.Scopes) entries.
	names := make([]string, 0, min(len(c.Scopes), 4))
	for name := range strings.SplitSeq(requested, " ") { // RFC 6749 3.3: space-delimited
		if name == "" || slices.Contains(names, name) {
			continue
		}
		if err := CheckScope(snap, c, name); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return defaultScopes(ctx, snap, c), nil
	}
	return names, nil
}

// CheckScope reports why the client may not have the scope (invalid_scope), or nil: the client
// must list it, and it must exist in the registry for the client's namespace. OIDC's built-in
// scopes need no Scope resource, but one of that name still applies its namespace rule.
func CheckScope(snap *registry.Snapshot, c *registry.Client, name string) error {
	if !c.AllowsScope(name) {
		return ErrInvalidScope.WithDescription(fmt.Sprintf("The client may not request scope %.64q.", name))
	}
	sc, ok := snap.Scope(name)
	if !ok && IsBuiltinScope(name) {
		return nil
	}
	if !ok {
		return ErrInvalidScope.WithDescription(fmt.Sprintf("Scope %.64q does not exist.", name))
	}
	if !sc.AllowsNamespace(c.Namespace) {
		return ErrInvalidScope.WithDescription(fmt.Sprintf("Scope %.64q is not available to the client's namespace.", name))
	}
	return nil
}

// StillAllowed drops the scopes the client may no longer have (the registry changed since
// they were granted) and logs each; a grant is narrowed, never refused, by it.
func StillAllowed(ctx context.Context, snap *registry.Snapshot, c *registry.Client, scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if err := CheckScope(snap, c, s); err != nil {
			logr.FromContextOrDiscard(ctx).V(1).Info("scope dropped",
				"client_id", c.ID, "scope", s, "reason", err.Error())
			continue
		}
		out = append(out, s)
	}
	return out
}

func defaultScopes(ctx context.Context, snap *registry.Snapshot, c *registry.Client) []string {
	if len(c.DefaultScopes) > 0 {
		return StillAllowed(ctx, snap, c, c.DefaultScopes)
	}
	var out []string
	for _, name := range c.Scopes {
		if sc, ok := snap.Scope(name); ok && sc.Default && sc.AllowsNamespace(c.Namespace) {
			out = append(out, name)
		}
	}
	return out
}

// HasScope reports whether the space-separated scope list holds name.
func HasScope(scope, name string) bool {
	for s := range strings.SplitSeq(scope, " ") {
		if s == name {
			return true
		}
	}
	return false
}

// ReleasedClaims returns the user claims the scopes release. A Scope resource with a Claims
// list releases exactly those claims; otherwise the built-ins apply: profile releases name and
// preferred_username, email releases email and email_verified, groups releases groups.
func ReleasedClaims(snap *registry.Snapshot, scopes []string) token.Claims {
	var out token.Claims
	for _, name := range scopes {
		if sc, ok := snap.Scope(name); ok && len(sc.Claims) > 0 {
			for _, c := range sc.Claims {
				out |= token.ClaimByName(c)
			}
			continue
		}
		switch name {
		case ScopeProfile:
			out |= token.ClaimName | token.ClaimPreferredUsername
		case ScopeEmail:
			out |= token.ClaimEmail | token.ClaimEmailVerified
		case ScopeGroups:
			out |= token.ClaimGroups
		}
	}
	return out
}

// ClaimsSupported lists the claims of ID tokens and userinfo, for discovery.
func ClaimsSupported() []string {
	return append([]string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash"}, token.ClaimNames()...)
}
