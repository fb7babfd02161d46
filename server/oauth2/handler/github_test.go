package handler

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/internal/harness/fakegithub"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/upstream"
)

const (
	githubClientID     = "Iv1.latchkey-test"
	githubClientSecret = "github-secret-0123456789abcdef"
)

// githubEnv is a latchkey handler without users whose one identity provider is a GitHub
// Enterprise Server fake.
type githubEnv struct {
	env      *flowEnv
	github   *fakegithub.Server
	provider registry.UpstreamGitHub
}

func newGitHubEnv(t *testing.T, change func(u *registry.UpstreamGitHub), opts ...envOption) githubEnv {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	g := fakegithub.Start(t, githubClientID, githubClientSecret, srv.URL+oauth2.UpstreamCallbackPath)
	env := finishFlowEnv(t, srv, append([]envOption{func(c *Config) { c.Upstream.RecheckInterval = time.Minute }}, opts...)...)
	for _, name := range []string{ownerName, disabledName, noHashName, otherName} {
		env.reg.DeleteUser(name)
	}
	u := registry.UpstreamGitHub{
		Name: "github", UID: "uid-github", Generation: 1, DisplayName: "GitHub", WebURL: g.URL, APIURL: g.URL + "/api/v3",
		ClientID: githubClientID, ClientSecret: githubClientSecret, AllowedOrganizations: []string{"Acme"}, TeamsAsGroups: registry.GitHubTeamSlug,
	}
	if change != nil {
		change(&u)
	}
	env.reg.PutUpstreamGitHub(u)
	return githubEnv{env: env, github: g, provider: u}
}

var octocat = fakegithub.User{ID: 583231, Login: "octocat", Name: "The Octocat", Email: "octocat@acme.example",
	Orgs: []string{"acme", "other-org"}, Teams: []fakegithub.Team{{Org: "acme", Slug: "platform", Name: "Platform Team"}, {Org: "other-org", Slug: "secret", Name: "Secret"}}}

// signIn signs the user in at GitHub with a new browser and returns the page after the login.
func (e githubEnv) signIn(t *testing.T, u fakegithub.User) (page harness.Page, verifier string) {
	t.Helper()
	e.github.SignInAs(u)
	b := harness.NewBrowser(t, e.env.srv.Client(), e.env.srv.URL, e.github.URL)
	verifier, challenge := pkcePair()
	page = b.Get(e.env.authorizeURL("response_type", "code", "client_id", spaClientID, "redirect_uri", appRedirect,
		"scope", "openid profile email", "state", "st-gh", "code_challenge", challenge, "code_challenge_method", "S256"))
	if page.IsConsent() {
		page = b.Decide(page, "allow")
	}
	return page, verifier
}

// tokens signs the user in and redeems the code.
func (e githubEnv) tokens(t *testing.T, u fakegithub.User) map[string]any {
	t.Helper()
	page, verifier := e.signIn(t, u)
	cb := page.Callback(t)
	require.NotEmpty(t, cb.Code, "%v %s", cb, page.Body)
	status, body := e.env.exchangeForm(t, "grant_type", "authorization_code", "code", cb.Code, "client_id", spaClientID,
		"redirect_uri", appRedirect, "code_verifier", verifier)
	require.Equal(t, http.StatusOK, status, "%v", body)
	return body
}

func (e githubEnv) refresh(t *testing.T, rt string) (int, map[string]any) {
	t.Helper()
	return e.env.exchangeForm(t, "grant_type", "refresh_token", "refresh_token", rt, "client_id", spaClientID)
}

