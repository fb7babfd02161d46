package handler

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/password"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

// The browser flow's test registry.
const (
	appRedirect     = "https://app.example/cb"
	appRedirect2    = "https://app.example/other-cb"
	appLoggedOut    = "https://app.example/logged-out" // the SPA's and first-party's post-logout redirect URI
	spaClientID     = "spa"                            // public, PKCE RequiredS256 (default), consent Remember
	webID           = "web"                            // confidential, PKCE Optional, consent Remember
	webSecret       = "web-secret"
	skipID          = "first-party"    // confidential, consent Skip, a resource server (introspects)
	alwaysID        = "always-ask"     // public, consent Always
	plainID         = "plain-ok"       // public, PKCE Required (plain allowed)
	multiID         = "multi-redirect" // public, two redirect URIs
	queryID         = "query-redirect" // public, redirect URI with a query
	noCodeGrantID   = "no-code-grant"  // public, without authorization_code
	nativeID        = "native"         // public, loopback redirect URI without a port
	nativeRedirect  = "http://127.0.0.1/cb"
	deviceID        = "cli"       // public, device_code and refresh_token
	device2ID       = "other-cli" // public, device_code only
	ownerName       = "alice"
	ownerPassword   = "correct horse battery staple"
	disabledName    = "mallory" // disabled, with a valid password
	noHashName      = "carol"   // no password hash
	otherName       = "bob"     // another user, with alice's password
	readProjectDesc = "List and view projects"
)

// testPasswordHash is alice's (and mallory's) password hash, computed once: argon2id is slow.
var testPasswordHash = sync.OnceValues(func() (string, error) { return password.HashArgon2id(ownerPassword) })

func flowRegistry(t testing.TB) *registry.Registry {
	t.Helper()
	hash, err := testPasswordHash()
	require.NoError(t, err)
	r := registry.New()
	for _, sc := range []registry.Scope{
		{Name: "read:projects", Description: readProjectDesc},
		{Name: "write:projects", Description: "Create and update projects"},
		{Name: "profile", Description: "Your display name"},
	} {
		r.PutScope("scope/"+sc.Name, sc)
	}
	codeGrants := []string{"authorization_code", "refresh_token"}
	scopes := []string{"openid", "profile", "email", "offline_access", "read:projects", "write:projects"}
	public := func(id string, c registry.Client) registry.Client {
		c.Source, c.Namespace, c.ID, c.Type, c.AuthMethod = "web/"+id, "web", id, registry.Public, oauth2.AuthMethodNone
		if c.GrantTypes == nil {
			c.GrantTypes = codeGrants
		}
		if c.RedirectURIs == nil {
			c.RedirectURIs = []string{appRedirect}
		}
		if c.Scopes == nil {
			c.Scopes = scopes
		}
		return c
	}
	for _, c := range []registry.Client{
		public(spaClientID, registry.Client{DisplayName: "Project SPA", PostLogoutRedirectURIs: []string{appLoggedOut, nativeRedirect}}),
		{
			Source: "web/" + webID, Namespace: "web", ID: webID, Type: registry.Confidential, DisplayName: "Project Web",
			AuthMethod: oauth2.AuthMethodPost, GrantTypes: codeGrants, RedirectURIs: []string{appRedirect}, Scopes: scopes,
			SecretHash: registry.HashSecret([]byte(webSecret)), HasSecret: true, PKCE: "Optional",
		},
		{
			Source: "web/" + skipID, Namespace: "web", ID: skipID, Type: registry.Confidential,
			AuthMethod: oauth2.AuthMethodBasic, GrantTypes: codeGrants, RedirectURIs: []string{appRedirect}, Scopes: scopes,
			SecretHash: registry.HashSecret([]byte(webSecret)), HasSecret: true, Consent: "Skip", Introspection: true,
			PostLogoutRedirectURIs: []string{appLoggedOut}, LogoutRevokesRefreshTokens: true,
		},
		public(alwaysID, registry.Client{Consent: "Always"}),
		public(plainID, registry.Client{PKCE: "Required"}),
		public(multiID, registry.Client{RedirectURIs: []string{appRedirect, appRedirect2}}),
		public(queryID, registry.Client{RedirectURIs: []string{appRedirect + "?tenant=a%20b"}}),
		public(noCodeGrantID, registry.Client{GrantTypes: []string{"refresh_token"}}),
		public(nativeID, registry.Client{RedirectURIs: []string{nativeRedirect}}),
		public(deviceID, registry.Client{DisplayName: "Project CLI", GrantTypes: []string{oauth2.GrantDeviceCode, "refresh_token"}, RedirectURIs: []string{}}),
		public(device2ID, registry.Client{GrantTypes: []string{oauth2.GrantDeviceCode}, RedirectURIs: []string{}}),
	} {
		r.PutClient(c)
	}
	r.PutUser(registry.User{Source: ownerName, Subject: subjectOf(ownerName), Username: ownerName, Email: "alice@example.com", EmailVerified: true,
		DisplayName: "Alice Liddell", PasswordHash: []byte(hash)})
	r.PutUser(registry.User{Source: disabledName, Subject: subjectOf(disabledName), Username: disabledName, PasswordHash: []byte(hash), Disabled: true})
	r.PutUser(registry.User{Source: noHashName, Subject: subjectOf(noHashName), Username: noHashName})
	r.PutUser(registry.User{Source: otherName, Subject: subjectOf(otherName), Username: otherName, PasswordHash: []byte(hash)})
	return r
}

