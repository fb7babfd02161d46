package handler

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

const (
	upstreamIDPClient = "downstream-idp"
	upstreamIDPSecret = "upstream-secret-0123456789abcdef"
)

// upstreamPair is two latchkey handlers: up, the upstream provider (its users and a
// confidential client for down), and down, whose UpstreamOIDC "corp" points at up.
type upstreamPair struct {
	up, down *flowEnv
	provider registry.UpstreamOIDC
}

func newUpstreamPair(t *testing.T, secret string, change func(u *registry.UpstreamOIDC), downOpts ...envOption) upstreamPair {
	t.Helper()
	p := upstreamPair{up: newFlowEnv(t), down: newFlowEnv(t, downOpts...)}
	p.up.reg.PutClient(registry.Client{
		Source: "idp/" + upstreamIDPClient, Namespace: "idp", ID: upstreamIDPClient, Type: registry.Confidential,
		AuthMethod: oauth2.AuthMethodBasic, GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{p.down.srv.URL + oauth2.UpstreamCallbackPath}, Scopes: []string{"openid", "email", "profile"},
		SecretHash: registry.HashSecret([]byte(upstreamIDPSecret)), HasSecret: true,
	})
	u := registry.UpstreamOIDC{
		Name: "corp", UID: "uid-corp", Generation: 1, DisplayName: "Corp SSO", Issuer: p.up.srv.URL,
		ClientID: upstreamIDPClient, ClientSecret: secret, Scopes: []string{"openid", "email", "profile"},
	}
	if change != nil {
		change(&u)
	}
	p.down.reg.PutUpstreamOIDC(u)
	p.provider = u
	return p
}

// withoutUsers removes the downstream's local users: its login page then goes straight to the
// one provider.
func (p upstreamPair) withoutUsers() upstreamPair {
	for _, name := range []string{ownerName, disabledName, noHashName, otherName} {
		p.down.reg.DeleteUser(name)
	}
	return p
}

func (p upstreamPair) browser(t *testing.T) *harness.Browser {
	return harness.NewBrowser(t, p.down.srv.Client(), p.down.srv.URL, p.up.srv.URL)
}

// stopAtCallback signs the upstream's user in with a new browser that stops before the
// downstream's callback; it returns the browser and the callback URL.
func (p upstreamPair) stopAtCallback(t *testing.T) (*harness.Browser, url.URL) {
	t.Helper()
	b := p.browser(t)
	follow := b.Client.CheckRedirect
	b.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == oauth2.UpstreamCallbackPath {
			return http.ErrUseLastResponse
		}
		return follow(req, via)
	}
	_, challenge := pkcePair()
	page := b.Decide(b.Login(b.Get(p.down.spaRequest(challenge)), ownerName, ownerPassword), "allow")
	require.NotNil(t, page.Location, "%d %s", page.Status, page.Body)
	b.Client.CheckRedirect = follow
	return b, *page.Location
}

// signIn signs the upstream's user in with a new browser, through whichever login and consent
// pages come, and returns the downstream's code and its verifier.
func (p upstreamPair) signIn(t *testing.T) (code, verifier string) {
	t.Helper()
	b := p.browser(t)
	verifier, challenge := pkcePair()
	page := b.Get(p.down.spaRequest(challenge))
	for range 4 {
		switch {
		case page.IsLogin():
			page = b.Login(page, ownerName, ownerPassword)
		case page.IsConsent():
			page = b.Decide(page, "allow")
		}
	}
	cb := page.Callback(t)
	require.NotEmpty(t, cb.Code, "%v", cb)
	return cb.Code, verifier
}

