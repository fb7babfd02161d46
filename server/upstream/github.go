package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// GitHubScopes are the OAuth scopes the GitHub sign-in asks for: the profile, the email
// addresses (the primary verified one) and the organization and team memberships.
var GitHubScopes = []string{"read:user", "user:email", "read:org"}

// maxGitHubBody bounds one GitHub API answer read.
const maxGitHubBody = 1 << 20

// GitHubSubject is the local subject of a GitHub user (the numeric, immutable user ID) of the
// provider with the UID: "github:" and the hash of both, as Subject does for OIDC. The
// prefixes differ, so a GitHub user's subject never equals an OIDC user's.
func GitHubSubject(providerUID string, userID int64) string {
	id := strconv.FormatInt(userID, 10)
	h := sha256.Sum256([]byte(strconv.Itoa(len(providerUID)) + ":" + providerUID + id))
	return registry.GitHubSubjectPrefix + base64.RawURLEncoding.EncodeToString(h[:])
}

// GitHub is the login flow's side of one GitHub provider value. It is safe for concurrent use.
type GitHub struct {
	cfg    registry.UpstreamGitHub
	client *http.Client
}

// NewGitHub builds the provider's HTTP client (its CA bundle as the only roots).
func NewGitHub(u *registry.UpstreamGitHub) (*GitHub, error) {
	client, err := HTTPClient(u.CABundle)
	if err != nil {
		return nil, err
	}
	return &GitHub{cfg: *u, client: client}, nil
}

func (g *GitHub) oauth2Config(redirectURI string) *xoauth2.Config {
	return &xoauth2.Config{
		ClientID: g.cfg.ClientID, ClientSecret: g.cfg.ClientSecret, RedirectURL: redirectURI, Scopes: GitHubScopes,
		Endpoint: xoauth2.Endpoint{
			AuthURL: g.cfg.WebURL + "/login/oauth/authorize", TokenURL: g.cfg.WebURL + "/login/oauth/access_token",
			AuthStyle: xoauth2.AuthStyleInParams,
		},
	}
}

// AuthCodeURL is GitHub's authorization request: the web flow with state and the S256
// challenge of verifier.
func (g *GitHub) AuthCodeURL(redirectURI, state, verifier string) string {
	return g.oauth2Config(redirectURI).AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("allow_signup", "false"))
}

// Exchange redeems GitHub's code, reads the user, their organizations and teams, checks the
// allowed organizations and maps the user.
func (g *GitHub) Exchange(ctx context.Context, redirectURI, code, verifier string) (Identity, error) {
	ctx = context.WithValue(ctx, xoauth2.HTTPClient, g.client)
	tok, err := g.oauth2Config(redirectURI).Exchange(ctx, code, xoauth2.VerifierOption(verifier))
	if err != nil {
		var re *xoauth2.RetrieveError
		switch {
		case errors.As(err, &re) && re.ErrorCode != "":
			return Identity{}, fmt.Errorf("%w: token endpoint answered %s", ErrUnavailable, re.ErrorCode)
		case re != nil && re.Response != nil:
			return Identity{}, fmt.Errorf("%w: token endpoint answered HTTP %d", ErrUnavailable, re.Response.StatusCode)
		}
		return Identity{}, fmt.Errorf("%w: token endpoint: %w", ErrUnavailable, err)
	}
	m, err := g.read(ctx, tok)
	if err != nil {
		return Identity{}, err
	}
	id, err := m.identity(&g.cfg)
	if err != nil {
		return Identity{}, err
	}
	id.Token = tok
	return id, nil
}

// Recheck asks GitHub, with the user's token of the login, whether it still accepts the user:
// the token still works (401, or 403 without a rate limit: refused, e.g. the OAuth App's
// authorization revoked), it is the same user, and (without AllowAllUsers) still a member of an
// allowed organization. It returns the user as GitHub describes them now (login, teams).
func (g *GitHub) Recheck(ctx context.Context, id Identity) (Identity, error) {
	if id.Token == nil || id.Token.AccessToken == "" {
		return Identity{}, fmt.Errorf("%w: no GitHub token left to ask with", ErrUserRefused)
	}
	m, err := g.read(ctx, id.Token)
	if err != nil {
		return Identity{}, err
	}
	if strconv.FormatInt(m.user.ID, 10) != id.UpstreamSubject {
		return Identity{}, fmt.Errorf("%w: the token is another GitHub user's", ErrUserRefused)
	}
	now, err := m.identity(&g.cfg)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrUserRefused, err)
	}
	now.Token = id.Token
	return now, nil
}