// flowEnv is a handler with a memory store and the flow registry, served over HTTP (or HTTPS)
// at its issuer URL.
type flowEnv struct {
	srv   *httptest.Server
	reg   *registry.Registry
	store *memory.Store
	clock *harness.Clock
}

type envOption func(*Config)

func newFlowEnv(t *testing.T, opts ...envOption) *flowEnv {
	return startFlowEnv(t, httptest.NewUnstartedServer(nil), opts...)
}

func newTLSFlowEnv(t *testing.T, opts ...envOption) *flowEnv {
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	return finishFlowEnv(t, srv, opts...)
}

func startFlowEnv(t *testing.T, srv *httptest.Server, opts ...envOption) *flowEnv {
	srv.Start()
	return finishFlowEnv(t, srv, opts...)
}

func finishFlowEnv(t *testing.T, srv *httptest.Server, opts ...envOption) *flowEnv {
	t.Helper()
	t.Cleanup(srv.Close)
	kr, err := testKeyring()
	require.NoError(t, err)
	clock := harness.NewClock(time.Now())
	st := memory.New(memory.WithClock(clock.Now))
	env := &flowEnv{srv: srv, reg: flowRegistry(t), store: st, clock: clock}
	cfg := Config{
		Issuer: srv.URL, Registry: env.reg, Keys: kr, Now: clock.Now, Store: st,
		Login: LoginConfig{FailureDelay: -1},
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := New(cfg)
	require.NoError(t, err)
	srv.Config.Handler = h
	return env
}

// browser is a browser of the flow's server: it follows redirects within the server and stops
// at a redirect elsewhere (the client's redirect URI).
func (env *flowEnv) browser(t *testing.T) *harness.Browser {
	return harness.NewBrowser(t, env.srv.Client(), env.srv.URL)
}

// authorizeURL builds an authorization request URL from key/value pairs.
func (env *flowEnv) authorizeURL(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return env.srv.URL + oauth2.AuthorizePath + "?" + v.Encode()
}

// pkcePair returns a verifier and its S256 challenge.
func pkcePair() (verifier, challenge string) {
	verifier = xoauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// spaRequest is a valid authorization request of the SPA with extra key/value pairs.
func (env *flowEnv) spaRequest(challenge string, kv ...string) string {
	base := []string{"response_type", "code", "client_id", spaClientID, "redirect_uri", appRedirect,
		"scope", "openid profile read:projects", "state", "st-123", "nonce", "n-456",
		"code_challenge", challenge, "code_challenge_method", "S256"}
	return env.authorizeURL(append(base, kv...)...)
}

// signIn runs a full flow for the SPA up to the code and returns it with its verifier.
func (env *flowEnv) signIn(t *testing.T, b *harness.Browser, kv ...string) (code, verifier string) {
	t.Helper()
	verifier, challenge := pkcePair()
	p := b.Get(env.spaRequest(challenge, kv...))
	if p.IsLogin() {
		p = b.Login(p, ownerName, ownerPassword)
	}
	if p.IsConsent() {
		p = b.Decide(p, "allow")
	}
	cb := p.Callback(t)
	require.Empty(t, cb.Error, cb.ErrorDescription)
	require.NotEmpty(t, cb.Code)
	return cb.Code, verifier
}

// tokenPost posts a token request and decodes the JSON answer.
func (env *flowEnv) tokenPost(t *testing.T, contentType, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.srv.URL+oauth2.TokenPath, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := env.srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return res.StatusCode, out
}

// exchangeForm exchanges a code with form parameters.
func (env *flowEnv) exchangeForm(t *testing.T, kv ...string) (int, map[string]any) {
	t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return env.tokenPost(t, formType, v.Encode())
}

// oauth2Config is the x/oauth2 configuration of a client of the flow registry.
func (env *flowEnv) oauth2Config(id, secret string, scopes ...string) *xoauth2.Config {
	return &xoauth2.Config{
		ClientID: id, ClientSecret: secret, RedirectURL: appRedirect, Scopes: scopes,
		Endpoint: xoauth2.Endpoint{
			AuthURL: env.srv.URL + oauth2.AuthorizePath, TokenURL: env.srv.URL + oauth2.TokenPath,
			AuthStyle: xoauth2.AuthStyleInParams,
		},
	}
}

func (env *flowEnv) clientContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, xoauth2.HTTPClient, env.srv.Client())
}

// assertPageHeaders checks the security headers of an HTML page.
func assertPageHeaders(t *testing.T, h http.Header) {
	t.Helper()
	assert.Equal(t, "text/html; charset=utf-8", h.Get("Content-Type"))
	assert.Contains(t, h.Get("Content-Security-Policy"), "default-src 'none'; style-src 'self'; form-action 'self'")
	assert.Contains(t, h.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	assert.Equal(t, "DENY", h.Get("X-Frame-Options"))
	assert.Equal(t, "no-store", h.Get("Cache-Control"))
	assert.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
}
