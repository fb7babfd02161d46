package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// The sample resources of config/samples the flows use.
const (
	samplesNamespace = "default"
	demoRedirect     = "http://localhost:3000/callback"
	serviceID        = "demo-service"
	serviceSecret    = "demo-service-secret"
	spaID            = "demo-spa"
	webappID         = "demo-webapp"
	webappSecret     = "demo-webapp-secret"
	alice            = "alice"
	alicePassword    = "alice-password"
	aliceEmail       = "alice@example.com"
	// refreshReuseGrace is the server's --refresh-reuse-grace default: a rotated refresh token
	// presented again within it is refused without revoking its family.
	refreshReuseGrace = 2 * time.Second
)

// clientAuth is how a sample client authenticates at the token, revocation and introspection
// endpoints: client_secret_basic with a secret, else client_id in the body (public client).
type clientAuth struct{ id, secret string }

func (c clientAuth) public() bool { return c.secret == "" }

func (c clientAuth) apply(req *http.Request, form url.Values) {
	if c.public() {
		form.Set("client_id", c.id)
		return
	}
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
}

// apiResponse is the answer of a JSON endpoint.
type apiResponse struct {
	status int
	header http.Header
	body   map[string]any
}

func (r apiResponse) String() string { return fmt.Sprintf("%d %v", r.status, r.body) }

// postForm posts a form to an endpoint of the server as the client, the way curl -u ... -d
// does. It returns an error instead of failing the test, so that it may run in Eventually.
func (s *suite) postForm(ctx context.Context, path string, auth clientAuth, form url.Values) (apiResponse, error) {
	form = cloneValues(form)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.issuer+path, nil)
	if err != nil {
		return apiResponse{}, err
	}
	auth.apply(req, form)
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return apiResponse{}, err
	}
	defer resp.Body.Close() //nolint:errcheck // test
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, err
	}
	out := apiResponse{status: resp.StatusCode, header: resp.Header}
	if len(raw) == 0 {
		return out, nil
	}
	if ct := strings.Split(resp.Header.Get("Content-Type"), ";")[0]; ct != "application/json" {
		return out, fmt.Errorf("%s answered %d with %q: %s", path, resp.StatusCode, ct, raw)
	}
	if err := json.Unmarshal(raw, &out.body); err != nil {
		return out, fmt.Errorf("%s answered %d with %s: %w", path, resp.StatusCode, raw, err)
	}
	return out, nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// passwordGrant asks for tokens with the password grant as demo-webapp.
func (s *suite) passwordGrant(ctx context.Context, username, pw string) (apiResponse, error) {
	return s.postForm(ctx, "/oauth2/token", clientAuth{webappID, webappSecret}, url.Values{
		"grant_type": {"password"}, "username": {username}, "password": {pw}, "scope": {"openid profile email"},
	})
}

// introspect asks whether a token is active, as the resource server demo-service (the
// samples declare it one: introspection: true).
func (s *suite) introspect(t *testing.T, tok string) map[string]any {
	t.Helper()
	res, err := s.postForm(t.Context(), "/oauth2/introspect", clientAuth{serviceID, serviceSecret}, url.Values{"token": {tok}})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.status, "introspection: %s", res)
	require.Contains(t, res.body, "active", "introspection: %s", res)
	return res.body
}

// revoke revokes a token as its client (RFC 7009).
func (s *suite) revoke(t *testing.T, auth clientAuth, tok, hint string) {
	t.Helper()
	res, err := s.postForm(t.Context(), "/oauth2/revoke", auth, url.Values{"token": {tok}, "token_type_hint": {hint}})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.status, "revocation: %s", res)
	assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
}

