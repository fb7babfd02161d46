package handler

import (
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// TestLogoutAcrossReplicasSharingRedis signs in at one replica and logs out at another: the
// session, its grants and its clients live in Redis, so any replica can end the session.
func TestLogoutAcrossReplicasSharingRedis(t *testing.T) {
	srv := harness.NewRedis(t)
	storeA, _ := redisReplica(t, srv)
	storeB, _ := redisReplica(t, srv)
	recB := &recordingNotifier{}
	a := newFlowEnv(t, withRedis(storeA))
	b := newFlowEnv(t, withRedis(storeB), func(c *Config) { c.Issuer, c.SessionEnd = a.srv.URL, recB })

	browser := a.browser(t)
	tok := a.codeTokens(t, browser, skipID, webSecret)
	sid := str(claimsOf(t, str(tok["id_token"]))["sid"])
	require.NotEmpty(t, sid)
	refreshed := a.refreshForm(t, skipID, webSecret, str(tok["refresh_token"]))
	assert.Equal(t, sid, claimsOf(t, str(refreshed["access_token"]))["sid"], "the refresh record in Redis keeps the session")

	// A cross-site POST to the other replica: no cookie, only the hint.
	p := harness.NewBrowser(t, b.srv.Client(), b.srv.URL).Post(b.srv.URL+oauth2.LogoutPath, url.Values{
		"id_token_hint": {str(tok["id_token"])}, "post_logout_redirect_uri": {appLoggedOut}, "state": {"r"},
	}, "Sec-Fetch-Site", "cross-site")
	require.NotNil(t, p.Location, "%d %s", p.Status, p.Body)
	assert.Equal(t, appLoggedOut+"?state=r", p.Location.String())

	ends := recB.recorded()
	require.Len(t, ends, 1)
	assert.Equal(t, sessionEnd{sid: sid, subject: subjectOf(ownerName), clientIDs: []string{skipID}}, ends[0])
	status, body := a.refreshFormStatus(t, skipID, webSecret, str(refreshed["refresh_token"]))
	assert.Equal(t, "invalid_grant", body["error"], "%d: the client's grant is revoked at logout", status)
	_, challenge := pkcePair()
	cb := browser.Get(a.authorizeURL("response_type", "code", "client_id", skipID, "redirect_uri", appRedirect,
		"scope", "openid", "code_challenge", challenge, "code_challenge_method", "S256", "prompt", "none")).Callback(t)
	assert.Equal(t, "login_required", cb.Error, "the first replica sees the session ended")
}

// TestConcurrentLogoutsOfOneSessionNotifyItsClientsOnce: a client's back end and the user's
// browser may end one session at the same time, at the same replica or at two: every request
// signs out, and the clients hear of the end once (one back-channel logout token each).
func TestConcurrentLogoutsOfOneSessionNotifyItsClientsOnce(t *testing.T) {
	srv := harness.NewRedis(t)
	storeA, _ := redisReplica(t, srv)
	storeB, _ := redisReplica(t, srv)
	for _, tc := range []struct {
		name     string
		replicas func(rec *recordingNotifier) []*flowEnv
	}{
		{"at one replica with the memory store", func(rec *recordingNotifier) []*flowEnv {
			return []*flowEnv{newFlowEnv(t, func(c *Config) { c.SessionEnd = rec })}
		}},
		{"at two replicas sharing Redis", func(rec *recordingNotifier) []*flowEnv {
			a := newFlowEnv(t, withRedis(storeA), func(c *Config) { c.SessionEnd = rec })
			b := newFlowEnv(t, withRedis(storeB), func(c *Config) { c.Issuer, c.SessionEnd = a.srv.URL, rec })
			return []*flowEnv{a, b}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingNotifier{}
			replicas := tc.replicas(rec)
			tok := replicas[0].codeTokens(t, replicas[0].browser(t), skipID, webSecret)
			sid := str(claimsOf(t, str(tok["id_token"]))["sid"])
			query := "?" + url.Values{"id_token_hint": {str(tok["id_token"])}}.Encode()
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range 8 {
				env := replicas[i%len(replicas)]
				wg.Go(func() {
					<-start
					req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, env.srv.URL+oauth2.LogoutPath+query, nil)
					if !assert.NoError(t, err) {
						return
					}
					resp, err := env.srv.Client().Do(req)
					if !assert.NoError(t, err) {
						return
					}
					_ = resp.Body.Close()
					assert.Equal(t, http.StatusOK, resp.StatusCode, "every request signs out")
				})
			}
			close(start)
			wg.Wait()
			ends := rec.recorded()
			require.Len(t, ends, 1, "one session ended once")
			assert.Equal(t, sessionEnd{sid: sid, subject: subjectOf(ownerName), clientIDs: []string{skipID}}, ends[0])
		})
	}
}
