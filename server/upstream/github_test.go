package upstream

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/registry"
)

var acme = registry.UpstreamGitHub{Name: "github", UID: "uid-1", AllowedOrganizations: []string{"Acme"}, TeamsAsGroups: registry.GitHubTeamSlug}

func TestGitHubIdentity(t *testing.T) {
	member := githubMember{
		user:   githubUser{Login: "octocat", ID: 1, Name: "Octo"},
		emails: []githubEmail{{Email: "x@unverified.example", Primary: true}, {Email: "o@acme.example", Primary: true, Verified: true}},
		orgs:   []githubOrg{{Login: "acme"}},
		teams:  []githubTeam{{Slug: "a", Name: "A", Organization: githubOrg{Login: "acme"}}, {Slug: "z", Organization: githubOrg{Login: "elsewhere"}}},
	}
	for _, tc := range []struct {
		name   string
		change func(m *githubMember, cfg *registry.UpstreamGitHub)
		want   error
		check  func(t *testing.T, id Identity)
	}{
		{name: "a member of an allowed organization (case-insensitive) is mapped, with the primary verified email", check: func(t *testing.T, id Identity) {
			assert.Equal(t, "octocat", id.Username)
			assert.Equal(t, "o@acme.example", id.Email)
			assert.True(t, id.EmailVerified)
			assert.Equal(t, []string{"acme/a"}, id.Groups, "teams of other organizations are left out")
			assert.Equal(t, "1", id.UpstreamSubject)
			assert.Equal(t, registry.KindGitHub, id.Kind)
		}},
		{name: "a user of no allowed organization is not allowed", change: func(m *githubMember, _ *registry.UpstreamGitHub) { m.orgs = nil }, want: ErrNotAllowed},
		{name: "allowAllUsers admits anyone and keeps every team", change: func(m *githubMember, c *registry.UpstreamGitHub) {
			m.orgs, c.AllowAllUsers, c.AllowedOrganizations = nil, true, nil
		}, check: func(t *testing.T, id Identity) { assert.Equal(t, []string{"acme/a", "elsewhere/z"}, id.Groups) }},
		{name: "an answer without a login or ID refuses the sign-in", change: func(m *githubMember, _ *registry.UpstreamGitHub) { m.user.ID = 0 }, want: ErrClaims},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, cfg := member, acme
			if tc.change != nil {
				tc.change(&m, &cfg)
			}
			id, err := m.identity(&cfg)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			tc.check(t, id)
		})
	}
}

func TestGitHubSubjectNeverCollidesWithOIDC(t *testing.T) {
	gh := GitHubSubject("uid", 42)
	assert.True(t, strings.HasPrefix(gh, registry.GitHubSubjectPrefix))
	assert.NotEqual(t, Subject("uid", "42"), gh)
	assert.True(t, registry.IsExternalSubject(gh))
	assert.NotEqual(t, GitHubSubject("uid2", 42), gh, "another provider resource, another subject")
}

// FuzzGitHubIdentity decodes the GitHub API's answers as the sign-in does and maps them: never a
// panic, and an identity only for a member of an allowed organization, its groups theirs.
func FuzzGitHubIdentity(f *testing.F) {
	f.Add(`{"login":"octocat","id":1,"name":"O","email":null}`, `[{"login":"acme"}]`, `[{"slug":"a","name":"A","organization":{"login":"acme"}}]`, `[{"email":"o@x","primary":true,"verified":true}]`)
	f.Add(`{"login":"","id":-1}`, `[]`, `[{}]`, `{}`)
	f.Add(`{"login":"x","id":1e30}`, `[{"login":"ACME"}]`, `null`, `[]`)
	f.Fuzz(func(t *testing.T, user, orgs, teams, emails string) {
		var m githubMember
		if json.Unmarshal([]byte(user), &m.user) != nil || json.Unmarshal([]byte(orgs), &m.orgs) != nil ||
			json.Unmarshal([]byte(teams), &m.teams) != nil {
			return
		}
		_ = json.Unmarshal([]byte(emails), &m.emails) // optional: the scope may be missing
		id, err := m.identity(&acme)
		if err != nil {
			if !errors.Is(err, ErrNotAllowed) && !errors.Is(err, ErrClaims) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if id.Username == "" || !strings.HasPrefix(id.Subject, registry.GitHubSubjectPrefix) {
			t.Fatalf("identity without a username or a GitHub subject: %+v", id)
		}
		for _, g := range id.Groups {
			if !strings.HasPrefix(strings.ToLower(g), "acme/") {
				t.Fatalf("group %q of an organization not allowed", g)
			}
		}
	})
}

func TestSealer(t *testing.T) {
	s, err := NewSealer([]byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	sealed := s.Seal("sub-a", []byte("refresh-token"))
	assert.NotContains(t, string(sealed), "refresh-token")
	got, err := s.Open("sub-a", sealed)
	require.NoError(t, err)
	assert.Equal(t, "refresh-token", string(got))

	_, err = s.Open("sub-b", sealed)
	require.ErrorIs(t, err, ErrSealed, "moved to another record, it does not open")
	other, err := NewSealer([]byte(strings.Repeat("o", 32)))
	require.NoError(t, err)
	_, err = other.Open("sub-a", sealed)
	require.ErrorIs(t, err, ErrSealed, "another key")
	sealed[len(sealed)-1] ^= 1
	_, err = s.Open("sub-a", sealed)
	require.ErrorIs(t, err, ErrSealed, "altered")
	_, err = s.Open("sub-a", nil)
	require.ErrorIs(t, err, ErrSealed)
	_, err = NewSealer([]byte("short"))
	require.Error(t, err)
}