// githubMember is what the GitHub API says of a user.
type githubMember struct {
	user   githubUser
	emails []githubEmail
	orgs   []githubOrg
	teams  []githubTeam
}

type githubUser struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type githubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

type githubOrg struct {
	Login string `json:"login"`
}

type githubTeam struct {
	Slug         string    `json:"slug"`
	Name         string    `json:"name"`
	Organization githubOrg `json:"organization"`
}

// read asks the API for the user, their emails (when the token has user:email), organizations
// and teams (the first 100 of each).
func (g *GitHub) read(ctx context.Context, tok *xoauth2.Token) (githubMember, error) {
	var m githubMember
	if err := g.get(ctx, tok, "/user", &m.user); err != nil {
		return m, err
	}
	if err := g.get(ctx, tok, "/user/emails?per_page=100", &m.emails); err != nil && !errors.Is(err, errGitHubForbidden) {
		return m, err
	}
	if err := g.get(ctx, tok, "/user/orgs?per_page=100", &m.orgs); err != nil {
		return m, err
	}
	if err := g.get(ctx, tok, "/user/teams?per_page=100", &m.teams); err != nil {
		return m, err
	}
	return m, nil
}

// errGitHubForbidden is a 403 or 404 of an endpoint the token's scopes may not reach.
var errGitHubForbidden = errors.New("upstream: GitHub answered 403 or 404")

// get decodes the JSON answer of the API path (GET, with the token).
func (g *GitHub) get(ctx context.Context, tok *xoauth2.Token, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.cfg.APIURL+path, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	tok.SetAuthHeader(req)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := g.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: GitHub API: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w: GitHub answered HTTP 401 (the token was revoked)", ErrUserRefused)
	case (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound) && path != "/user" &&
		resp.Header.Get("X-RateLimit-Remaining") != "0" && resp.Header.Get("Retry-After") == "":
		return fmt.Errorf("%w %s", errGitHubForbidden, strings.SplitN(path, "?", 2)[0])
	case resp.StatusCode == http.StatusForbidden && (resp.Header.Get("X-RateLimit-Remaining") == "0" || resp.Header.Get("Retry-After") != ""):
		// A rate limit, not a refusal: never revoke a user's grants for it.
		return fmt.Errorf("%w: GitHub's rate limit (HTTP 403)", ErrUnavailable)
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: GitHub answered HTTP 403", ErrUserRefused)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: GitHub API %s answered HTTP %d", ErrUnavailable, strings.SplitN(path, "?", 2)[0], resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxGitHubBody))
	if err != nil {
		return fmt.Errorf("%w: GitHub API: %w", ErrUnavailable, err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("%w: GitHub API %s: not the expected JSON", ErrUnavailable, strings.SplitN(path, "?", 2)[0])
	}
	return nil
}

