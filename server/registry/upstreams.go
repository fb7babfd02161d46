package registry

import (
	"cmp"
	"slices"
	"strings"
)

// UpstreamOIDC is an upstream OpenID Connect provider users sign in with (an
// OIDCIdentityProvider resource), as the login flow (server/upstream) uses it.
type UpstreamOIDC struct {
	// Name is the resource's name: what OAuthClient allowedIdentityProviders and the login
	// page's links name.
	Name string
	// UID is the resource's UID: with the upstream's sub it makes the local subject, so a
	// provider deleted and re-created under the same name never inherits its users' subjects.
	UID string
	// Generation changes whenever the value does: the login flow rebuilds what it derived
	// from it (discovery, compiled CEL) when it changes.
	Generation int64
	// DisplayName labels the login page's button; never empty (the name by default).
	DisplayName string
	// Issuer is the upstream's issuer URL (https, or http on a loopback host).
	Issuer string
	// CABundle (PEM) are the only roots trusted for the upstream's endpoints; empty: the
	// system's.
	CABundle []byte
	// ClientID and ClientSecret are Latchkey's credentials at the upstream (client_secret_basic).
	ClientID     string
	ClientSecret string
	// AssertionFile, instead of ClientSecret, is the path of a token file (a projected
	// ServiceAccount token) sent as an RFC 7523 client assertion; read at each token request.
	AssertionFile string
	// Scopes requested upstream (openid among them).
	Scopes []string
	// AuthorizeParameters are added to the upstream authorization request; they never set a
	// parameter the flow sets itself.
	AuthorizeParameters map[string]string
	// Claims are the CEL mappings of the user's claims (empty fields: the defaults).
	Claims ClaimMappings
	// ClaimRules must all be true for a sign-in.
	ClaimRules []ClaimRule
	// AllowPolicy is a CEL bool over claims and user; empty allows everyone.
	AllowPolicy string
}

// ClaimMappings are CEL expressions over an upstream's claims; an empty one takes its default.
type ClaimMappings struct {
	Username, Groups, Email, EmailVerified, Name string
}

// UpstreamOIDC returns the upstream OIDC provider of the name.
func (s *Snapshot) UpstreamOIDC(name string) (*UpstreamOIDC, bool) { return s.upstreams.get(name) }

// UpstreamOIDCCount is the number of upstream OIDC providers.
func (s *Snapshot) UpstreamOIDCCount() int { return s.upstreams.len() }

// UpstreamOIDCs returns the upstream OIDC providers sorted by display name, then name.
func (s *Snapshot) UpstreamOIDCs() []*UpstreamOIDC {
	out := make([]*UpstreamOIDC, 0, s.upstreams.len())
	for u := range s.upstreams.values() {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b *UpstreamOIDC) int {
		return cmp.Or(cmp.Compare(a.DisplayName, b.DisplayName), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// AllowsIdentityProvider reports whether users of the named identity provider may sign in to
// the client (AllowedIdentityProviders; empty allows every provider).
func (c *Client) AllowsIdentityProvider(name string) bool {
	return len(c.AllowedIdentityProviders) == 0 || slices.Contains(c.AllowedIdentityProviders, name)
}

// PutUpstreamOIDC stores or replaces the provider of u.Name.
func (r *Registry) PutUpstreamOIDC(u UpstreamOIDC) { r.Update(func(tx *Txn) { tx.PutUpstreamOIDC(u) }) }

// DeleteUpstreamOIDC removes the provider of the name, if any.
func (r *Registry) DeleteUpstreamOIDC(name string) {
	r.Update(func(tx *Txn) { tx.DeleteUpstreamOIDC(name) })
}

// PutUpstreamOIDC stores or replaces the provider of u.Name.
func (tx *Txn) PutUpstreamOIDC(u UpstreamOIDC) { tx.upstreams.set(u.Name, &u) }

// DeleteUpstreamOIDC removes the provider of the name, if any.
func (tx *Txn) DeleteUpstreamOIDC(name string) { tx.upstreams.del(name) }

// ExternalUsers finds the users that are no User resource, those an upstream identity provider
// signed in (server/upstream.Identities), by subject. They live in the leased store, shared by
// every replica, not in the registry: a lookup may do I/O, and a failed one finds nobody (the
// user must sign in again; never a user without the checks). Snapshot.UserBySubject returns
// such a user only while the registry serves its provider (User.IdentityProvider, with the
// same UID).
type ExternalUsers interface {
	ExternalUser(sub string) (*User, bool)
}

// ExternalSubjectPrefix starts the subjects of upstream identity providers' users (and never a
// User resource's: those are UIDs), so only such subjects are looked up in ExternalUsers.
const ExternalSubjectPrefix = "oidc:"

// IsExternalSubject reports whether sub is an upstream identity provider user's subject.
func IsExternalSubject(sub string) bool {
	return strings.HasPrefix(sub, ExternalSubjectPrefix) || strings.HasPrefix(sub, GitHubSubjectPrefix)
}

// SetExternalUsers makes Snapshot.UserBySubject find the users of upstream identity providers
// in ext after the User resources; set it once, before serving.
func (r *Registry) SetExternalUsers(ext ExternalUsers) {
	r.Update(func(tx *Txn) { tx.s.external = ext })
}

// AllowsUser reports whether the user may use the client: a User resource always, a user of an
// upstream provider while the client allows that provider (a provider taken off
// AllowedIdentityProviders cuts its users off the client: codes and refresh tokens included).
func (c *Client) AllowsUser(u *User) bool {
	return u.IdentityProvider == "" || c.AllowsIdentityProvider(u.IdentityProvider)
}