// userinfo calls the UserInfo endpoint with the access token.
func (s *suite) userinfo(t *testing.T, accessToken string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.issuer+"/oauth2/userinfo", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	out := map[string]any{}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// applySamples applies config/samples with kubectl and waits until the server serves the demo
// clients and alice, so that each test of this file may also run alone.
func (s *suite) applySamples(t *testing.T) {
	t.Helper()
	s.cp.MustKubectl(t, nil, "apply", "-f", filepath.Join(s.root, "config", "samples"))
	for _, name := range []string{serviceID, spaID, webappID} {
		s.waitReady(t, samplesNamespace, name)
	}
	s.cp.MustKubectl(t, nil, "wait", "--for=condition=Ready", "--timeout=30s", "user/"+alice)
	// Ready is the leader's status; the registry of the server is fed by its own informers.
	// A successful login resets alice's failed-login counter, so polling it is harmless.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second) // also run in Cleanup
	defer cancel()
	var last apiResponse
	var err error
	if !assert.Eventually(t, func() bool {
		last, err = s.passwordGrant(ctx, alice, alicePassword)
		return err == nil && last.status == http.StatusOK
	}, 10*time.Second, 200*time.Millisecond) {
		t.Fatalf("alice cannot sign in to demo-webapp: %v %v", last, err)
	}
}

// subjectOf is the sub of a User's tokens: its metadata.uid, never its username.
func (s *suite) subjectOf(t *testing.T, user string) string {
	t.Helper()
	uid := strings.TrimSpace(s.cp.MustKubectl(t, nil, "get", "user", user, "-o", "jsonpath={.metadata.uid}"))
	require.NotEmpty(t, uid)
	return uid
}

// newBrowser returns a browser of the server, which sends the issuer as its Origin.
func (s *suite) newBrowser(t *testing.T) *harness.Browser {
	t.Helper()
	b := harness.NewBrowser(t, nil, s.issuer)
	b.Origin = s.issuer
	return b
}

// hasCookie reports whether the browser's jar holds a cookie of the server with that name.
func (s *suite) hasCookie(t *testing.T, b *harness.Browser, name string) bool {
	t.Helper()
	issuer, err := url.Parse(s.issuer)
	require.NoError(t, err)
	for _, c := range b.Client.Jar.Cookies(issuer) {
		if c.Name == name && c.Value != "" {
			return true
		}
	}
	return false
}

// callback checks that the page is the redirect to demo's redirect URI and returns its query.
func (s *suite) callback(t *testing.T, p harness.Page, state string) url.Values {
	t.Helper()
	cb := p.Callback(t)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, demoRedirect, cb.URI)
	require.Empty(t, cb.Error, "error_description: %s", cb.ErrorDescription)
	assert.Equal(t, state, cb.State)
	assert.Equal(t, s.issuer, cb.Iss, "RFC 9207 iss")
	require.NotEmpty(t, cb.Code)
	return cb.Query
}

// requireInvalidGrant checks that a refresh with x/oauth2 failed with invalid_grant.
func requireInvalidGrant(t *testing.T, err error) {
	t.Helper()
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusBadRequest, re.Response.StatusCode)
	assert.Equal(t, "invalid_grant", re.ErrorCode, "body: %s", re.Body)
}

func TestAuthorizationCodeWithPKCEForTheDemoClients(t *testing.T) {
	s := env
	s.applySamples(t)
	provider, err := oidc.NewProvider(t.Context(), s.issuer)
	require.NoError(t, err, "OIDC discovery at the issuer")
	require.Equal(t, s.issuer+"/oauth2/authorize", provider.Endpoint().AuthURL)
	require.Equal(t, s.issuer+"/oauth2/token", provider.Endpoint().TokenURL)

	tests := []struct {
		name        string
		auth        clientAuth
		style       oauth2.AuthStyle
		displayName string
	}{
		{"alice signs in to the public demo-spa, whose tokens refresh, rotate and revoke", clientAuth{id: spaID}, oauth2.AuthStyleInParams, "Demo single-page app"},
		{"alice signs in to the confidential demo-webapp, whose tokens refresh, rotate and revoke", clientAuth{webappID, webappSecret}, oauth2.AuthStyleInHeader, "Demo web application"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // the two overlap their wait for the refresh reuse grace
			s.codeFlow(t, provider, tt.auth, tt.style, tt.displayName)
		})
	}
}

