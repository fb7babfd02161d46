package register

import (
	"slices"
	"strings"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// DefaultAllowedScopes are the scopes registrations may request when Policy.AllowedScopes is
// nil: signing a user in, nothing that reaches an API.
func DefaultAllowedScopes() []string {
	return []string{oauth2.ScopeOpenID, oauth2.ScopeProfile, oauth2.ScopeEmail}
}

// Policy bounds what registrations may get beyond the rules of the metadata, and how often.
type Policy struct {
	// AllowedScopes are the scopes anonymous registrations, and registrations with an initial
	// access token that has no scopes= list of its own, may request (each must also exist and
	// be available to the registrar's namespace); an update may add only these. nil means
	// DefaultAllowedScopes; an empty, non-nil list allows none.
	AllowedScopes []string
	// RateLimit bounds registrations per client address; it needs Config.Counters.
	RateLimit RateLimit
}

// allowedScopes is AllowedScopes with its default.
func (p *Policy) allowedScopes() []string {
	if p.AllowedScopes == nil {
		return DefaultAllowedScopes()
	}
	return slices.Clone(p.AllowedScopes)
}

// checkRegistrationPolicy applies the policy of the registrant to a registration: token is the
// initial access token it came with, nil for an anonymous one. It runs before the scopes are
// looked up, so an anonymous caller learns nothing of which scopes exist.
func (e *Endpoint) checkRegistrationPolicy(m *ClientMetadata, token *InitialToken) error {
	if token == nil && slices.Contains(m.GrantTypes, oauth2.GrantClientCredentials) {
		return metadataError("The client_credentials grant needs a registration with an initial access token.")
	}
	if token != nil && token.GrantTypes != nil {
		for _, g := range m.GrantTypes {
			if !slices.Contains(token.GrantTypes, g) {
				return metadataError("The grant type %q is not allowed with this initial access token; it allows %s.", g, strings.Join(token.GrantTypes, ", "))
			}
		}
	}
	allowed, whose := e.allowed, "registrations"
	switch {
	case token == nil:
		whose = "anonymous registrations"
	case token.allowsAnyScope():
		return nil
	case token.Scopes != nil:
		allowed, whose = token.Scopes, "this initial access token"
	}
	for _, s := range m.Scopes {
		if !slices.Contains(allowed, s) {
			return metadataError("The scope %.64q is not allowed for %s; allowed: %s.", s, whose, listOrNone(allowed))
		}
	}
	return nil
}

// checkUpdatePolicy applies the policy to an update (RFC 7592 2.2), which is authorized by the
// client's registration access token, not by an initial access token: an update may keep what
// the client has, add scopes of AllowedScopes and the refresh_token grant, and drop anything.
// More (client_credentials, authorization_code, another scope) needs a new registration, under
// the policy of its initial access token.
func (e *Endpoint) checkUpdatePolicy(cur, next *ClientMetadata) error {
	for _, g := range next.GrantTypes {
		if !slices.Contains(cur.GrantTypes, g) && g != oauth2.GrantRefreshToken {
			return metadataError("The %s grant cannot be added by an update; register a new client.", g)
		}
	}
	for _, s := range next.Scopes {
		if !slices.Contains(cur.Scopes, s) && !slices.Contains(e.allowed, s) {
			return metadataError("The scope %.64q cannot be added by an update; allowed: %s, or register a new client.", s, listOrNone(e.allowed))
		}
	}
	return nil
}

// listOrNone is the scopes space-separated, or "none".
func listOrNone(scopes []string) string {
	if len(scopes) == 0 {
		return "none"
	}
	return strings.Join(scopes, " ")
}
