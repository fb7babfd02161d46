package handler

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/upstream"
)

// ldapEnv is a flow environment whose registry serves the LDAP provider "corp" of a slapd with
// the users alice (alice-pw, in the group admins) and bob (bob-pw).
type ldapEnv struct {
	*flowEnv
	slapd    *harness.Slapd
	provider registry.UpstreamLDAP
}

const ldapAlicePassword = "alice-ldap-pw"

func newLDAPEnv(t *testing.T, opts ...envOption) *ldapEnv {
	t.Helper()
	s := harness.NewSlapd(t)
	_, err := s.AddUser("svc", "svc-pw", "svc@example.com", "Service")
	require.NoError(t, err)
	alice, err := s.AddUser("alice", ldapAlicePassword, "alice@corp.example", "Alice Directory")
	require.NoError(t, err)
	_, err = s.AddUser("bob", "bob-pw", "bob@corp.example", "Bob")
	require.NoError(t, err)
	require.NoError(t, s.AddGroup("admins", alice))
	e := &ldapEnv{flowEnv: newFlowEnv(t, opts...), slapd: s}
	e.provider = registry.UpstreamLDAP{
		Name: "corp", UID: "uid-ldap-corp", Generation: 1, DisplayName: "Corp Directory",
		Host: s.Addr(), StartTLS: true, CABundle: s.CABundle(),
		BindDN: "uid=svc,ou=people," + harness.SlapdSuffix, BindPassword: "svc-pw",
		UserBase: "ou=people," + harness.SlapdSuffix, UserFilter: upstream.DefaultLDAPUserFilter,
		UsernameAttribute: "uid", UIDAttribute: "entryUUID", EmailAttribute: "mail", NameAttribute: "cn",
		GroupBase: "ou=groups," + harness.SlapdSuffix, GroupFilter: upstream.DefaultLDAPGroupFilter, GroupNameAttribute: "cn",
	}
	e.reg.PutUpstreamLDAP(e.provider)
	return e
}

// loginWith submits the login page's form with the provider chosen ("": a local User).
func loginWith(t *testing.T, b *harness.Browser, p harness.Page, provider, username, password string) harness.Page {
	t.Helper()
	require.True(t, p.IsLogin(), "a login page: %d %s", p.Status, p.Body)
	form := p.Hidden()
	form.Set("provider", provider)
	form.Set("username", username)
	form.Set("password", password)
	return b.Submit(p, harness.LoginAction, form)
}

