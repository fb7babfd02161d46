package handler

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/registry"
)

// The ProtectedResources of the RFC 8707 tests: projects owns the project scopes and allows
// multiAPI; reports owns no scope and allows multiAPI; billing allows another client only.
const (
	projectsAPI = "https://projects.api.example/"
	reportsAPI  = "https://reports.api.example/"
	billingAPI  = "https://billing.api.example/"
)

// newProtectedResourceEnv is newResourceEnv with the ProtectedResources projectsAPI,
// reportsAPI and billingAPI.
func newProtectedResourceEnv(t *testing.T) *userEnv {
	e := newResourceEnv(t)
	t0 := time.Unix(1_700_000_000, 0)
	e.reg.Update(func(tx *registry.Txn) {
		tx.PutProtectedResource(registry.ProtectedResource{Source: "apis/projects", Namespace: "apis", Name: "projects",
			Created: t0, Audience: projectsAPI, Scopes: []string{projectScope, "write:projects"},
			AllowedClients: []string{"apps/" + multiAPI}})
		tx.PutProtectedResource(registry.ProtectedResource{Source: "apis/reports", Namespace: "apis", Name: "reports",
			Created: t0, Audience: reportsAPI, AllowedClients: []string{"apps/" + multiAPI}})
		tx.PutProtectedResource(registry.ProtectedResource{Source: "apis/billing", Namespace: "apis", Name: "billing",
			Created: t0, Audience: billingAPI, Scopes: []string{"billing:read"}, AllowedClients: []string{"apps/" + appID}})
	})
	return e
}

// scopeOf is the scope claim of the access token of a successful response.
func (e *userEnv) scopeOf(t *testing.T, res response) any {
	t.Helper()
	require.Equal(t, http.StatusOK, res.status, "%v", res.body)
	_, claims := e.verifyJWT(t, str(res.body["access_token"]))
	return claims["scope"]
}

func TestProtectedResourcesAsResourceIndicators(t *testing.T) {
	e := newProtectedResourceEnv(t)
	cc := func(scope string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	}
	t.Run("a protected resource that allows the client becomes the audience", func(t *testing.T) {
		assert.Equal(t, []string{projectsAPI}, e.audienceOf(t, e.tokenWith(t, cc(projectScope), projectsAPI)))
	})
	t.Run("a protected resource and the client's own audience are both audiences", func(t *testing.T) {
		assert.Equal(t, []string{apiA, reportsAPI}, e.audienceOf(t, e.tokenWith(t, cc(projectScope), apiA, reportsAPI)))
	})
	t.Run("a protected resource that does not allow the client is invalid_target", func(t *testing.T) {
		res := e.tokenWith(t, cc(projectScope), billingAPI)
		assert.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "invalid_target", res.body["error"], "%v", res.body)
	})
	t.Run("without resource the token does not carry protected resources", func(t *testing.T) {
		assert.Equal(t, []string{apiA, apiB}, e.audienceOf(t, e.tokenWith(t, cc(projectScope))))
	})
	t.Run("the password grant refuses a protected resource that does not allow the client", func(t *testing.T) {
		res := e.tokenWith(t, url.Values{"grant_type": {"password"}, "username": {aliceName}, "password": {alicePassword},
			"scope": {"openid " + projectScope}}, billingAPI)
		assert.Equal(t, "invalid_target", res.body["error"], "%v", res.body)
	})
	t.Run("beside a resource that owns no scope every scope stays", func(t *testing.T) {
		res := e.tokenWith(t, cc(projectScope), projectsAPI, reportsAPI)
		assert.Equal(t, projectScope, e.scopeOf(t, res))
	})
}

func TestProtectedResourceScopeOwnership(t *testing.T) {
	e := newProtectedResourceEnv(t)
	// multiAPI may have openid and read:projects; a resource that owns only another scope
	// leaves it openid.
	e.reg.Update(func(tx *registry.Txn) {
		tx.PutProtectedResource(registry.ProtectedResource{Source: "apis/audit", Namespace: "apis", Name: "audit",
			Created: time.Unix(1_700_000_000, 0), Audience: "https://audit.api.example/", Scopes: []string{"audit:read"},
			AllowedClients: []string{"apps/" + multiAPI}})
	})
	pw := url.Values{"grant_type": {"password"}, "username": {aliceName}, "password": {alicePassword},
		"scope": {"openid " + projectScope}}
	res := e.tokenWith(t, pw, "https://audit.api.example/")
	assert.Equal(t, "openid", e.scopeOf(t, res), "read:projects belongs to another resource")
	assert.Equal(t, "openid", res.body["scope"], "the response names the narrowed scope")
	assert.NotEmpty(t, res.body["id_token"], "openid is kept")

	t.Run("a refresh narrowed to a resource narrows the scopes, the family keeps them", func(t *testing.T) {
		res := e.tokenWith(t, url.Values{"grant_type": {"password"}, "username": {aliceName}, "password": {alicePassword},
			"scope": {"openid " + projectScope}}, projectsAPI, "https://audit.api.example/")
		assert.Equal(t, "openid "+projectScope, e.scopeOf(t, res))
		rt := str(res.body["refresh_token"])
		res = e.tokenWith(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "https://audit.api.example/")
		assert.Equal(t, "openid", e.scopeOf(t, res))
		assert.Equal(t, []string{"https://audit.api.example/"}, e.audienceOf(t, res))
		res = e.tokenWith(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(res.body["refresh_token"])}})
		assert.Equal(t, "openid "+projectScope, e.scopeOf(t, res), "the family's scopes are whole again")
	})
	t.Run("a refresh after the resource stopped allowing the client is invalid_target", func(t *testing.T) {
		res := e.tokenWith(t, pw, projectsAPI)
		rt := str(res.body["refresh_token"])
		require.NotEmpty(t, rt, "%v", res.body)
		p, ok := e.reg.Snapshot().ProtectedResourceBySource("apis/projects")
		require.True(t, ok)
		changed := *p
		changed.AllowedClients = nil
		e.reg.PutProtectedResource(changed)
		t.Cleanup(func() { e.reg.PutProtectedResource(*p) })
		res = e.tokenWith(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		assert.Equal(t, "invalid_target", res.body["error"], "%v", res.body)
	})
}