func (s *suite) codeFlow(t *testing.T, provider *oidc.Provider, auth clientAuth, style oauth2.AuthStyle, displayName string) {
	ctx := t.Context()
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = style
	conf := &oauth2.Config{
		ClientID: auth.id, ClientSecret: auth.secret, Endpoint: endpoint, RedirectURL: demoRedirect,
		Scopes: []string{oidc.ScopeOpenID, "profile", "email", "read:projects"},
	}
	idVerifier := provider.Verifier(&oidc.Config{ClientID: auth.id})
	b := s.newBrowser(t)

	// The first sign-in: login page (a wrong password first), consent page, redirect. The
	// consent of an earlier run may be remembered: prompt=consent asks again.
	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	p := b.Get(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("prompt", "consent")))
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.True(t, p.IsLogin(), "the authorization request shows the login page: %s", p.Body)
	assert.Contains(t, p.Body, displayName, "the login page names the OAuthClient's displayName")
	assert.True(t, s.hasCookie(t, b, "latchkey-csrf"), "the browser got the binding cookie")

	p = b.Login(p, alice, "not-"+alicePassword)
	assert.Equal(t, http.StatusBadRequest, p.Status)
	assert.Contains(t, p.Body, "Incorrect username or password.")
	assert.Nil(t, p.Location, "a failed login never reaches the client")

	p = b.Login(p, alice, alicePassword)
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.True(t, p.IsConsent(), "after the login comes the consent page: %s", p.Body)
	assert.Contains(t, p.Body, "List and view projects", "the consent page shows the Scope resource's description")
	assert.Contains(t, p.Body, "Access to user email address", "the email Scope resource's description, not the built-in one")
	q := s.callback(t, b.Decide(p, "allow"), state)

	// The code is exchanged with the PKCE verifier.
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	assert.Equal(t, "Bearer", tok.Type())
	require.NotEmpty(t, tok.RefreshToken, "the demo clients have the refresh_token grant")
	assert.WithinDuration(t, time.Now().Add(time.Hour), tok.Expiry, time.Minute, "access tokens last 1 h")

	rawID, ok := tok.Extra("id_token").(string)
	require.True(t, ok, "an ID token for the openid scope")
	idt, err := idVerifier.Verify(ctx, rawID)
	require.NoError(t, err)
	assert.Equal(t, nonce, idt.Nonce)
	aliceSub := s.subjectOf(t, alice)
	assert.Equal(t, aliceSub, idt.Subject)
	assert.Equal(t, []string{auth.id}, idt.Audience)
	require.NotEmpty(t, idt.AccessTokenHash)
	require.NoError(t, idt.VerifyAccessToken(tok.AccessToken), "at_hash")
	var idClaims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		Name          string `json:"name"`
	}
	require.NoError(t, idt.Claims(&idClaims))
	assert.Equal(t, aliceEmail, idClaims.Email)
	assert.True(t, idClaims.EmailVerified)
	assert.Equal(t, "Alice Example", idClaims.Name)
	_, err = provider.Verifier(&oidc.Config{ClientID: serviceID}).Verify(ctx, rawID)
	require.Error(t, err, "the ID token is for its client only")

	claims := s.verify(t, tok.AccessToken)
	assert.Equal(t, aliceSub, claims["sub"])
	assert.Equal(t, auth.id, claims["client_id"])
	assert.ElementsMatch(t, []string{"openid", "profile", "email", "read:projects"}, strings.Fields(claims["scope"].(string)))

	status, info := s.userinfo(t, tok.AccessToken)
	require.Equal(t, http.StatusOK, status, "userinfo: %v", info)
	assert.Equal(t, aliceSub, info["sub"])
	assert.Equal(t, alice, info["preferred_username"])
	assert.Equal(t, aliceEmail, info["email"])

	in := s.introspect(t, tok.AccessToken)
	assert.Equal(t, true, in["active"], "introspection: %v", in)
	assert.Equal(t, aliceSub, in["sub"])
	assert.Equal(t, alice, in["username"])
	assert.Equal(t, auth.id, in["client_id"])
	assert.Equal(t, s.issuer, in["iss"])

	// Refresh through x/oauth2's TokenSource: the refresh token rotates.
	tok2, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	require.NoError(t, err)
	rotated := time.Now()
	require.NotEmpty(t, tok2.RefreshToken)
	require.NotEqual(t, tok.RefreshToken, tok2.RefreshToken, "a new refresh token on every refresh")
	require.NotEqual(t, tok.AccessToken, tok2.AccessToken)
	assert.Equal(t, aliceSub, s.verify(t, tok2.AccessToken)["sub"])
	assert.Equal(t, true, s.introspect(t, tok2.AccessToken)["active"])

	// Once the reuse grace has passed, the old refresh token is reuse: refused, and its whole
	// family is revoked, the new refresh token and the access tokens too.
	time.Sleep(time.Until(rotated.Add(refreshReuseGrace + 300*time.Millisecond)))
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	requireInvalidGrant(t, err)
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
	requireInvalidGrant(t, err)
	assert.Equal(t, false, s.introspect(t, tok2.AccessToken)["active"], "access tokens of a revoked family are inactive")
	assert.Equal(t, false, s.introspect(t, tok.AccessToken)["active"])
	status, _ = s.userinfo(t, tok2.AccessToken)
	assert.Equal(t, http.StatusUnauthorized, status)

	// A second sign-in in the same browser needs no page: session and remembered consent.
	verifier, state, nonce = oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	p = b.Get(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
	q = s.callback(t, p, state)
	tok3, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	idt, err = idVerifier.Verify(ctx, tok3.Extra("id_token").(string))
	require.NoError(t, err)
	assert.Equal(t, nonce, idt.Nonce)
	assert.Equal(t, true, s.introspect(t, tok3.AccessToken)["active"], "a new grant is not revoked with the old one")
	if !auth.public() {
		res, err := s.postForm(t.Context(), "/oauth2/introspect", auth, url.Values{"token": {tok3.RefreshToken}})
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, res.status, "a client that is not a declared resource server may not introspect: %s", res)
		assert.Equal(t, false, s.introspect(t, tok3.RefreshToken)["active"], "another client's refresh token")
	}

	// RFC 7009: revoking the refresh token revokes the grant, access token included.
	s.revoke(t, auth, tok3.RefreshToken, "refresh_token")
	assert.Equal(t, false, s.introspect(t, tok3.AccessToken)["active"])
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok3.RefreshToken}).Token()
	requireInvalidGrant(t, err)
	status, _ = s.userinfo(t, tok3.AccessToken)
	assert.Equal(t, http.StatusUnauthorized, status)

	// A code is used once; presenting it again revokes what its first exchange issued.
	verifier, state = oauth2.GenerateVerifier(), rand.Text()
	q = s.callback(t, b.Get(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))), state)
	tok4, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	assert.Equal(t, true, s.introspect(t, tok4.AccessToken)["active"])
	_, err = conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	requireInvalidGrant(t, err)
	assert.Equal(t, false, s.introspect(t, tok4.AccessToken)["active"], "the replayed code's grant is revoked")
}