func TestGitHubSignIn(t *testing.T) {
	t.Run("a member of an allowed organization signs in with the login as username, the user ID in the subject and teams as groups", func(t *testing.T) {
		e := newGitHubEnv(t, nil)
		tok := e.tokens(t, octocat)
		idt := claimsOf(t, tok["id_token"].(string))
		sub := idt["sub"].(string)
		assert.True(t, strings.HasPrefix(sub, registry.GitHubSubjectPrefix), sub)
		assert.False(t, strings.HasPrefix(sub, registry.ExternalSubjectPrefix), "never an OIDC user's subject")
		assert.Equal(t, "octocat", idt["preferred_username"])
		assert.Equal(t, "The Octocat", idt["name"])
		assert.Equal(t, "octocat@acme.example", idt["email"], "the primary verified address")
		assert.Equal(t, true, idt["email_verified"])

		raw, err := e.env.store.GetRecord(t.Context(), "upstream-identity", store.HashOf(sub))
		require.NoError(t, err)
		var rec struct {
			Groups      []string `json:"groups"`
			UpstreamSub string   `json:"upstream_sub"`
			Token       []byte   `json:"upstream_token"`
		}
		require.NoError(t, json.Unmarshal(raw, &rec))
		assert.Equal(t, []string{"acme/platform"}, rec.Groups, "teams of allowed organizations only, org/slug")
		assert.Equal(t, "583231", rec.UpstreamSub)
		assert.NotEmpty(t, rec.Token)
		assert.NotContains(t, string(raw), "gho_", "the GitHub token is kept encrypted")
	})

	t.Run("teams become groups by name when asked", func(t *testing.T) {
		e := newGitHubEnv(t, func(u *registry.UpstreamGitHub) { u.TeamsAsGroups = registry.GitHubTeamName })
		idt := claimsOf(t, e.tokens(t, octocat)["id_token"].(string))
		raw, err := e.env.store.GetRecord(t.Context(), "upstream-identity", store.HashOf(idt["sub"].(string)))
		require.NoError(t, err)
		assert.Contains(t, string(raw), `"groups":["acme/Platform Team"]`)
	})

	t.Run("a user in no allowed organization gets a 403 page and no code", func(t *testing.T) {
		e := newGitHubEnv(t, nil)
		outsider := fakegithub.User{ID: 42, Login: "mallory", Orgs: []string{"evil"}}
		page, _ := e.signIn(t, outsider)
		assert.Equal(t, http.StatusForbidden, page.Status)
		assert.Contains(t, page.Body, "not allowed to sign in here")
		assert.Nil(t, page.Location)
	})

	t.Run("allowAllUsers lets a user of no organization in", func(t *testing.T) {
		e := newGitHubEnv(t, func(u *registry.UpstreamGitHub) { u.AllowedOrganizations, u.AllowAllUsers = nil, true })
		tok := e.tokens(t, fakegithub.User{ID: 7, Login: "loner"})
		assert.Equal(t, "loner", claimsOf(t, tok["id_token"].(string))["preferred_username"])
	})

	t.Run("a renamed GitHub user keeps their subject", func(t *testing.T) {
		e := newGitHubEnv(t, nil)
		before := claimsOf(t, e.tokens(t, octocat)["id_token"].(string))
		renamed := octocat
		renamed.Login = "octo-renamed"
		after := claimsOf(t, e.tokens(t, renamed)["id_token"].(string))
		assert.Equal(t, before["sub"], after["sub"])
		assert.Equal(t, "octo-renamed", after["preferred_username"])
	})

	t.Run("the login page lists GitHub beside an OIDC provider, by kind", func(t *testing.T) {
		e := newGitHubEnv(t, nil)
		e.env.reg.PutUpstreamOIDC(registry.UpstreamOIDC{Name: "github", UID: "uid-oidc", DisplayName: "Corp SSO", Issuer: "https://sso.example"})
		_, challenge := pkcePair()
		page := harness.NewBrowser(t, e.env.srv.Client(), e.env.srv.URL).Get(e.env.spaRequest(challenge))
		assert.Contains(t, page.Body, `id="idp-github-github"`)
		assert.Contains(t, page.Body, "provider=github&amp;kind=github")
		assert.Contains(t, page.Body, "Sign in with Corp SSO")
		assert.Contains(t, page.Body, "Sign in with GitHub")
	})
}

