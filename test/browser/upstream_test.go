package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/password"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// The upstream latchkey's client for the downstream, and its users.
const (
	upstreamClientID     = "downstream-idp"
	upstreamClientSecret = "upstream-client-secret-0123456789"
	upstreamProviderUID  = "3d0c8a8e-upstream-corp"
	staffUser            = "uma"
	outsider             = "rob"
)

// upstreamManifests are the upstream latchkey's resources: uma (staff, dev) and rob
// (contractors), both with userPassword, and a groups Scope. Its client for the downstream is
// written later (upstreamClientManifest), once the downstream's URL is known.
func upstreamManifests(hash string) string { return upstreamManifestsWithout(hash, "") }

// upstreamManifestsWithout are upstreamManifests without the User named deleted.
func upstreamManifestsWithout(hash, deleted string) string {
	user := func(name, email, display string, groups ...string) string {
		if name == deleted {
			return ""
		}
		return fmt.Sprintf(`apiVersion: oauth.latchkey.dev/v1alpha1
kind: User
metadata: {name: %[1]s}
spec:
  username: %[1]s
  email: %[2]s
  emailVerified: true
  displayName: %[3]s
  groups: ["%[4]s"]
  passwordSecretRef: {namespace: default, name: user-passwords, key: hash}
---
`, name, email, display, strings.Join(groups, `", "`))
	}
	return user(staffUser, "uma@corp.example", "Uma Upstream", "staff", "dev") +
		user(outsider, "rob@corp.example", "Rob Outsider", "contractors") + groupsScope + `apiVersion: v1
kind: Secret
metadata: {name: user-passwords, namespace: default}
stringData:
  hash: "` + hash + `"
`
}

// groupsScope releases the groups claim.
const groupsScope = `apiVersion: oauth.latchkey.dev/v1alpha1
kind: Scope
metadata: {name: groups}
spec: {name: groups, description: "Your groups", claims: [groups]}
---
`

// upstreamClientManifest is the upstream's confidential client for the downstream: its
// redirect URI is the downstream's upstream callback.
func upstreamClientManifest(downstream string) string {
	return `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: downstream, namespace: default}
spec:
  clientID: ` + upstreamClientID + `
  type: Confidential
  displayName: Downstream Latchkey
  grantTypes: [authorization_code, refresh_token]
  redirectURIs: ["` + downstream + oauth2.UpstreamCallbackPath + `"]
  scopes: [openid, email, profile, groups]
  tokenEndpointAuthMethod: client_secret_basic
  secretPolicy: External
  secretRef: {name: downstream-secret, key: client-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: downstream-secret, namespace: default}
stringData:
  client-secret: "` + upstreamClientSecret + `"
`
}

// downstreamManifests are the downstream latchkey's resources: the public client of the test,
// no User (so its login page goes straight to the one provider), and the OIDCIdentityProvider
// of the upstream over loopback http, with mapped claims and an allow policy.
func downstreamManifests(upstream, redirectURI string) string {
	return groupsScope + `apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: tracker, namespace: web}
spec:
  clientID: ` + clientID + `
  type: Public
  displayName: Project Tracker
  grantTypes: [authorization_code, refresh_token]
  redirectURIs: ["` + redirectURI + `"]
  scopes: [openid, email, profile, groups]
  tokenEndpointAuthMethod: none
  allowedIdentityProviders: [corp]
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OIDCIdentityProvider
metadata: {name: corp, uid: ` + upstreamProviderUID + `}
spec:
  issuer: ` + upstream + `
  displayName: Corp SSO
  client:
    clientID: ` + upstreamClientID + `
    secretRef: {namespace: latchkey, name: corp-sso}
  scopes: [openid, email, profile, groups]
  claims:
    username: claims.preferred_username
    groups: "claims.groups.map(g, 'corp:' + g)"
  allowPolicy: "'corp:staff' in user.groups"
---
apiVersion: v1
kind: Secret
metadata: {name: corp-sso, namespace: latchkey}
stringData:
  client-secret: "` + upstreamClientSecret + `"
`
}

// recheckInterval is the downstream's --upstream-recheck-interval.
const recheckInterval = 5 * time.Second

// upstreamSide is the upstream latchkey of newUpstreamEnv: its process and manifests folder.
type upstreamSide struct {
	srv *harness.Server
	dir string
	// hash is the users' password hash, to write the manifests again.
	hash string
}