func TestLDAPLoginFlow(t *testing.T) {
	e := newLDAPEnv(t, func(c *Config) { c.Login.MaxFailuresPerUser = 3 })

	t.Run("the password form offers the local accounts and the directory", func(t *testing.T) {
		p := e.loginPage(t, e.browser(t))
		assert.Contains(t, p.Body, `<select id="provider" name="provider">`)
		assert.Contains(t, p.Body, `<option value="corp">Corp Directory</option>`)
		assert.Contains(t, p.Body, `Local account`)
	})

	t.Run("a directory user signs in and the client gets tokens with golang.org/x/oauth2 and go-oidc", func(t *testing.T) {
		ctx := e.clientContext(t.Context())
		cfg := e.oauth2Config(spaClientID, "", "openid", "profile", "email")
		verifier := xoauth2.GenerateVerifier()
		b := e.browser(t)
		p := b.Get(cfg.AuthCodeURL("state-1", xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("nonce", "nonce-1")))
		p = loginWith(t, b, p, "corp", "alice", ldapAlicePassword)
		require.True(t, p.IsConsent(), "%d %s", p.Status, p.Body)
		cb := b.Decide(p, "allow").Callback(t)
		require.Empty(t, cb.Error, cb.ErrorDescription)
		tok, err := cfg.Exchange(ctx, cb.Code, xoauth2.VerifierOption(verifier))
		require.NoError(t, err)

		provider, err := oidc.NewProvider(oidc.ClientContext(t.Context(), e.srv.Client()), e.srv.URL)
		require.NoError(t, err)
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: spaClientID, Now: e.clock.Now}).Verify(oidc.ClientContext(t.Context(), e.srv.Client()), rawID)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(idt.Subject, registry.ExternalSubjectPrefix), idt.Subject)
		assert.NotEqual(t, subjectOf(ownerName), idt.Subject, "the directory's alice is not the local alice")
		var claims struct {
			Username string `json:"preferred_username"`
			Email    string `json:"email"`
			Name     string `json:"name"`
		}
		require.NoError(t, idt.Claims(&claims))
		assert.Equal(t, "alice", claims.Username)
		assert.Equal(t, "alice@corp.example", claims.Email)
		assert.Equal(t, "Alice Directory", claims.Name)

		u, ok := e.reg.Snapshot().UserBySubject(idt.Subject)
		require.True(t, ok)
		assert.Equal(t, registry.KindLDAP, u.IdentityProviderKind)
		assert.Equal(t, []string{"admins"}, u.Groups)
	})

	t.Run("a wrong password, an unknown user and injected filters get the same answer", func(t *testing.T) {
		for _, c := range []struct{ user, pw string }{
			{"bob", "wrong"}, {"nobody", "bob-pw"}, {"*", "bob-pw"}, {"*)(uid=*", "bob-pw"}, {"admin)(|(uid=*", "bob-pw"}, {"bob\x00", "bob-pw"},
		} {
			b := e.browser(t)
			p := loginWith(t, b, e.loginPage(t, b), "corp", c.user, c.pw)
			assert.Equal(t, http.StatusBadRequest, p.Status, "%q", c.user)
			assert.Contains(t, p.Body, msgBadCredentials, "%q", c.user)
			assert.Contains(t, p.Body, `<option value="corp" selected>`, "the choice is kept")
		}
	})

	t.Run("failed passwords lock the directory account, not the local user of the same name", func(t *testing.T) {
		b := e.browser(t)
		p := e.loginPage(t, b)
		for range 3 {
			p = loginWith(t, b, p, "corp", "alice", "wrong")
			require.Contains(t, p.Body, msgBadCredentials)
		}
		p = loginWith(t, b, p, "corp", "alice", ldapAlicePassword)
		assert.Equal(t, http.StatusTooManyRequests, p.Status)
		assert.Contains(t, p.Body, msgLocked)
		assert.NotEmpty(t, p.Header.Get("Retry-After"))

		p = loginWith(t, b, e.loginPage(t, b), "", ownerName, ownerPassword)
		assert.True(t, p.IsConsent(), "the local alice still signs in: %d %s", p.Status, p.Body)
	})

	t.Run("a client that does not allow the provider neither offers nor accepts it", func(t *testing.T) {
		c, _ := e.reg.Snapshot().Client(spaClientID)
		only := *c
		only.AllowedIdentityProviders = []string{"other"}
		e.reg.PutClient(only)
		t.Cleanup(func() { e.reg.PutClient(*c) })
		b := e.browser(t)
		p := e.loginPage(t, b)
		assert.NotContains(t, p.Body, "Corp Directory")
		p = loginWith(t, b, p, "corp", "bob", "bob-pw")
		assert.Equal(t, http.StatusBadRequest, p.Status)
		assert.Contains(t, p.Body, msgBadCredentials)
	})

	t.Run("a directory that refuses the service bind is an error page, not a wrong password", func(t *testing.T) {
		broken := e.provider
		broken.BindPassword = "wrong-svc-pw"
		e.reg.PutUpstreamLDAP(broken)
		t.Cleanup(func() { e.reg.PutUpstreamLDAP(e.provider) })
		b := e.browser(t)
		p := loginWith(t, b, e.loginPage(t, b), "corp", "bob", "bob-pw")
		assert.Equal(t, http.StatusBadGateway, p.Status)
		assert.Contains(t, p.Body, "could not be reached")
		assert.NotContains(t, p.Body, "wrong-svc-pw")
	})
}

func TestLDAPOnlyLoginPage(t *testing.T) {
	e := newLDAPEnv(t)
	for _, name := range []string{ownerName, disabledName, noHashName, otherName} {
		e.reg.DeleteUser(name)
	}
	b := e.browser(t)
	p := e.loginPage(t, b)
	assert.NotContains(t, p.Body, "<select", "one choice: no select")
	assert.Equal(t, "corp", p.Hidden().Get("provider"))
	p = b.Login(p, "bob", "bob-pw")
	assert.True(t, p.IsConsent(), "%d %s", p.Status, p.Body)
}

// ldapDisabledFilter is a user filter that leaves out the entries an administrator disabled.
const ldapDisabledFilter = "(&(uid={})(!(employeeType=disabled)))"