func TestUpstreamLoginPage(t *testing.T) {
	t.Run("the login page lists the providers the client allows and the password form while users exist", func(t *testing.T) {
		p := newUpstreamPair(t, upstreamIDPSecret, nil)
		p.down.reg.PutUpstreamOIDC(registry.UpstreamOIDC{Name: "other", UID: "uid-other", DisplayName: "Other IdP", Issuer: "https://other.example"})
		_, challenge := pkcePair()
		page := p.browser(t).Get(p.down.spaRequest(challenge))
		require.True(t, page.IsLogin(), page.Body)
		assert.Contains(t, page.Body, "Sign in with Corp SSO")
		assert.Contains(t, page.Body, "Sign in with Other IdP")
		assert.Contains(t, page.Body, `id="password"`)

		c, _ := p.down.reg.Snapshot().Client(spaClientID)
		only := *c
		only.AllowedIdentityProviders = []string{"corp"}
		p.down.reg.PutClient(only)
		page = p.browser(t).Get(p.down.spaRequest(challenge))
		assert.Contains(t, page.Body, "Sign in with Corp SSO")
		assert.NotContains(t, page.Body, "Other IdP", "a provider the client does not allow is not offered")

		q := page.Hidden()
		start := p.browser(t)
		resp := start.Get(p.down.srv.URL + oauth2.UpstreamStartPath + "?" + url.Values{"request_id": {q.Get("request_id")}, "provider": {"other"}}.Encode())
		assert.Equal(t, http.StatusForbidden, resp.Status, "another browser cannot use the request: %s", resp.Body)
	})

	t.Run("a provider the client does not allow cannot be started", func(t *testing.T) {
		p := newUpstreamPair(t, upstreamIDPSecret, nil)
		p.down.reg.PutUpstreamOIDC(registry.UpstreamOIDC{Name: "other", UID: "uid-other", DisplayName: "Other IdP", Issuer: "https://other.example"})
		c, _ := p.down.reg.Snapshot().Client(spaClientID)
		only := *c
		only.AllowedIdentityProviders = []string{"corp"}
		p.down.reg.PutClient(only)
		b := p.browser(t)
		_, challenge := pkcePair()
		page := b.Get(p.down.spaRequest(challenge))
		resp := b.Get(p.down.srv.URL + oauth2.UpstreamStartPath + "?" + url.Values{"request_id": {page.Hidden().Get("request_id")}, "provider": {"other"}}.Encode())
		assert.Equal(t, http.StatusBadRequest, resp.Status)
		assert.Contains(t, resp.Body, "not available for this application")
	})
}