// refreshes counts the refresh_token grants the upstream issued (its metrics).
func (u *upstreamSide) refreshes(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://" + u.srv.Metrics + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	n := 0
	for line := range strings.Lines(string(raw)) {
		if strings.HasPrefix(line, "latchkey_tokens_issued_total{") && strings.Contains(line, `grant_type="refresh_token"`) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			require.NoError(t, err)
			n += int(v)
		}
	}
	return n
}

// newUpstreamEnv starts chromium, the client's callback and two latchkey binaries in embedded
// mode: the upstream, then the downstream with an OIDCIdentityProvider of the upstream
// (re-checking its users every recheckInterval); then it adds the upstream's client for the
// downstream (the upstream reloads its folder) and waits until the upstream knows it.
func newUpstreamEnv(t *testing.T) (*env, *upstreamSide) {
	t.Helper()
	return newUpstreamEnvWith(t, upstreamAuth{
		client: upstreamClientManifest,
		form:   func() url.Values { return url.Values{"grant_type": {"client_credentials"}} },
		basic:  true,
	})
}

// upstreamAuth is how the downstream authenticates at the upstream: the upstream's extra
// manifests and its client for the downstream, the downstream's provider manifests changed, and
// a token request's form that authenticates as that client (with the secret in Basic).
type upstreamAuth struct {
	upstreamExtra string
	client        func(downstream string) string
	downstream    func(manifests string) string
	form          func() url.Values
	basic         bool
}

func newUpstreamEnvWith(t *testing.T, auth upstreamAuth) (*env, *upstreamSide) {
	t.Helper()
	e := newClientEnv(t)
	dir := t.TempDir()
	binary, err := harness.BuildBinary(dir)
	require.NoError(t, err)
	start := func(name, manifests string, extra ...string) *harness.Server {
		srv, err := harness.StartServer(t.Context(), binary, filepath.Join(dir, name+".log"), 60*time.Second,
			func(harness.ServeAddrs) []string {
				return append([]string{"serve", "--manifests", manifests}, extra...)
			})
		require.NoError(t, err)
		t.Cleanup(func() {
			srv.Stop(10 * time.Second)
			if t.Failed() {
				t.Logf("%s latchkey log (tail):\n%s", name, srv.Tail(8192))
			}
		})
		return srv
	}
	folder := func(name, content string) string {
		d := filepath.Join(dir, name)
		require.NoError(t, os.Mkdir(d, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(d, name+".yaml"), []byte(content), 0o600))
		return d
	}
	hash, err := password.HashArgon2id(userPassword)
	require.NoError(t, err)
	upDir := folder("upstream", upstreamManifests(hash)+auth.upstreamExtra)
	up := start("upstream", upDir)
	redirectURI := e.callback.URL + "/callback"
	downManifests := downstreamManifests(up.URL(), redirectURI)
	if auth.downstream != nil {
		downManifests = auth.downstream(downManifests)
	}
	down := start("downstream", folder("downstream", downManifests), "--upstream-recheck-interval="+recheckInterval.String())
	require.NoError(t, os.WriteFile(filepath.Join(upDir, "client.yaml"), []byte(auth.client(down.URL())), 0o600))
	// The client is known once a token request with its credentials is no longer invalid_client.
	require.Eventually(t, func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, up.URL()+oauth2.TokenPath,
			strings.NewReader(auth.form().Encode()))
		if err != nil {
			return false
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth.basic {
			req.SetBasicAuth(upstreamClientID, upstreamClientSecret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		// invalid_client is a 401 with Basic, a 400 otherwise (RFC 6749 5.2).
		return resp.StatusCode != http.StatusUnauthorized && body.Error != "invalid_client"
	}, stepTimeout, 100*time.Millisecond, "the upstream loads the downstream's client")

	e.issuer, e.hc = down.URL(), http.DefaultClient
	e.oauth = &xoauth2.Config{
		ClientID: clientID, RedirectURL: redirectURI, Scopes: []string{"openid", "email", "profile", "groups"},
		Endpoint: xoauth2.Endpoint{
			AuthURL: e.issuer + oauth2.AuthorizePath, TokenURL: e.issuer + oauth2.TokenPath,
			AuthStyle: xoauth2.AuthStyleInParams,
		},
	}
	return e, &upstreamSide{srv: up, dir: upDir, hash: hash}
}

// signInUpstream signs the user in on the upstream's login page and allows the downstream there.
func signInUpstream(user string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), userPassword),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
	)
}

