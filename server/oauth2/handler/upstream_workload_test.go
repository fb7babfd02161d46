package handler

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/workload"
)

const (
	wlIssuer  = "https://kubernetes.default.svc.cluster.local"
	wlSubject = "system:serviceaccount:latchkey:latchkey"
)

// workloadUpstream is an upstream pair whose downstream authenticates at the upstream with a
// token file (spec.client.workloadIdentity): the upstream's client for it is a
// service_account_token client bound to a WorkloadIssuer with a static key, and has no secret.
type workloadUpstream struct {
	upstreamPair
	key  *ecdsa.PrivateKey
	file string
}

func newWorkloadUpstream(t *testing.T, downOpts ...envOption) workloadUpstream {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "latchkey-upstream")
	p := upstreamPair{up: newFlowEnv(t, func(c *Config) {
		v, err := workload.New(workload.Config{Issuer: c.Issuer, Now: c.Now})
		require.NoError(t, err)
		c.ClientAssertions = v
	}), down: newFlowEnv(t, downOpts...)}.withoutUsers()
	p.provider = registry.UpstreamOIDC{
		Name: "corp", UID: "uid-corp", Generation: 1, DisplayName: "Corp SSO", Issuer: p.up.srv.URL,
		ClientID: upstreamIDPClient, AssertionFile: file,
		Scopes: []string{"openid", "email", "profile", "offline_access"}, // offline_access: the re-check refreshes
	}
	p.down.reg.PutUpstreamOIDC(p.provider)
	p.up.reg.PutWorkloadIssuer(registry.WorkloadIssuer{
		Name: "cluster", Issuer: wlIssuer, Audiences: []string{p.up.srv.URL}, AllowedNamespaces: []string{"idp"},
		StaticKeys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}},
	})
	p.up.reg.PutClient(registry.Client{
		Source: "idp/" + upstreamIDPClient, Namespace: "idp", ID: upstreamIDPClient, Type: registry.Confidential,
		AuthMethod: oauth2.AuthMethodServiceAccountToken, WorkloadIssuer: "cluster", WorkloadSubject: wlSubject,
		GrantTypes: []string{"authorization_code", "refresh_token"}, RedirectURIs: []string{p.down.srv.URL + oauth2.UpstreamCallbackPath},
		Scopes: []string{"openid", "email", "profile", "offline_access"},
	})
	return workloadUpstream{upstreamPair: p, key: key, file: file}
}

// writeToken writes a token of the workload issuer for the upstream, valid from iat for ttl.
func (w workloadUpstream) writeToken(t *testing.T, iat time.Time, ttl time.Duration) string {
	t.Helper()
	tok := signJWT(t, w.key, "k1", map[string]any{
		"iss": wlIssuer, "sub": wlSubject, "aud": []string{w.up.srv.URL}, "iat": iat.Unix(), "exp": iat.Add(ttl).Unix(),
	})
	w.writeFile(t, tok+"\n")
	return tok
}

func (w workloadUpstream) writeFile(t *testing.T, content string) {
	t.Helper()
	// As the kubelet does: a new file renamed over the old one.
	tmp := w.file + ".new"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, w.file))
}

// tryLogin signs in upstream and returns the downstream's page after the upstream's consent
// (remembered after the first sign-in).
func (w workloadUpstream) tryLogin(t *testing.T) harness.Page {
	t.Helper()
	b := w.browser(t)
	_, challenge := pkcePair()
	page := b.Login(b.Get(w.down.spaRequest(challenge)), ownerName, ownerPassword)
	if page.IsConsent() && strings.HasPrefix(page.URL.String(), w.up.srv.URL) {
		page = b.Decide(page, "allow")
	}
	return page
}

func TestUpstreamWorkloadIdentity(t *testing.T) {
	t.Run("a sign-in authenticates upstream with the token file, no client secret anywhere, and a rotated token is read", func(t *testing.T) {
		w := newWorkloadUpstream(t)
		require.Empty(t, w.provider.ClientSecret)
		w.writeToken(t, w.up.clock.Now(), time.Hour)
		code, verifier := w.signIn(t)
		status, tok := w.down.exchangeForm(t, "grant_type", "authorization_code", "code", code, "client_id", spaClientID,
			"redirect_uri", appRedirect, "code_verifier", verifier)
		require.Equal(t, http.StatusOK, status, "%v", tok)
		idt := claimsOf(t, tok["id_token"].(string))
		assert.True(t, strings.HasPrefix(idt["sub"].(string), registry.ExternalSubjectPrefix), "%v", idt["sub"])

		w.writeFile(t, "not-a-jwt")
		page := w.tryLogin(t)
		assert.Equal(t, http.StatusBadGateway, page.Status, "the file is read at each use: %s", page.Body)

		w.up.clock.Advance(2 * time.Hour) // the first token has expired; the kubelet wrote a new one
		w.writeToken(t, w.up.clock.Now(), time.Hour)
		code, _ = w.signIn(t)
		assert.NotEmpty(t, code, "the rotated token is used")
	})

	t.Run("an expired, garbage, missing or empty token file is a clear page naming no token", func(t *testing.T) {
		w := newWorkloadUpstream(t)
		expired := ""
		for _, tt := range []struct {
			name  string
			write func()
		}{
			{"expired", func() { expired = w.writeToken(t, w.up.clock.Now().Add(-2*time.Hour), time.Hour) }},
			{"garbage", func() { w.writeFile(t, "garbage.garbage.garbage") }},
			{"empty", func() { w.writeFile(t, "\n") }},
			{"missing", func() { require.NoError(t, os.Remove(w.file)) }},
		} {
			tt.write()
			page := w.tryLogin(t)
			assert.Equal(t, http.StatusBadGateway, page.Status, tt.name)
			assert.Contains(t, page.Body, "could not authenticate itself to the identity provider", tt.name)
			assert.Contains(t, page.Header.Get("Content-Type"), "text/html", tt.name)
			assert.Nil(t, page.Location, tt.name)
		}
		require.NotEmpty(t, expired)
	})

	t.Run("the refresh re-check authenticates with the file too, read again when it changed", func(t *testing.T) {
		w := newWorkloadUpstream(t, func(c *Config) { c.Upstream.RecheckInterval = time.Minute })
		w.writeToken(t, w.up.clock.Now(), time.Hour)
		code, verifier := w.signIn(t)
		status, tok := w.down.exchangeForm(t, "grant_type", "authorization_code", "code", code, "client_id", spaClientID,
			"redirect_uri", appRedirect, "code_verifier", verifier)
		require.Equal(t, http.StatusOK, status, "%v", tok)

		w.writeFile(t, "garbage")
		w.down.clock.Advance(time.Minute + time.Second)
		status, body := w.down.exchangeForm(t, "grant_type", "refresh_token", "refresh_token", tok["refresh_token"].(string), "client_id", spaClientID)
		require.NotEqual(t, http.StatusOK, status, "the upstream cannot be asked: %v", body)

		w.writeToken(t, w.up.clock.Now(), time.Hour)
		status, tok = w.down.exchangeForm(t, "grant_type", "refresh_token", "refresh_token", tok["refresh_token"].(string), "client_id", spaClientID)
		require.Equal(t, http.StatusOK, status, "not revoked by the failure; the new token authenticates: %v", tok)

		w.up.reg.DeleteUser(ownerName)
		w.down.clock.Advance(time.Minute + time.Second)
		status, body = w.down.exchangeForm(t, "grant_type", "refresh_token", "refresh_token", tok["refresh_token"].(string), "client_id", spaClientID)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", body["error"], "%v", body)
	})
}