func TestUpstreamLoginFlow(t *testing.T) {
	t.Run("with one provider and no users the login goes straight upstream, and back with a code", func(t *testing.T) {
		p := newUpstreamPair(t, upstreamIDPSecret, nil).withoutUsers()
		b := p.browser(t)
		verifier, challenge := pkcePair()
		page := b.Get(p.down.spaRequest(challenge))
		require.True(t, strings.HasPrefix(page.URL.String(), p.up.srv.URL), "at the upstream: %s", page.URL)
		page = b.Login(page, ownerName, ownerPassword)
		page = b.Decide(page, "allow")
		require.True(t, strings.HasPrefix(page.URL.String(), p.down.srv.URL), "back downstream: %s", page.URL)
		page = b.Decide(page, "allow")
		cb := page.Callback(t)
		require.Empty(t, cb.Error, cb.ErrorDescription)
		status, body := p.down.exchangeForm(t, "grant_type", "authorization_code", "code", cb.Code, "client_id", spaClientID,
			"redirect_uri", appRedirect, "code_verifier", verifier)
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.NotEmpty(t, body["id_token"])
	})

	t.Run("deleting the provider, re-creating it (a new UID) or a client no longer allowing it cuts its users off", func(t *testing.T) {
		p := newUpstreamPair(t, upstreamIDPSecret, nil).withoutUsers()
		for _, change := range []func(){
			func() { p.down.reg.DeleteUpstreamOIDC("corp") },
			func() {
				recreated := p.provider
				recreated.UID = "uid-corp-recreated"
				p.down.reg.PutUpstreamOIDC(recreated)
			},
			func() { // last: the client no longer allows the provider
				c, _ := p.down.reg.Snapshot().Client(spaClientID)
				only := *c
				only.AllowedIdentityProviders = []string{"other"}
				p.down.reg.PutClient(only)
			},
		} {
			p.down.reg.PutUpstreamOIDC(p.provider)
			code, verifier := p.signIn(t)
			change()
			status, body := p.down.exchangeForm(t, "grant_type", "authorization_code", "code", code, "client_id", spaClientID,
				"redirect_uri", appRedirect, "code_verifier", verifier)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", body["error"], "%v", body)
			assert.Contains(t, body["error_description"], "can no longer sign in")
		}
	})

	t.Run("a user who denies access upstream gets a page naming the upstream's error", func(t *testing.T) {
		p := newUpstreamPair(t, upstreamIDPSecret, nil).withoutUsers()
		b := p.browser(t)
		_, challenge := pkcePair()
		page := b.Login(b.Get(p.down.spaRequest(challenge)), ownerName, ownerPassword)
		page = b.Decide(page, "deny")
		assert.Equal(t, http.StatusBadRequest, page.Status)
		assert.Contains(t, page.Body, "did not sign you in (access_denied)")
		assert.Nil(t, page.Location, "never a redirect to the client")
	})

	t.Run("an upstream that refuses our client secret is a clear page, not a dump", func(t *testing.T) {
		p := newUpstreamPair(t, "wrong-secret", nil).withoutUsers()
		b := p.browser(t)
		_, challenge := pkcePair()
		page := b.Decide(b.Login(b.Get(p.down.spaRequest(challenge)), ownerName, ownerPassword), "allow")
		assert.Equal(t, http.StatusBadGateway, page.Status)
		assert.Contains(t, page.Body, "could not authenticate itself to the identity provider")
		assert.NotContains(t, page.Body, "invalid_client")
	})

	t.Run("a claim rule that refuses the user is a 403 page", func(t *testing.T) {
		p := newUpstreamPair(t, upstreamIDPSecret, func(u *registry.UpstreamOIDC) {
			u.ClaimRules = []registry.ClaimRule{{Expression: "claims.email.endsWith('@corp.example')", Message: "corp accounts only"}}
		}).withoutUsers()
		b := p.browser(t)
		_, challenge := pkcePair()
		page := b.Decide(b.Login(b.Get(p.down.spaRequest(challenge)), ownerName, ownerPassword), "allow")
		assert.Equal(t, http.StatusForbidden, page.Status)
		assert.Contains(t, page.Body, "not allowed to sign in here")
	})

	t.Run("another browser cannot use a leaked callback URL, nor burn it for the user", func(t *testing.T) {
		p := newUpstreamPair(t, upstreamIDPSecret, nil).withoutUsers()
		b, callback := p.stopAtCallback(t)
		got := p.browser(t).Get(callback.String())
		assert.Equal(t, http.StatusBadRequest, got.Status)
		got = b.Get(callback.String())
		require.True(t, got.IsConsent(), "the user's own browser goes on to the consent page: %d %s", got.Status, got.Body)
	})

	t.Run("a response naming another issuer (a mix-up) is refused, and its state is used up", func(t *testing.T) {
		p := newUpstreamPair(t, upstreamIDPSecret, nil).withoutUsers()
		b, callback := p.stopAtCallback(t)
		q := callback.Query()
		require.Equal(t, p.up.srv.URL, q.Get("iss"), "the upstream names itself (RFC 9207)")
		q.Set("iss", "https://evil.example")
		callback.RawQuery = q.Encode()
		got := b.Get(callback.String())
		assert.Equal(t, http.StatusBadRequest, got.Status)
		assert.Nil(t, got.Location)
		q.Set("iss", p.up.srv.URL)
		callback.RawQuery = q.Encode()
		got = b.Get(callback.String())
		assert.Equal(t, http.StatusBadRequest, got.Status, "the state was taken by the refused response")
	})

	t.Run("a callback without a valid state is refused", func(t *testing.T) {
		p := newUpstreamPair(t, upstreamIDPSecret, nil)
		for _, q := range []string{"", "?state=x", "?state=" + strings.Repeat("A", 43), "?state=a&state=b", "?error=access_denied"} {
			page := p.browser(t).Get(p.down.srv.URL + oauth2.UpstreamCallbackPath + q)
			assert.Equal(t, http.StatusBadRequest, page.Status, q)
			assert.Contains(t, page.Header.Get("Content-Type"), "text/html", q)
		}
	})
}