// waitLocation waits until the tab's location starts with prefix.
func waitLocation(ctx context.Context, t *testing.T, prefix string) {
	t.Helper()
	var loc string
	var err error
	ok := assert.Eventually(t, func() bool {
		loc, err = chromedp.Run(ctx, chromedp.Location())
		return err == nil && strings.HasPrefix(loc, prefix)
	}, stepTimeout, 50*time.Millisecond)
	if !ok {
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("waiting for %s; at %s (%v), showing: %s", prefix, loc, err, body)
	}
}

func TestSignInThroughAnUpstreamLatchkeyInChromium(t *testing.T) {
	e, up := newUpstreamEnv(t)

	t.Run("the upstream's user signs in, consents twice and gets a verified ID token with the mapped claims", func(t *testing.T) {
		ctx := e.tab(t)
		verifier := xoauth2.GenerateVerifier()
		authURL := e.oauth.AuthCodeURL("s-up", xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("nonce", "n-up"))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL), signInUpstream(staffUser)))
		// Back at the downstream: its own consent page, then the client.
		waitLocation(ctx, t, e.issuer+oauth2.ConsentPath)
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`))))
		e.screenshots(ctx, t, "upstream-downstream-consent")
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[value="allow"]`))))
		got := e.awaitCallback(t)
		require.Equal(t, "s-up", got.Get("state"))

		cctx := oidc.ClientContext(context.WithValue(t.Context(), xoauth2.HTTPClient, e.hc), e.hc)
		tok, err := e.oauth.Exchange(cctx, got.Get("code"), xoauth2.VerifierOption(verifier))
		require.NoError(t, err)
		raw, _ := tok.Extra("id_token").(string)
		provider, err := oidc.NewProvider(cctx, e.issuer)
		require.NoError(t, err)
		idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(cctx, raw)
		require.NoError(t, err)
		var claims struct {
			Nonce             string   `json:"nonce"`
			PreferredUsername string   `json:"preferred_username"`
			Email             string   `json:"email"`
			EmailVerified     bool     `json:"email_verified"`
			Name              string   `json:"name"`
			Groups            []string `json:"groups"`
		}
		require.NoError(t, idt.Claims(&claims))
		assert.Equal(t, "n-up", claims.Nonce)
		assert.Equal(t, staffUser, claims.PreferredUsername)
		assert.Equal(t, "uma@corp.example", claims.Email)
		assert.True(t, claims.EmailVerified)
		assert.Equal(t, "Uma Upstream", claims.Name)
		assert.Equal(t, []string{"corp:staff", "corp:dev"}, claims.Groups)
		assert.True(t, strings.HasPrefix(idt.Subject, registry.ExternalSubjectPrefix), "sub %q", idt.Subject)
		assert.Len(t, idt.Subject, len(registry.ExternalSubjectPrefix)+43, "a hash of the provider's UID and the upstream sub")
		assert.NotContains(t, idt.Subject, staffUser)

		ui, err := provider.UserInfo(cctx, xoauth2.StaticTokenSource(tok))
		require.NoError(t, err)
		assert.Equal(t, idt.Subject, ui.Subject)
		assert.Equal(t, "uma@corp.example", ui.Email)
	})

	t.Run("a user the allow policy refuses gets an error page, and replaying the callback another", func(t *testing.T) {
		ctx := e.tab(t)
		authURL := e.oauth.AuthCodeURL("s-refused", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL), signInUpstream(outsider)))
		waitLocation(ctx, t, e.issuer+oauth2.UpstreamCallbackPath)
		assert.Equal(t, "Sign-in failed", heading(ctx, t))
		body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		require.NoError(t, err)
		assert.Contains(t, body, "not allowed to sign in here")
		assert.NotContains(t, body, "rob@corp.example", "the page dumps nothing of the upstream's answer")
		e.screenshots(ctx, t, "upstream-refused")

		callback, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(callback, e.issuer+oauth2.UpstreamCallbackPath), "on the callback: %s", callback)
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(callback)))
		assert.Equal(t, "Sign-in request expired", heading(ctx, t))
		body, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		require.NoError(t, err)
		assert.Contains(t, body, "was already used")
		select {
		case q := <-e.callbacks:
			t.Fatalf("the client was called: %v", q)
		default:
		}
	})

	t.Run("a callback with an unknown state is an error page, never a redirect", func(t *testing.T) {
		resp, err := e.hc.Get(e.issuer + oauth2.UpstreamCallbackPath + "?state=" + strings.Repeat("A", 43) + "&code=x")
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	})

	t.Run("refresh re-checks the upstream once per interval, and fails the family once the user is deleted upstream", func(t *testing.T) {
		ctx := e.tab(t)
		verifier := xoauth2.GenerateVerifier()
		// prompt=consent: the upstream's consent is remembered, so its login form redirects on to
		// the downstream, whose consent page must end that chain (form-action).
		authURL := e.oauth.AuthCodeURL("s-recheck", xoauth2.S256ChallengeOption(verifier), xoauth2.SetAuthURLParam("prompt", "consent"))
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(authURL),
			chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), staffUser),
			chromedp.SendKeys(chromedp.CSS("#password"), userPassword),
			chromedp.Click(chromedp.CSS("button[type=submit]"))))
		var got url.Values
		require.Eventually(t, func() bool { // both consents are remembered from the first sign-in, or asked
			select {
			case got = <-e.callbacks:
				return true
			default:
			}
			if loc, _ := chromedp.Run(ctx, chromedp.Location()); strings.Contains(loc, oauth2.ConsentPath) {
				// Bounded: the page may navigate away before the button shows.
				click, cancel := context.WithTimeout(ctx, time.Second)
				_ = chromedp.Do(click, chromedp.Click(chromedp.CSS(`button[value="allow"]`)))
				cancel()
			}
			return false
		}, stepTimeout, 100*time.Millisecond)
		cctx := context.WithValue(t.Context(), xoauth2.HTTPClient, e.hc)
		tok, err := e.oauth.Exchange(cctx, got.Get("code"), xoauth2.VerifierOption(verifier))
		require.NoError(t, err)
		loggedIn := time.Now()
		require.NotEmpty(t, tok.RefreshToken)
		before := up.refreshes(t)

		refresh := func(rt string) (*xoauth2.Token, error) {
			return e.oauth.TokenSource(cctx, &xoauth2.Token{RefreshToken: rt}).Token()
		}
		tok, err = refresh(tok.RefreshToken)
		require.NoError(t, err)
		require.Less(t, time.Since(loggedIn), recheckInterval, "the machine is too slow for this check")
		assert.Equal(t, before, up.refreshes(t), "within the interval of the login, the upstream is not asked")

		time.Sleep(time.Until(loggedIn.Add(recheckInterval + 500*time.Millisecond)))
		tok, err = refresh(tok.RefreshToken)
		require.NoError(t, err)
		assert.Equal(t, before+1, up.refreshes(t), "after the interval, the upstream refresh token is used")
		asked := time.Now()
		tok, err = refresh(tok.RefreshToken)
		require.NoError(t, err)
		if time.Since(asked) < recheckInterval {
			assert.Equal(t, before+1, up.refreshes(t), "and not again within the interval")
		}

		// uma is deleted upstream: only rob is left in the upstream's folder.
		require.NoError(t, os.WriteFile(filepath.Join(up.dir, "upstream.yaml"), []byte(upstreamManifestsWithout(up.hash, staffUser)), 0o600))
		time.Sleep(time.Until(asked.Add(recheckInterval + 500*time.Millisecond)))
		var rerr *xoauth2.RetrieveError
		require.Eventually(t, func() bool {
			next, err := refresh(tok.RefreshToken)
			if err == nil { // the upstream has not reloaded yet: the re-check passed
				tok = next
				time.Sleep(recheckInterval)
				return false
			}
			return errors.As(err, &rerr)
		}, 4*recheckInterval, 100*time.Millisecond)
		assert.Equal(t, "invalid_grant", rerr.ErrorCode)

		// The family is revoked: the last access token no longer works at userinfo.
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.issuer+oauth2.UserinfoPath, nil)
		require.NoError(t, err)
		tok.SetAuthHeader(req)
		resp, err := e.hc.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
}
