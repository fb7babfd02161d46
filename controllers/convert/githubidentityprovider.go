package convert

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// The Secret keys of a GitHubIdentityProvider's OAuth App credentials.
const (
	GitHubClientIDKey     = "clientID"
	GitHubClientSecretKey = "clientSecret"
)

// DefaultGitHubHost is the host of a GitHubIdentityProvider that names none.
const DefaultGitHubHost = "github.com"

var (
	githubHostPattern = regexp.MustCompile(`^(http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?|[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]+)?)$`)
	githubOrgPattern  = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$`)
)

// GitHubURLs are the web (OAuth) and REST API base URLs of a GitHub host: github.com's
// (https://github.com, https://api.github.com), a GitHub Enterprise Server's (https://HOST,
// https://HOST/api/v3), or a loopback http://HOST[:port]'s, for tests (http://HOST[:port],
// http://HOST[:port]/api/v3).
func GitHubURLs(host string) (web, api string) {
	switch {
	case host == "" || host == DefaultGitHubHost:
		return "https://github.com", "https://api.github.com"
	case strings.HasPrefix(host, "http://"):
		return host, host + "/api/v3"
	}
	return "https://" + host, "https://" + host + "/api/v3"
}

// GitHubIdentityProvider converts a GitHubIdentityProvider and its client Secret (nil when it
// does not exist) into the registry value. Spec problems wrap ErrInvalidSpec; a missing Secret
// or key wraps ErrSecretNotFound. On an error the value has only the name, UID and generation.
func GitHubIdentityProvider(p *v1alpha1.GitHubIdentityProvider, secret *corev1.Secret) (registry.UpstreamGitHub, error) {
	s := &p.Spec
	base := registry.UpstreamGitHub{Name: p.Name, UID: string(p.UID), Generation: p.Generation}
	u := base
	u.DisplayName = s.DisplayName
	if u.DisplayName == "" {
		u.DisplayName = p.Name
	}
	u.WebURL, u.APIURL = GitHubURLs(s.Host)
	if s.CABundle != "" {
		u.CABundle = []byte(s.CABundle)
	}
	u.AllowedOrganizations, u.AllowAllUsers = slices.Clone(s.AllowedOrganizations), s.AllowAllUsers
	u.TeamsAsGroups = s.TeamsAsGroups
	if u.TeamsAsGroups == "" {
		u.TeamsAsGroups = registry.GitHubTeamSlug
	}
	if problems := validateGitHub(p); len(problems) > 0 {
		return base, fmt.Errorf("%w: %s", ErrInvalidSpec, strings.Join(problems, "; "))
	}
	ref := s.Client.SecretRef
	id, err := secretValue(secret, ref.Namespace, ref.Name, GitHubClientIDKey)
	if err != nil {
		return base, err
	}
	sec, err := secretValue(secret, ref.Namespace, ref.Name, GitHubClientSecretKey)
	if err != nil {
		return base, err
	}
	u.ClientID, u.ClientSecret = string(id), string(sec)
	return u, nil
}

// validateGitHub checks what the CRD checks (manifests on disk never met it) and what it
// cannot: the CA bundle parses.
func validateGitHub(p *v1alpha1.GitHubIdentityProvider) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	s := &p.Spec
	if p.Name == "" {
		add("metadata.name is required")
	}
	if s.Host != "" && (len(s.Host) > 256 || !githubHostPattern.MatchString(s.Host)) {
		add("host %s must be a host name (github.com, a GitHub Enterprise Server's) or http:// on a loopback host", quoteShort(s.Host))
	}
	if s.Client.SecretRef.Namespace == "" || s.Client.SecretRef.Name == "" {
		add("client.secretRef needs a namespace and a name")
	}
	if s.AllowAllUsers == (len(s.AllowedOrganizations) > 0) {
		add("set exactly one of allowedOrganizations (not empty) and allowAllUsers: true")
	}
	for _, o := range s.AllowedOrganizations {
		if len(o) > 39 || !githubOrgPattern.MatchString(o) {
			add("allowedOrganizations: %s is not an organization login", quoteShort(o))
		}
	}
	if t := s.TeamsAsGroups; t != "" && t != registry.GitHubTeamSlug && t != registry.GitHubTeamName {
		add("teamsAsGroups must be slug or name")
	}
	if len(s.CABundle) > maxCABundleBytes {
		add("caBundle must have at most %d bytes", maxCABundleBytes)
	} else if s.CABundle != "" {
		if err := checkCABundle([]byte(s.CABundle)); err != nil {
			add("caBundle %v", err)
		}
	}
	if len(s.DisplayName) > 64 {
		add("displayName must have at most 64 characters")
	}
	return out
}