func TestPasswordGrantForDemoWebapp(t *testing.T) {
	s := env
	s.applySamples(t)
	ctx := t.Context()

	t.Run("a wrong password is invalid_grant", func(t *testing.T) {
		res, err := s.passwordGrant(ctx, alice, "wrong-password")
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "invalid_grant", res.body["error"])
		assert.NotContains(t, res.body, "access_token")
		unknown, err := s.passwordGrant(ctx, "nobody-"+rand.Text(), "wrong-password")
		require.NoError(t, err)
		assert.Equal(t, res.body, unknown.body, "an unknown user gets the same answer")
	})

	t.Run("a client without the password grant is refused", func(t *testing.T) {
		res, err := s.postForm(ctx, "/oauth2/token", clientAuth{id: spaID}, url.Values{
			"grant_type": {"password"}, "username": {alice}, "password": {alicePassword},
		})
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "unauthorized_client", res.body["error"], "%s", res)
	})

	t.Run("a wrong client secret is invalid_client", func(t *testing.T) {
		res, err := s.postForm(ctx, "/oauth2/token", clientAuth{webappID, "not-" + webappSecret}, url.Values{
			"grant_type": {"password"}, "username": {alice}, "password": {alicePassword},
		})
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, res.status)
		assert.Equal(t, "invalid_client", res.body["error"])
		assert.Contains(t, res.header.Get("WWW-Authenticate"), "Basic")
	})

	t.Run("alice's password gets tokens for her", func(t *testing.T) {
		res, err := s.passwordGrant(ctx, alice, alicePassword)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.status, "%s", res)
		assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
		assert.Equal(t, "Bearer", res.body["token_type"])
		assert.InDelta(t, 3600, res.body["expires_in"], 5)
		assert.NotEmpty(t, res.body["refresh_token"])
		claims := s.verify(t, res.body["access_token"].(string))
		aliceSub := s.subjectOf(t, alice)
		assert.Equal(t, aliceSub, claims["sub"])
		assert.Equal(t, webappID, claims["client_id"])
		assert.Equal(t, "openid profile email", claims["scope"])

		provider, err := oidc.NewProvider(ctx, s.issuer)
		require.NoError(t, err)
		idt, err := provider.Verifier(&oidc.Config{ClientID: webappID}).Verify(ctx, res.body["id_token"].(string))
		require.NoError(t, err)
		assert.Equal(t, aliceSub, idt.Subject)
		status, info := s.userinfo(t, res.body["access_token"].(string))
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, aliceEmail, info["email"])
	})
}

