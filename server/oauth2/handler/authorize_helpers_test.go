package handler

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/password"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

// The browser flow's test registry.
const (
	appRedirect     = "https://app.example/cb"
	appRedirect2    = "https://app.example/other-cb"
	spaClientID     = "spa" // public, PKCE RequiredS256 (default), consent Remember
	webID           = "web" // confidential, PKCE Optional, consent Remember
	webSecret       = "web-secret"
	skipID          = "first-party"    // confidential, consent Skip
	alwaysID        = "always-ask"     // public, consent Always
	plainID         = "plain-ok"       // public, PKCE Required (plain allowed)
	multiID         = "multi-redirect" // public, two redirect URIs
	queryID         = "query-redirect" // public, redirect URI with a query
	noCodeGrantID   = "no-code-grant"  // public, without authorization_code
	ownerName       = "alice"
	ownerPassword   = "correct horse battery staple"
	disabledName    = "mallory" // disabled, with a valid password
	noHashName      = "carol"   // no password hash
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
		public(spaClientID, registry.Client{DisplayName: "Project SPA"}),
		{
			Source: "web/" + webID, Namespace: "web", ID: webID, Type: registry.Confidential, DisplayName: "Project Web",
			AuthMethod: oauth2.AuthMethodPost, GrantTypes: codeGrants, RedirectURIs: []string{appRedirect}, Scopes: scopes,
			SecretHash: registry.HashSecret([]byte(webSecret)), HasSecret: true, PKCE: "Optional",
		},
		{
			Source: "web/" + skipID, Namespace: "web", ID: skipID, Type: registry.Confidential,
			AuthMethod: oauth2.AuthMethodBasic, GrantTypes: codeGrants, RedirectURIs: []string{appRedirect}, Scopes: scopes,
			SecretHash: registry.HashSecret([]byte(webSecret)), HasSecret: true, Consent: "Skip",
		},
		public(alwaysID, registry.Client{Consent: "Always"}),
		public(plainID, registry.Client{PKCE: "Required"}),
		public(multiID, registry.Client{RedirectURIs: []string{appRedirect, appRedirect2}}),
		public(queryID, registry.Client{RedirectURIs: []string{appRedirect + "?tenant=a%20b"}}),
		public(noCodeGrantID, registry.Client{GrantTypes: []string{"refresh_token"}}),
	} {
		r.PutClient(c)
	}
	r.PutUser(registry.User{Source: ownerName, Subject: subjectOf(ownerName), Username: ownerName, Email: "alice@example.com", EmailVerified: true,
		DisplayName: "Alice Liddell", PasswordHash: []byte(hash)})
	r.PutUser(registry.User{Source: disabledName, Subject: subjectOf(disabledName), Username: disabledName, PasswordHash: []byte(hash), Disabled: true})
	r.PutUser(registry.User{Source: noHashName, Subject: subjectOf(noHashName), Username: noHashName})
	return r
}

// fakeClock is a settable clock shared by the handler and the store.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// flowEnv is a handler with a memory store and the flow registry, served over HTTP (or HTTPS)
// at its issuer URL.
type flowEnv struct {
	srv   *httptest.Server
	reg   *registry.Registry
	store *memory.Store
	clock *fakeClock
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
	clock := newFakeClock()
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

// browser is an HTTP client with a cookie jar that follows redirects within the server and
// stops at a redirect elsewhere (the client's redirect URI).
type webBrowser struct {
	t      *testing.T
	env    *flowEnv
	client *http.Client
}

func (env *flowEnv) browser(t *testing.T) *webBrowser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	base := env.srv.Client()
	c := &http.Client{
		Transport: base.Transport, Jar: jar,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host != strings.TrimPrefix(strings.TrimPrefix(env.srv.URL, "https://"), "http://") {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return &webBrowser{t: t, env: env, client: c}
}

// page is an answer the browser got.
type page struct {
	status   int
	header   http.Header
	body     string
	url      *url.URL // the URL of the final request
	location *url.URL // the redirect to the client, if the flow left the server
}

func (b *webBrowser) do(req *http.Request) page {
	b.t.Helper()
	res, err := b.client.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	p := page{status: res.StatusCode, header: res.Header, body: string(raw), url: res.Request.URL}
	if loc := res.Header.Get("Location"); loc != "" && res.StatusCode/100 == 3 {
		u, err := res.Request.URL.Parse(loc)
		require.NoError(b.t, err)
		p.location = u
	}
	return p
}

func (b *webBrowser) get(rawURL string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

func (b *webBrowser) post(rawURL string, form url.Values, headers ...string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", formType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// hidden returns the hidden fields of the page's form.
func (p page) hidden() url.Values {
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

func (p page) isLogin() bool   { return strings.Contains(p.body, `action="../oauth2/login"`) }
func (p page) isConsent() bool { return strings.Contains(p.body, `action="../oauth2/consent"`) }

// login submits the login form of the page.
func (b *webBrowser) login(p page, username, pw string) page {
	b.t.Helper()
	require.True(b.t, p.isLogin(), "a login page: %d %s", p.status, p.body)
	form := p.hidden()
	form.Set("username", username)
	form.Set("password", pw)
	return b.post(b.env.srv.URL+oauth2.LoginPath, form)
}

// decide submits the consent form of the page.
func (b *webBrowser) decide(p page, decision string) page {
	b.t.Helper()
	require.True(b.t, p.isConsent(), "a consent page: %d %s", p.status, p.body)
	form := p.hidden()
	form.Set("decision", decision)
	return b.post(b.env.srv.URL+oauth2.ConsentPath, form)
}

// callback is the authorization response the client got.
type callback struct {
	code, state, iss, err, errDescription string
	query                                 url.Values
}

func (p page) callback(t *testing.T) callback {
	t.Helper()
	require.NotNil(t, p.location, "a redirect to the client: %d %s", p.status, p.body)
	q := p.location.Query()
	return callback{code: q.Get("code"), state: q.Get("state"), iss: q.Get("iss"), err: q.Get("error"),
		errDescription: q.Get("error_description"), query: q}
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
func (env *flowEnv) signIn(t *testing.T, b *webBrowser, kv ...string) (code, verifier string) {
	t.Helper()
	verifier, challenge := pkcePair()
	p := b.get(env.spaRequest(challenge, kv...))
	if p.isLogin() {
		p = b.login(p, ownerName, ownerPassword)
	}
	if p.isConsent() {
		p = b.decide(p, "allow")
	}
	cb := p.callback(t)
	require.Empty(t, cb.err, cb.errDescription)
	require.NotEmpty(t, cb.code)
	return cb.code, verifier
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