func TestGitHubRefreshRecheck(t *testing.T) {
	t.Run("refresh asks GitHub once per interval, and fails the family once the user left the organization", func(t *testing.T) {
		e := newGitHubEnv(t, nil)
		tok := e.tokens(t, octocat)
		calls := e.github.UserCalls()
		status, body := e.refresh(t, tok["refresh_token"].(string))
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.Equal(t, calls, e.github.UserCalls(), "within the interval of the login GitHub is not asked")

		e.github.Change(octocat.ID, func(u *fakegithub.User) {
			u.Teams = append(u.Teams, fakegithub.Team{Org: "acme", Slug: "sre", Name: "SRE"})
		})
		e.env.clock.Advance(time.Minute + time.Second)
		status, body = e.refresh(t, body["refresh_token"].(string))
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.Equal(t, calls+1, e.github.UserCalls(), "after the interval, GitHub is asked")
		sub := claimsOf(t, tok["id_token"].(string))["sub"].(string)
		raw, err := e.env.store.GetRecord(t.Context(), "upstream-identity", store.HashOf(sub))
		require.NoError(t, err)
		assert.Contains(t, string(raw), `"groups":["acme/platform","acme/sre"]`, "the re-check keeps the user's teams of now")
		status, body = e.refresh(t, body["refresh_token"].(string))
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.Equal(t, calls+1, e.github.UserCalls(), "and not again within the interval")

		e.github.Change(octocat.ID, func(u *fakegithub.User) { u.Orgs = []string{"other-org"} })
		e.env.clock.Advance(time.Minute + time.Second)
		last := body["refresh_token"].(string)
		status, refused := e.refresh(t, last)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", refused["error"], "%v", refused)

		ui := doT(t, e.env.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer " + body["access_token"].(string)})
		assert.Equal(t, http.StatusUnauthorized, ui.status, "the family is revoked: its access token too")
	})

	t.Run("a revoked GitHub token refuses the user; a GitHub that cannot be reached is temporarily_unavailable, nothing revoked", func(t *testing.T) {
		e := newGitHubEnv(t, nil)
		tok := e.tokens(t, octocat)
		e.env.clock.Advance(time.Minute + time.Second)
		e.github.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusBadGateway) }))
		status, body := e.refresh(t, tok["refresh_token"].(string))
		assert.Equal(t, http.StatusServiceUnavailable, status)
		assert.Equal(t, "temporarily_unavailable", body["error"], "%v", body)

		e.github.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-RateLimit-Remaining", "0")
			http.Error(w, `{"message":"API rate limit exceeded"}`, http.StatusForbidden)
		}))
		status, body = e.refresh(t, tok["refresh_token"].(string))
		assert.Equal(t, http.StatusServiceUnavailable, status, "GitHub's rate limit (a 403) is no refusal")
		assert.Equal(t, "temporarily_unavailable", body["error"], "%v", body)

		e.github.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "{}", http.StatusUnauthorized) }))
		status, body = e.refresh(t, tok["refresh_token"].(string))
		assert.Equal(t, http.StatusBadRequest, status, "the same refresh token: it was not rotated nor revoked before")
		assert.Equal(t, "invalid_grant", body["error"], "%v", body)
	})
}

// TestGitHubRefreshRecheckAcrossReplicasSharingRedis: the last check and the sealed GitHub token
// live in Redis, so a replica that did not sign the user in neither asks GitHub again within
// the interval nor fails to open the token (the replicas share the token key).
func TestGitHubRefreshRecheckAcrossReplicasSharingRedis(t *testing.T) {
	srv := harness.NewRedis(t)
	storeA, _ := redisReplica(t, srv)
	storeB, _ := redisReplica(t, srv)
	sealer, err := upstream.NewSealer([]byte(strings.Repeat("shared-secret-", 4)))
	require.NoError(t, err)
	shared := func(c *Config) { c.Upstream.RecheckInterval, c.Upstream.TokenSealer = 2*time.Second, sealer }
	a := newGitHubEnv(t, nil, withRedis(storeA), shared)
	b := newFlowEnv(t, withRedis(storeB), shared, func(c *Config) { c.Issuer = a.env.srv.URL })
	b.reg.PutUpstreamGitHub(a.provider)

	tok := a.tokens(t, octocat)
	loggedIn := time.Now()
	calls := a.github.UserCalls()
	status, body := b.exchangeForm(t, "grant_type", "refresh_token", "refresh_token", tok["refresh_token"].(string), "client_id", spaClientID)
	require.Equal(t, http.StatusOK, status, "%v", body)
	if time.Since(loggedIn) < 2*time.Second {
		assert.Equal(t, calls, a.github.UserCalls(), "the other replica sees the login's check")
	}

	time.Sleep(time.Until(loggedIn.Add(2*time.Second + 100*time.Millisecond)))
	status, body = b.exchangeForm(t, "grant_type", "refresh_token", "refresh_token", body["refresh_token"].(string), "client_id", spaClientID)
	require.Equal(t, http.StatusOK, status, "the other replica opens the sealed GitHub token: %v", body)
	assert.Equal(t, calls+1, a.github.UserCalls())
	asked := time.Now()
	status, body = a.refresh(t, body["refresh_token"].(string))
	require.Equal(t, http.StatusOK, status, "%v", body)
	if time.Since(asked) < 2*time.Second {
		assert.Equal(t, calls+1, a.github.UserCalls(), "the first replica sees the other's check")
	}
}
