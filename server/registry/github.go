package registry

import (
	"cmp"
	"slices"
)

// UpstreamGitHub is GitHub (github.com or a GitHub Enterprise Server) as an identity provider
// users sign in with (a GitHubIdentityProvider resource), as the login flow (server/upstream)
// uses it.
type UpstreamGitHub struct {
	// Name is the resource's name: what OAuthClient allowedIdentityProviders and the login
	// page's links name.
	Name string
	// UID is the resource's UID: with the GitHub user ID it makes the local subject.
	UID string
	// Generation changes whenever the value does.
	Generation int64
	// DisplayName labels the login page's button; never empty (the name by default).
	DisplayName string
	// WebURL is where the OAuth endpoints are (https://github.com, https://HOST) and APIURL
	// the REST API's base (https://api.github.com, https://HOST/api/v3), without a final slash.
	WebURL, APIURL string
	// CABundle (PEM) are the only roots trusted for the host; empty: the system's.
	CABundle []byte
	// ClientID and ClientSecret are the GitHub OAuth App's credentials.
	ClientID     string
	ClientSecret string
	// AllowedOrganizations are the organizations (logins, compared case-insensitively) whose
	// members may sign in; empty only with AllowAllUsers.
	AllowedOrganizations []string
	// AllowAllUsers lets every GitHub user sign in.
	AllowAllUsers bool
	// TeamsAsGroups is how teams become groups ("org/<team>"): GitHubTeamSlug or
	// GitHubTeamName.
	TeamsAsGroups string
}

// How GitHub teams become groups (UpstreamGitHub.TeamsAsGroups).
const (
	GitHubTeamSlug = "slug"
	GitHubTeamName = "name"
)

// UpstreamGitHub returns the GitHub provider of the name.
func (s *Snapshot) UpstreamGitHub(name string) (*UpstreamGitHub, bool) { return s.github.get(name) }

// UpstreamGitHubCount is the number of GitHub providers.
func (s *Snapshot) UpstreamGitHubCount() int { return s.github.len() }

// UpstreamGitHubs returns the GitHub providers sorted by display name, then name.
func (s *Snapshot) UpstreamGitHubs() []*UpstreamGitHub {
	out := make([]*UpstreamGitHub, 0, s.github.len())
	for u := range s.github.values() {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b *UpstreamGitHub) int {
		return cmp.Or(cmp.Compare(a.DisplayName, b.DisplayName), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// PutUpstreamGitHub stores or replaces the provider of u.Name.
func (r *Registry) PutUpstreamGitHub(u UpstreamGitHub) {
	r.Update(func(tx *Txn) { tx.PutUpstreamGitHub(u) })
}

// DeleteUpstreamGitHub removes the provider of the name, if any.
func (r *Registry) DeleteUpstreamGitHub(name string) {
	r.Update(func(tx *Txn) { tx.DeleteUpstreamGitHub(name) })
}

// PutUpstreamGitHub stores or replaces the provider of u.Name.
func (tx *Txn) PutUpstreamGitHub(u UpstreamGitHub) { tx.github.set(u.Name, &u) }

// DeleteUpstreamGitHub removes the provider of the name, if any.
func (tx *Txn) DeleteUpstreamGitHub(name string) { tx.github.del(name) }

// GitHubSubjectPrefix starts the subjects of GitHub providers' users (see server/upstream).
const GitHubSubjectPrefix = "github:"
