package handler

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	redisstore "github.com/latchkey-dev/latchkey/server/store/redis"
)

// Clients of the withdrawal tests, with short lifetimes so that a family outlives its list
// entry (leased for the code and refresh lifetimes) within a test on real time (Redis).
const (
	shortSPA = "short-spa" // public, code flow
	shortPW  = "short-pw"  // confidential, password grant (never listed)
	// shortRefreshLifetime is their refresh token lifetime; their code lifetime is one second.
	shortRefreshLifetime = 2 * time.Second
	// refreshStep is the time between two refreshes: a few outlast the list entry's lease.
	refreshStep = 700 * time.Millisecond
)

func addShortClients(reg *registry.Registry) {
	reg.PutClient(registry.Client{
		Source: "web/" + shortSPA, Namespace: "web", ID: shortSPA, Type: registry.Public, AuthMethod: oauth2.AuthMethodNone,
		DisplayName: "Short SPA", GrantTypes: []string{"authorization_code", "refresh_token"}, RedirectURIs: []string{appRedirect},
		Scopes: []string{"openid", "read:projects"}, RefreshTokenLifetime: shortRefreshLifetime, CodeLifetime: time.Second,
	})
	reg.PutClient(registry.Client{
		Source: "web/" + shortPW, Namespace: "web", ID: shortPW, Type: registry.Confidential, AuthMethod: oauth2.AuthMethodBasic,
		GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"openid", "read:projects"},
		SecretHash: registry.HashSecret([]byte(webSecret)), HasSecret: true, RefreshTokenLifetime: shortRefreshLifetime, CodeLifetime: time.Second,
	})
}

// TestWithdrawingConsentEndsFamiliesNoLongerListed: a family that kept rotating past its list
// entry's lease (refresh tokens slide), and a password grant's (never listed), are refused
// after the user withdraws the consent, on the memory store (fake clock) and on Redis (real
// time); a family started after the withdrawal keeps working.
func TestWithdrawingConsentEndsFamiliesNoLongerListed(t *testing.T) {
	backends := []struct {
		name  string
		setup func(t *testing.T) (*flowEnv, func(time.Duration))
	}{
		{"on the memory store", func(t *testing.T) (*flowEnv, func(time.Duration)) {
			env := newFlowEnv(t)
			return env, env.clock.Advance
		}},
		{"on Redis", func(t *testing.T) (*flowEnv, func(time.Duration)) {
			srv := harness.NewRedis(t)
			st, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}, KeyPrefix: "cutoff:"})
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			return newFlowEnv(t, withRedis(st)), time.Sleep
		}},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			env, wait := be.setup(t)
			addShortClients(env.reg)
			b := env.browser(t)

			tok := env.codeTokens(t, b, shortSPA, "")
			status, pw := env.clientTokenPost(t, shortPW, webSecret, url.Values{"grant_type": {"password"},
				"username": {ownerName}, "password": {ownerPassword}, "scope": {"read:projects"}})
			require.Equal(t, http.StatusOK, status, "%v", pw)
			// Every refresh gives a fresh lifetime: the families outlive the list entry
			// (leased for a second of code and two of refresh token).
			for range 5 {
				wait(refreshStep)
				tok = env.refreshForm(t, shortSPA, "", str(tok["refresh_token"]))
				pw = env.refreshForm(t, shortPW, webSecret, str(pw["refresh_token"]))
			}

			p := env.accountPage(t, b)
			require.Contains(t, p.Body, `id="no-grants"`, "the families are listed no more")
			for _, client := range []string{shortSPA, shortPW} {
				out := env.accountPost(t, b, env.accountPage(t, b), "action", "withdraw", "client_id", client)
				require.Equal(t, http.StatusOK, out.Status, out.Body)
			}
			wait(10 * time.Millisecond)

			status, body := env.refreshFormStatus(t, shortSPA, "", str(tok["refresh_token"]))
			assert.Equal(t, http.StatusBadRequest, status, "%v", body)
			assert.Equal(t, "invalid_grant", body["error"])
			status, body = env.refreshFormStatus(t, shortPW, webSecret, str(pw["refresh_token"]))
			assert.Equal(t, http.StatusBadRequest, status, "%v", body)
			assert.Equal(t, "invalid_grant", body["error"], "the password grant's family is cut off too")

			// The user consents again: the new family is not the withdrawn consent's.
			again := env.codeTokens(t, b, shortSPA, "")
			wait(refreshStep)
			again = env.refreshForm(t, shortSPA, "", str(again["refresh_token"]))
			env.refreshForm(t, shortSPA, "", str(again["refresh_token"]))
			status, pw = env.clientTokenPost(t, shortPW, webSecret, url.Values{"grant_type": {"password"},
				"username": {ownerName}, "password": {ownerPassword}, "scope": {"read:projects"}})
			require.Equal(t, http.StatusOK, status, "%v", pw)
			env.refreshForm(t, shortPW, webSecret, str(pw["refresh_token"]))
		})
	}
}

// TestEndingSessionEndsFamiliesNoLongerListed: a session lists at most store.MaxListEntries
// grants; ending it still ends the families of a client that revokes refresh tokens at logout
// that the list could not hold.
func TestEndingSessionEndsFamiliesNoLongerListed(t *testing.T) {
	env := newFlowEnv(t)
	b := env.browser(t)
	var toks []map[string]any
	for range store.MaxListEntries + 1 {
		toks = append(toks, env.codeTokens(t, b, skipID, webSecret))
	}
	sid := str(claimsOf(t, str(toks[0]["id_token"]))["sid"])
	out := env.accountPost(t, b, env.accountPage(t, b), "action", "end_session", "sid", sid)
	require.Equal(t, http.StatusOK, out.Status, out.Body)
	for i, tok := range toks {
		status, body := env.refreshFormStatus(t, skipID, webSecret, str(tok["refresh_token"]))
		assert.Equal(t, http.StatusBadRequest, status, "family %d", i)
		assert.Equal(t, "invalid_grant", body["error"], "family %d", i)
	}
}