func TestUserChangedWithKubectlTakesEffect(t *testing.T) {
	s := env
	s.applySamples(t)
	ctx := t.Context()
	secretPath := []string{"-n", samplesNamespace, "secret", "alice-password"}
	original := s.cp.MustKubectl(t, nil, append([]string{"get"}, append(secretPath, "-o", "jsonpath={.data.hash}")...)...)
	require.NotEmpty(t, original)
	t.Cleanup(func() {
		// Restore the samples' alice for the other tests: kubectl apply would not undo the
		// patch (the Secret's last-applied configuration did not change), so patch it back.
		s.cp.MustKubectl(t, nil, append([]string{"patch"}, append(secretPath, "--type=merge", "-p", `{"data":{"hash":"`+original+`"}}`)...)...)
		s.applySamples(t)
	})

	before, err := s.passwordGrant(ctx, alice, alicePassword)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, before.status, "%s", before)
	accessToken := before.body["access_token"].(string)

	newPassword := "new-" + rand.Text()
	hash, err := bcrypt.GenerateFromPassword([]byte(newPassword), bcrypt.DefaultCost)
	require.NoError(t, err)
	patched := time.Now()
	s.cp.MustKubectl(t, nil, append([]string{"patch"}, append(secretPath, "--type=merge", "-p",
		`{"data":{"hash":"`+base64.StdEncoding.EncodeToString(hash)+`"}}`)...)...)

	// Poll with the new password: a success resets the failed-login counter, so the polls
	// cannot lock alice out.
	var last apiResponse
	if !assert.Eventually(t, func() bool {
		last, err = s.passwordGrant(ctx, alice, newPassword)
		return err == nil && last.status == http.StatusOK
	}, 10*time.Second, 250*time.Millisecond) {
		t.Fatalf("the new password never worked: %v %v", last, err)
	}
	t.Logf("new password accepted %s after kubectl patch", time.Since(patched).Round(time.Millisecond))
	old, err := s.passwordGrant(ctx, alice, alicePassword)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, old.status)
	assert.Equal(t, "invalid_grant", old.body["error"], "the old password no longer works")
	assert.Equal(t, true, s.introspect(t, accessToken)["active"], "a password change alone does not revoke tokens")

	deleted := time.Now()
	s.cp.MustKubectl(t, nil, "delete", "user", alice, "--wait=true")
	require.Eventually(t, func() bool {
		res, err := s.postForm(ctx, "/oauth2/introspect", clientAuth{serviceID, serviceSecret}, url.Values{"token": {accessToken}})
		return err == nil && res.status == http.StatusOK && res.body["active"] == false
	}, 10*time.Second, 100*time.Millisecond, "alice's tokens stay active after kubectl delete user")
	t.Logf("alice's token inactive %s after kubectl delete", time.Since(deleted).Round(time.Millisecond))

	res, err := s.passwordGrant(ctx, alice, newPassword)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, res.status)
	assert.Equal(t, "invalid_grant", res.body["error"], "a deleted user cannot get tokens")

	b := s.newBrowser(t)
	conf := &oauth2.Config{ClientID: spaID, RedirectURL: demoRedirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"}}
	p := b.Get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oidc.Nonce("n")))
	p = b.Login(p, alice, newPassword)
	assert.Equal(t, http.StatusBadRequest, p.Status)
	assert.Contains(t, p.Body, "Incorrect username or password.", "a deleted user cannot sign in")
	assert.Nil(t, p.Location)
}

