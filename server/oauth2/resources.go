package oauth2

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// ErrInvalidTarget is RFC 8707 2's: a resource parameter that is not an absolute URI, has a
// fragment, or names a resource the client may not reach.
var ErrInvalidTarget = &Error{code: "invalid_target", status: http.StatusBadRequest,
	description: "The requested resource is invalid, unknown, or malformed."}

// Bounds of the resource parameter: how many a request may send and how long each may be.
const (
	MaxResources      = 8
	MaxResourceLength = 1024
)

// CheckResource checks one resource parameter value (RFC 8707 2): an absolute URI without a
// fragment, at most MaxResourceLength bytes. A bad value is invalid_target.
func CheckResource(value string) error {
	if len(value) > MaxResourceLength {
		return ErrInvalidTarget.WithDescription(fmt.Sprintf("A resource is longer than %d bytes.", MaxResourceLength))
	}
	if strings.ContainsRune(value, '#') {
		return ErrInvalidTarget.WithDescription("A resource must not have a fragment.")
	}
	if u, err := url.Parse(value); err != nil || !u.IsAbs() {
		return ErrInvalidTarget.WithDescription("A resource must be an absolute URI.")
	}
	return nil
}

// addResource appends one resource parameter to resources, once: a value sent twice counts
// once. More than MaxResources distinct values is invalid_target.
func addResource(resources []string, value string) ([]string, error) {
	if err := CheckResource(value); err != nil {
		return resources, err
	}
	if slices.Contains(resources, value) {
		return resources, nil
	}
	if len(resources) >= MaxResources {
		return resources, ErrInvalidTarget.WithDescription(fmt.Sprintf("At most %d resources may be requested.", MaxResources))
	}
	return append(resources, value), nil
}

// addAudience appends one audience parameter of a token exchange (RFC 8693 2.1: a logical
// name, so any string) to audiences, once, with the bounds of resources: at most
// MaxResourceLength bytes, at most MaxResources distinct values (invalid_target beyond).
func addAudience(audiences []string, value string) ([]string, error) {
	if len(value) > MaxResourceLength {
		return audiences, ErrInvalidTarget.WithDescription(fmt.Sprintf("An audience is longer than %d bytes.", MaxResourceLength))
	}
	if slices.Contains(audiences, value) {
		return audiences, nil
	}
	if len(audiences) >= MaxResources {
		return audiences, ErrInvalidTarget.WithDescription(fmt.Sprintf("At most %d audiences may be requested.", MaxResources))
	}
	return append(audiences, value), nil
}

// ExchangeTargets merges the resource and audience parameters of a token exchange (RFC 8693
// 2.1: both name the target) without repeats: at most MaxResources in all, invalid_target
// beyond.
func ExchangeTargets(resources, audiences []string) ([]string, error) {
	out := slices.Clone(resources)
	for _, a := range audiences {
		if slices.Contains(out, a) {
			continue
		}
		if len(out) >= MaxResources {
			return nil, ErrInvalidTarget.WithDescription(fmt.Sprintf("At most %d targets may be requested.", MaxResources))
		}
		out = append(out, a)
	}
	return out, nil
}