func TestProtectedResourcesInTheCodeFlow(t *testing.T) {
	env := newFlowEnv(t)
	c, ok := env.reg.Snapshot().Client(spaClientID)
	require.True(t, ok)
	env.reg.PutProtectedResource(registry.ProtectedResource{Source: "apis/projects", Namespace: "apis", Name: "projects",
		Created: time.Unix(1_700_000_000, 0), Audience: projectsAPI, Scopes: []string{"write:projects"},
		AllowedClients: []string{c.Source}})

	t.Run("an authorization request for a protected resource that does not allow the client is invalid_target", func(t *testing.T) {
		_, challenge := pkcePair()
		cb := env.browser(t).Get(env.spaRequest(challenge, "resource", billingAPI)).Callback(t)
		assert.Equal(t, "invalid_target", cb.Error)
	})
	t.Run("the code's token carries the protected resource and only the OIDC and owned scopes", func(t *testing.T) {
		code, verifier := env.signIn(t, env.browser(t), "resource", projectsAPI)
		status, body := env.exchangeForm(t, "grant_type", "authorization_code", "code", code,
			"client_id", spaClientID, "redirect_uri", appRedirect, "code_verifier", verifier)
		require.Equal(t, http.StatusOK, status, "%v", body)
		claims := signedClaims(t, str(body["access_token"]))
		assert.Equal(t, projectsAPI, claims["aud"])
		assert.Equal(t, "openid profile", claims["scope"], "read:projects is owned by no requested resource")
		assert.Equal(t, "openid profile", body["scope"])
	})
}

func TestProtectedResourceMetadata(t *testing.T) {
	e := newProtectedResourceEnv(t)
	p, ok := e.reg.Snapshot().ProtectedResourceBySource("apis/projects")
	require.True(t, ok)
	withMeta := *p
	withMeta.Metadata = registry.ResourceMetadata{Name: "Projects API", Documentation: "https://docs.example/projects",
		BearerMethods: []string{"header", "body"}}
	e.reg.Update(func(tx *registry.Txn) {
		tx.PutProtectedResource(registry.ProtectedResource{Source: "apis/projects-late", Namespace: "apis", Name: "projects-late",
			Created: time.Unix(1_800_000_000, 0), Audience: projectsAPI})
		tx.PutProtectedResource(withMeta)
	})
	get := func(path string) response {
		return doT(t, e.srv, request{method: http.MethodGet, path: path})
	}
	t.Run("a resource's metadata names it, this server, its scopes and bearer methods", func(t *testing.T) {
		res := get("/.well-known/oauth-protected-resource/apis/projects")
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		assert.Equal(t, projectsAPI, res.body["resource"])
		assert.Equal(t, []any{testIssuer}, res.body["authorization_servers"])
		assert.Equal(t, []any{projectScope, "write:projects"}, res.body["scopes_supported"])
		assert.Equal(t, []any{"header", "body"}, res.body["bearer_methods_supported"])
		assert.Equal(t, "Projects API", res.body["resource_name"])
		assert.Equal(t, "https://docs.example/projects", res.body["resource_documentation"])
		assert.NotEmpty(t, res.body["dpop_signing_alg_values_supported"])
		assert.Equal(t, "public, max-age=300", res.header.Get("Cache-Control"))
		assert.Equal(t, "*", doT(t, e.srv, request{method: http.MethodGet, path: "/.well-known/oauth-protected-resource/apis/projects",
			header: http.Header{"Origin": {"https://any.example"}}}).header.Get("Access-Control-Allow-Origin"))
	})
	t.Run("a resource without declared bearer methods says header", func(t *testing.T) {
		res := get("/.well-known/oauth-protected-resource/apis/reports")
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		assert.Equal(t, []any{"header"}, res.body["bearer_methods_supported"])
		assert.NotContains(t, res.body, "scopes_supported")
	})
	for _, tt := range []struct{ name, path string }{
		{"an unknown resource is 404 JSON", "/.well-known/oauth-protected-resource/apis/nothing"},
		{"a resource that lost its audience to an earlier one is 404", "/.well-known/oauth-protected-resource/apis/projects-late"},
		{"a path without a name is 404", "/.well-known/oauth-protected-resource/apis"},
		{"a longer path is 404", "/.well-known/oauth-protected-resource/apis/projects/x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := get(tt.path)
			assert.Equal(t, http.StatusNotFound, res.status)
			assert.Equal(t, "invalid_request", res.body["error"])
		})
	}
	t.Run("a POST is 405", func(t *testing.T) {
		res := doT(t, e.srv, request{path: "/.well-known/oauth-protected-resource/apis/projects"})
		assert.Equal(t, http.StatusMethodNotAllowed, res.status)
	})
}