// TestLDAPRefreshRecheck: a refresh of a directory user searches the directory at most once per
// re-check interval (on the handler's clock), and fails the family with invalid_grant once the
// user is deleted or the user filter leaves them out; every LDAP connection is counted at a
// proxy in front of slapd.
func TestLDAPRefreshRecheck(t *testing.T) {
	const interval = time.Minute
	e := newLDAPEnv(t, func(c *Config) { c.Upstream.RecheckInterval = interval })
	proxy := harness.NewCutProxy(t, e.slapd.Addr())
	e.provider.Host, e.provider.UserFilter = proxy.Addr(), ldapDisabledFilter
	e.reg.PutUpstreamLDAP(e.provider)
	cfg := e.oauth2Config(spaClientID, "", "openid", "profile")
	ctx := e.clientContext(t.Context())

	signIn := func(t *testing.T, username, password string) *xoauth2.Token {
		t.Helper()
		verifier := xoauth2.GenerateVerifier()
		b := e.browser(t)
		p := b.Get(cfg.AuthCodeURL("state-r", xoauth2.S256ChallengeOption(verifier)))
		p = loginWith(t, b, p, "corp", username, password)
		if p.IsConsent() {
			p = b.Decide(p, "allow")
		}
		cb := p.Callback(t)
		require.NotEmpty(t, cb.Code, "%v %s", cb, p.Body)
		tok, err := cfg.Exchange(ctx, cb.Code, xoauth2.VerifierOption(verifier))
		require.NoError(t, err)
		require.NotEmpty(t, tok.RefreshToken)
		return tok
	}
	refresh := func(tok *xoauth2.Token) (*xoauth2.Token, error) {
		return cfg.TokenSource(ctx, &xoauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	}
	userinfo := func(t *testing.T, tok *xoauth2.Token) int {
		t.Helper()
		return doT(t, e.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer " + tok.AccessToken}).status
	}
	assertRefused := func(t *testing.T, tok *xoauth2.Token) {
		t.Helper()
		_, err := refresh(tok)
		var re *xoauth2.RetrieveError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, http.StatusBadRequest, re.Response.StatusCode)
		assert.Equal(t, "invalid_grant", re.ErrorCode, "%s", re.Body)
		assert.Equal(t, http.StatusUnauthorized, userinfo(t, tok), "the family is revoked: its access token too")
		_, err = refresh(tok)
		assert.ErrorAs(t, err, &re, "and the refresh token stays refused")
	}

	t.Run("refresh searches the directory once per interval and fails the family once the user is deleted", func(t *testing.T) {
		tok := signIn(t, "alice", ldapAlicePassword)
		dials := proxy.Connections()
		tok, err := refresh(tok)
		require.NoError(t, err)
		assert.Equal(t, dials, proxy.Connections(), "within the interval of the login the directory is not asked")

		e.clock.Advance(interval + time.Second)
		tok, err = refresh(tok)
		require.NoError(t, err)
		assert.Equal(t, dials+1, proxy.Connections(), "after the interval, the directory is asked")
		tok, err = refresh(tok)
		require.NoError(t, err)
		assert.Equal(t, dials+1, proxy.Connections(), "and not again within the interval")

		require.NoError(t, e.slapd.Delete("uid=alice,ou=people,"+harness.SlapdSuffix))
		tok, err = refresh(tok)
		require.NoError(t, err, "within the interval the deletion is not seen yet")
		assert.Equal(t, dials+1, proxy.Connections())
		require.Equal(t, http.StatusOK, userinfo(t, tok))

		e.clock.Advance(interval + time.Second)
		assertRefused(t, tok)
		assert.Equal(t, dials+2, proxy.Connections(), "the refusal came from one search and is remembered for the interval: the revoked token presented again asks no more")
	})

	t.Run("a user the filter leaves out (disabled) cannot refresh after the interval", func(t *testing.T) {
		tok := signIn(t, "bob", "bob-pw")
		require.NoError(t, e.slapd.Modify("dn: uid=bob,ou=people,"+harness.SlapdSuffix+"\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n"))
		tok, err := refresh(tok)
		require.NoError(t, err, "within the interval of the login the directory is not asked")
		require.Equal(t, http.StatusOK, userinfo(t, tok))

		e.clock.Advance(interval + time.Second)
		assertRefused(t, tok)

		b := e.browser(t)
		p := loginWith(t, b, e.loginPage(t, b), "corp", "bob", "bob-pw")
		assert.Contains(t, p.Body, msgBadCredentials, "nor sign in again")

		require.NoError(t, e.slapd.Modify("dn: uid=bob,ou=people,"+harness.SlapdSuffix+"\nchangetype: modify\ndelete: employeeType\n"))
		again := signIn(t, "bob", "bob-pw")
		_, err = refresh(again)
		require.NoError(t, err, "enabled again, a new sign-in replaces the remembered refusal")
	})
}