// ParseResources checks the values of the resource parameter of an authorization request
// (each an absolute URI without fragment, at most MaxResources distinct ones) and returns
// them without repeats; nil when there are none. Empty values count as omitted.
func ParseResources(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		if v == "" {
			continue
		}
		var err error
		if out, err = addResource(out, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AllowedResources is the one place that decides which resources a client may reach: each
// requested resource must be one of the client's own audiences, or the audience of the
// ProtectedResource that holds it (the earliest created) when that resource allows the
// client (invalid_target otherwise). It returns requested, or nil when none was requested
// (the token then carries all the client's audiences, as without RFC 8707; a
// ProtectedResource's audience is only ever in a token that asked for it).
func AllowedResources(snap *registry.Snapshot, c *registry.Client, requested []string) ([]string, error) {
	for _, r := range requested {
		if !MayReach(snap, c, r) {
			return nil, ErrInvalidTarget.WithDescription(fmt.Sprintf("The client may not request resource %.128q.", r))
		}
	}
	return requested, nil
}

// MayReach reports whether the client may request tokens for the resource: one of its
// audiences, or a ProtectedResource's audience that allows it.
func MayReach(snap *registry.Snapshot, c *registry.Client, resource string) bool {
	if slices.Contains(c.Audiences, resource) {
		return true
	}
	if snap == nil {
		return false
	}
	p, ok := snap.ProtectedResource(resource)
	return ok && p.AllowsClient(c.Source)
}

// ResourceScopes narrows scopes to what the token's resources own, the one place of the scope
// ownership of ProtectedResources. When every resource is the audience of a
// ProtectedResource that declares scopes, the scopes that none of them owns are dropped; the
// OIDC scopes (openid, profile, email, address, phone, offline_access) are always kept, as
// they concern the user's identity, not a resource. When some resource declares no scopes (a
// client's own audience, or a ProtectedResource without scopes), or none was requested,
// scopes are returned unchanged: such a resource may accept any scope. It never widens:
// the result is a subsequence of scopes.
func ResourceScopes(snap *registry.Snapshot, resources, scopes []string) []string {
	if len(resources) == 0 || len(scopes) == 0 || snap == nil {
		return scopes
	}
	owners := make([]*registry.ProtectedResource, 0, len(resources))
	for _, r := range resources {
		p, ok := snap.ProtectedResource(r)
		if !ok || len(p.Scopes) == 0 {
			return scopes
		}
		owners = append(owners, p)
	}
	out := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		if IsBuiltinScope(sc) || slices.ContainsFunc(owners, func(p *registry.ProtectedResource) bool {
			return slices.Contains(p.Scopes, sc)
		}) {
			out = append(out, sc)
		}
	}
	return out
}

// Target applies the resource policy to a request: the requested resources the client may
// reach (AllowedResources) and the scopes narrowed to them (ResourceScopes).
func Target(snap *registry.Snapshot, c *registry.Client, requested, scopes []string) (resources, narrowed []string, err error) {
	resources, err = AllowedResources(snap, c, requested)
	if err != nil {
		return nil, nil, err
	}
	return resources, ResourceScopes(snap, resources, scopes), nil
}

// ExchangeTarget is Target for a token exchange (RFC 8693): the client may exchange into a
// resource whose ProtectedResource lists it in ExchangeRequesters, whether or not it may
// request tokens for the resource itself, so a service allowed only to act on behalf of its
// callers never gets tokens of its own for the target. Which subject token sources it may
// present is the grant's check (ExchangeRequester.SubjectTokenSources).
func ExchangeTarget(snap *registry.Snapshot, c *registry.Client, requested, scopes []string) (resources, narrowed []string, err error) {
	for _, r := range requested {
		if !MayExchangeInto(snap, c, r) {
			return nil, nil, ErrInvalidTarget.WithDescription(fmt.Sprintf("The client may not exchange tokens for resource %.128q.", r))
		}
	}
	return requested, ResourceScopes(snap, requested, scopes), nil
}

// MayExchangeInto reports whether the client may exchange tokens into the resource: the
// ProtectedResource holding it lists the client among its exchange requesters.
func MayExchangeInto(snap *registry.Snapshot, c *registry.Client, resource string) bool {
	if snap == nil {
		return false
	}
	p, ok := snap.ProtectedResource(resource)
	if !ok {
		return false
	}
	_, ok = p.ExchangeRequester(c.Source)
	return ok
}

// NarrowResources checks requested against the resources a grant holds: a request may narrow
// them, never widen them (invalid_target). granted nil means the grant holds every audience
// of the client (it was made without resource), which AllowedResources already checked.
// It returns the audiences of the new access token: requested, else granted.
func NarrowResources(granted, requested []string) ([]string, error) {
	if len(requested) == 0 {
		return granted, nil
	}
	if granted == nil {
		return requested, nil
	}
	for _, r := range requested {
		if !slices.Contains(granted, r) {
			return nil, ErrInvalidTarget.WithDescription(fmt.Sprintf("Resource %.128q was not granted.", r))
		}
	}
	return requested, nil
}
