package oauth2

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/go-logr/logr"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// resolveScopes applies the scope policy. Every requested scope must be allowed to the client
// and exist in the registry for the client's namespace, else invalid_scope; OIDC's built-in
// scopes (openid ... offline_access) need no Scope resource, but one of that name still applies
// its namespace rule. With none
// requested, the client gets its DefaultScopes, else its allowed scopes marked Default; those
// defaults that fail the policy are dropped (and logged), not refused. The result may be empty.
func resolveScopes(ctx context.Context, snap *registry.Snapshot, c *registry.Client, requested string) ([]string, error) {
	// Each name is checked before it is kept, so names holds at most len(c.Scopes) entries.
	names := make([]string, 0, min(len(c.Scopes), 4))
	for name := range strings.SplitSeq(requested, " ") { // RFC 6749 3.3: space-delimited
		if name == "" || slices.Contains(names, name) {
			continue
		}
		if err := checkScope(snap, c, name); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return defaultScopes(ctx, snap, c), nil
	}
	return names, nil
}

// checkScope reports why the client may not have the scope, or nil.
func checkScope(snap *registry.Snapshot, c *registry.Client, name string) error {
	if !c.AllowsScope(name) {
		return ErrInvalidScope.WithDescription(fmt.Sprintf("The client may not request scope %.64q.", name))
	}
	sc, ok := snap.Scope(name)
	if !ok && isBuiltinScope(name) {
		return nil // OIDC's standard scopes need no Scope resource
	}
	if !ok {
		return ErrInvalidScope.WithDescription(fmt.Sprintf("Scope %.64q does not exist.", name))
	}
	if !sc.AllowsNamespace(c.Namespace) {
		return ErrInvalidScope.WithDescription(fmt.Sprintf("Scope %.64q is not available to the client's namespace.", name))
	}
	return nil
}

func defaultScopes(ctx context.Context, snap *registry.Snapshot, c *registry.Client) []string {
	var out []string
	if len(c.DefaultScopes) > 0 {
		for _, name := range c.DefaultScopes {
			if err := checkScope(snap, c, name); err != nil {
				logr.FromContextOrDiscard(ctx).V(1).Info("default scope dropped",
					"client_id", c.ID, "scope", name, "reason", err.Error())
				continue
			}
			out = append(out, name)
		}
		return out
	}
	for _, name := range c.Scopes {
		if sc, ok := snap.Scope(name); ok && sc.Default && sc.AllowsNamespace(c.Namespace) {
			out = append(out, name)
		}
	}
	return out
}