// registration is the RFC 7591 client information response.
type registration struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	GrantTypes              []string `json:"grant_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ClientName              string   `json:"client_name"`
	Scope                   string   `json:"scope"`
}

// registrationCall sends a request to the registration endpoints with a bearer token.
func (s *suite) registrationCall(t *testing.T, method, rawURL, bearer, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, raw
}

func TestDynamicRegistrationCreatesAnOAuthClient(t *testing.T) {
	s := env
	s.applySamples(t) // the read:projects Scope
	const metadata = `{"client_name":"E2E registered reporter","grant_types":["client_credentials"],` +
		`"token_endpoint_auth_method":"client_secret_basic","scope":"read:projects"}`

	t.Run("registration needs the initial access token", func(t *testing.T) {
		resp, raw := s.registrationCall(t, http.MethodPost, s.issuer+"/oauth2/register", "", metadata)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", raw)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
		resp, raw = s.registrationCall(t, http.MethodPost, s.issuer+"/oauth2/register", "not-"+s.regToken, metadata)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", raw)
		assert.Contains(t, string(raw), "invalid_token")
	})
	t.Run("the token's policy in the token file bounds scopes and grant types", func(t *testing.T) {
		for body, refused := range map[string]string{
			`{"grant_types":["client_credentials"],"scope":"read:projects write:projects"}`:                `\"write:projects\"`,
			`{"grant_types":["authorization_code"],"redirect_uris":["https://app.example/cb"]}`:            `\"authorization_code\"`,
			`{"grant_types":["client_credentials"],"redirect_uris":["myapp:/cb"],"scope":"read:projects"}`: "reverse-domain",
		} {
			resp, raw := s.registrationCall(t, http.MethodPost, s.issuer+"/oauth2/register", s.regToken, body)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", raw)
			assert.Contains(t, string(raw), refused)
		}
	})

	resp, raw := s.registrationCall(t, http.MethodPost, s.issuer+"/oauth2/register", s.regToken, metadata)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", raw)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var reg registration
	require.NoError(t, json.Unmarshal(raw, &reg))
	require.NotEmpty(t, reg.ClientID)
	require.NotEmpty(t, reg.ClientSecret)
	require.NotEmpty(t, reg.RegistrationAccessToken)
	assert.Equal(t, s.issuer+"/oauth2/register/"+reg.ClientID, reg.RegistrationClientURI)
	assert.Equal(t, []string{"client_credentials"}, reg.GrantTypes)
	assert.Equal(t, "read:projects", reg.Scope)

	// The registration is an OAuthClient resource that kubectl shows.
	out := s.cp.MustKubectl(t, nil, "get", "oauthclients", "-n", s.regNamespace, "-l", "oauth.latchkey.dev/registered=true", "-o", "json")
	var list struct {
		Items []struct {
			Metadata struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				ClientID    string   `json:"clientID"`
				DisplayName string   `json:"displayName"`
				GrantTypes  []string `json:"grantTypes"`
				Scopes      []string `json:"scopes"`
			} `json:"spec"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	found := false
	for _, it := range list.Items {
		if it.Spec.ClientID != reg.ClientID {
			continue
		}
		found = true
		assert.Equal(t, "true", it.Metadata.Labels["oauth.latchkey.dev/registered"])
		assert.Equal(t, "initial-token", it.Metadata.Labels["oauth.latchkey.dev/registrant"])
		assert.Equal(t, "E2E registered reporter", it.Spec.DisplayName)
		assert.Equal(t, []string{"client_credentials"}, it.Spec.GrantTypes)
		assert.Equal(t, []string{"read:projects"}, it.Spec.Scopes)
	}
	require.True(t, found, "kubectl get oauthclients -n %s shows client %s: %s", s.regNamespace, reg.ClientID, out)
	s.waitReady(t, s.regNamespace, reg.ClientID)
	id, secret := s.credentials(t, s.regNamespace, reg.ClientID)
	assert.Equal(t, reg.ClientID, id, "the status names the registered client ID")
	assert.Equal(t, reg.ClientSecret, secret, "the client's Secret holds the secret registration returned")

	// Its name, written another way, is taken now (the registry's name index finds it).
	taken := `{"client_name":"  e2e REGISTERED   reporter","grant_types":["client_credentials"],"scope":"read:projects"}`
	resp, raw = s.registrationCall(t, http.MethodPost, s.issuer+"/oauth2/register", s.regToken, taken)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", raw)
	assert.Contains(t, string(raw), "invalid_client_metadata")

	// The returned secret works with client_credentials.
	cc := clientcredentials.Config{ClientID: reg.ClientID, ClientSecret: reg.ClientSecret, TokenURL: s.issuer + "/oauth2/token", Scopes: []string{"read:projects"}}
	var tok *oauth2.Token
	require.Eventually(t, func() bool {
		var err error
		tok, err = cc.Token(t.Context())
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "the registered client never got a token")
	claims := s.verify(t, tok.AccessToken)
	assert.Equal(t, reg.ClientID, claims["client_id"])
	assert.Equal(t, "read:projects", claims["scope"])

	// RFC 7592: read, then delete through the registration client URI.
	resp, raw = s.registrationCall(t, http.MethodGet, reg.RegistrationClientURI, reg.RegistrationAccessToken, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
	resp, raw = s.registrationCall(t, http.MethodDelete, reg.RegistrationClientURI, s.regToken, "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the initial access token does not manage clients: %s", raw)
	resp, raw = s.registrationCall(t, http.MethodDelete, reg.RegistrationClientURI, reg.RegistrationAccessToken, "")
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "%s", raw)

	require.Eventually(t, func() bool {
		out, err := s.cp.Kubectl(nil, "get", "oauthclient", "-n", s.regNamespace, reg.ClientID)
		return err != nil && strings.Contains(out, "NotFound")
	}, 10*time.Second, 100*time.Millisecond, "the OAuthClient is still there")
	var last error
	if !assert.Eventually(t, func() bool {
		_, last = cc.Token(t.Context())
		var re *oauth2.RetrieveError
		return errors.As(last, &re) && re.ErrorCode == "invalid_client"
	}, 10*time.Second, 100*time.Millisecond) {
		t.Fatalf("the deleted client still gets tokens or another error: %v", last)
	}
	resp, raw = s.registrationCall(t, http.MethodGet, reg.RegistrationClientURI, reg.RegistrationAccessToken, "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a deleted client is not found: %s", raw)
}