// identity maps what the API said to an Identity: ErrNotAllowed when the user is in none of the
// allowed organizations, ErrClaims when the API's answer lacks the user's login or ID.
func (m *githubMember) identity(cfg *registry.UpstreamGitHub) (Identity, error) {
	if m.user.ID <= 0 || m.user.Login == "" || len(m.user.Login) > 256 {
		return Identity{}, fmt.Errorf("%w: GitHub's user has no login or ID", ErrClaims)
	}
	allowed := func(org string) bool {
		return cfg.AllowAllUsers || slices.ContainsFunc(cfg.AllowedOrganizations, func(a string) bool { return strings.EqualFold(a, org) })
	}
	member := cfg.AllowAllUsers
	for _, o := range m.orgs {
		if o.Login != "" && allowed(o.Login) {
			member = true
		}
	}
	if !member {
		return Identity{}, fmt.Errorf("%w: not a member of an allowed organization", ErrNotAllowed)
	}
	id := Identity{
		Subject: GitHubSubject(cfg.UID, m.user.ID), Kind: registry.KindGitHub, Provider: cfg.Name, ProviderUID: cfg.UID,
		UpstreamSubject: strconv.FormatInt(m.user.ID, 10), Username: m.user.Login, Name: m.user.Name, Email: m.user.Email,
	}
	for _, e := range m.emails {
		if e.Primary && e.Verified && e.Email != "" {
			id.Email, id.EmailVerified = e.Email, true
		}
	}
	for _, t := range m.teams {
		team := t.Slug
		if cfg.TeamsAsGroups == registry.GitHubTeamName {
			team = t.Name
		}
		if team == "" || t.Organization.Login == "" || !allowed(t.Organization.Login) {
			continue
		}
		group := t.Organization.Login + "/" + team
		if !slices.Contains(id.Groups, group) {
			id.Groups = append(id.Groups, group)
		}
	}
	slices.Sort(id.Groups)
	return id, nil
}

// GitHubSet keeps one GitHub per provider value, built again when its UID, generation or client
// secret changes. It is safe for concurrent use.
type GitHubSet struct {
	mu sync.Mutex
	m  map[string]*GitHub
}

// Get returns the GitHub of the provider value u.
func (s *GitHubSet) Get(u *registry.UpstreamGitHub) (*GitHub, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.m[u.Name]; ok && g.cfg.UID == u.UID && g.cfg.Generation == u.Generation && g.cfg.ClientSecret == u.ClientSecret {
		return g, nil
	}
	g, err := NewGitHub(u)
	if err != nil {
		return nil, err
	}
	if s.m == nil {
		s.m = map[string]*GitHub{}
	}
	s.m[u.Name] = g
	return g, nil
}

// StartGitHub returns GitHub's authorization request's URL.
func (p *Providers) StartGitHub(_ context.Context, u *registry.UpstreamGitHub, redirectURI, state, verifier string) (string, error) {
	g, err := p.github.Get(u)
	if err != nil {
		return "", err
	}
	return g.AuthCodeURL(redirectURI, state, verifier), nil
}

// FinishGitHub redeems GitHub's code, maps the user and remembers them for the token endpoints.
func (p *Providers) FinishGitHub(ctx context.Context, u *registry.UpstreamGitHub, redirectURI, code, verifier string) (*registry.User, error) {
	g, err := p.github.Get(u)
	if err != nil {
		return nil, err
	}
	id, err := g.Exchange(ctx, redirectURI, code, verifier)
	if err != nil {
		return nil, err
	}
	return p.ids.Remember(ctx, id)
}

// GitHubLookup finds a GitHub provider's current value by name.
type GitHubLookup func(name string) (*registry.UpstreamGitHub, bool)

// GitHubRechecker re-checks the users of GitHub providers (GitHub.Recheck), and keeps what
// GitHub says of them now (login, name, email, teams) for the refreshed tokens.
type GitHubRechecker struct {
	set    *GitHubSet
	ids    *Identities
	lookup GitHubLookup
}

var _ Rechecker = (*GitHubRechecker)(nil)

// GitHubRechecker returns the re-check of the GitHub providers' users.
func (p *Providers) GitHubRechecker(lookup GitHubLookup) *GitHubRechecker {
	return &GitHubRechecker{set: &p.github, ids: p.ids, lookup: lookup}
}

// Recheck asks the user's GitHub whether it still accepts them.
func (r *GitHubRechecker) Recheck(ctx context.Context, id Identity) error {
	u, ok := r.lookup(id.Provider)
	if !ok || u.UID != id.ProviderUID {
		return fmt.Errorf("%w: the provider is no longer served", ErrUserRefused)
	}
	g, err := r.set.Get(u)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	now, err := g.Recheck(ctx, id)
	if err != nil {
		return err
	}
	_, err = r.ids.Remember(ctx, now)
	return err
}