// TestUpstreamLoginAcrossReplicasSharingRedis signs in through the upstream at one downstream
// replica and redeems the code at another: the upstream user's identity lives in Redis, so any
// replica issues their tokens and answers userinfo.
func TestUpstreamLoginAcrossReplicasSharingRedis(t *testing.T) {
	srv := harness.NewRedis(t)
	storeA, _ := redisReplica(t, srv)
	storeB, _ := redisReplica(t, srv)
	p := newUpstreamPair(t, upstreamIDPSecret, nil, withRedis(storeA)).withoutUsers()
	b := newFlowEnv(t, withRedis(storeB), func(c *Config) { c.Issuer = p.down.srv.URL })
	b.reg.PutUpstreamOIDC(p.provider)

	browser := p.browser(t)
	verifier, challenge := pkcePair()
	page := browser.Decide(browser.Login(browser.Get(p.down.spaRequest(challenge)), ownerName, ownerPassword), "allow")
	cb := browser.Decide(page, "allow").Callback(t) // the upstream's consent, then the downstream's
	require.Empty(t, cb.Error, cb.ErrorDescription)
	status, tok := b.exchangeForm(t, "grant_type", "authorization_code", "code", cb.Code, "client_id", spaClientID,
		"redirect_uri", appRedirect, "code_verifier", verifier)
	require.Equal(t, http.StatusOK, status, "the other replica redeems the code: %v", tok)
	idt := claimsOf(t, tok["id_token"].(string))
	assert.True(t, strings.HasPrefix(idt["sub"].(string), registry.ExternalSubjectPrefix), "%v", idt["sub"])
	assert.Equal(t, "alice@example.com", idt["preferred_username"], "the default username mapping: email")
	assert.Equal(t, "Alice Liddell", idt["name"])

	ui := doT(t, b.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer " + tok["access_token"].(string)})
	require.Equal(t, http.StatusOK, ui.status, "%v", ui.body)
	assert.Equal(t, "Alice Liddell", ui.body["name"], "profile is granted: the mapped name")
	assert.Equal(t, idt["sub"], ui.body["sub"])
}

func TestUpstreamRefreshRecheckWithUserinfo(t *testing.T) {
	t.Run("without an upstream refresh token the upstream's userinfo is asked, and a user deleted there cannot refresh", func(t *testing.T) {
		p := newUpstreamPair(t, upstreamIDPSecret, nil, func(c *Config) { c.Upstream.RecheckInterval = time.Minute }).withoutUsers()
		code, verifier := p.signIn(t)
		status, tok := p.down.exchangeForm(t, "grant_type", "authorization_code", "code", code, "client_id", spaClientID,
			"redirect_uri", appRedirect, "code_verifier", verifier)
		require.Equal(t, http.StatusOK, status, "%v", tok)

		p.down.clock.Advance(time.Minute + time.Second)
		status, tok = p.down.exchangeForm(t, "grant_type", "refresh_token", "refresh_token", tok["refresh_token"].(string), "client_id", spaClientID)
		require.Equal(t, http.StatusOK, status, "the upstream's userinfo still knows the user: %v", tok)

		p.up.reg.DeleteUser(ownerName)
		p.down.clock.Advance(time.Minute + time.Second)
		status, body := p.down.exchangeForm(t, "grant_type", "refresh_token", "refresh_token", tok["refresh_token"].(string), "client_id", spaClientID)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", body["error"], "%v", body)
		ui := doT(t, p.down.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer " + tok["access_token"].(string)})
		assert.Equal(t, http.StatusUnauthorized, ui.status, "the family is revoked")
	})
}
