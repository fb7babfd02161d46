package multireplica

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// The back-channel logout tests' clients: public, consent skipped, each with its own path at
// the shared receiver. bcAppID and bcShopID take part in one session; bcFlakyID's receiver
// fails its first POST; bcDownID's always fails.
const (
	bcAppID   = "bc-app"
	bcShopID  = "bc-shop"
	bcFlakyID = "bc-flaky"
	bcDownID  = "bc-down"
	// bcTimeout bounds a wait for a delivery that needs no retry (the replicas poll every
	// second), bcRetryTimeout one after a failed attempt (a 5 s back-off first).
	bcTimeout      = 10 * time.Second
	bcRetryTimeout = 25 * time.Second
)

// applyBackchannelClients applies the clients once per package run (their
// backchannelLogoutURI names the suite's receiver) and waits until every replica serves them.
var applyBackchannelClients = sync.OnceValue(func() error { //nolint:gochecknoglobals // once per package run
	s := env
	var b strings.Builder
	for _, id := range []string{bcAppID, bcShopID, bcFlakyID, bcDownID} {
		fmt.Fprintf(&b, `---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: %[1]s, namespace: default}
spec:
  clientID: %[1]s
  type: Public
  grantTypes: [authorization_code]
  redirectURIs: ["%[2]s"]
  scopes: [openid, email]
  tokenEndpointAuthMethod: none
  pkce: RequiredS256
  consent: Skip
  backchannelLogoutURI: "%[3]s"
`, id, demoRedirect, s.logouts.URI(id))
	}
	if out, err := s.cp.Kubectl([]byte(b.String()), "apply", "-f", "-"); err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, out)
	}
	for _, r := range s.replicas {
		if err := r.waitAuthorizes(bcDownID, 30*time.Second); err != nil {
			return err
		}
	}
	return nil
})

// backchannelReceiver applies the back-channel clients and returns the suite's receiver.
func backchannelReceiver(t *testing.T) *harness.LogoutReceiver {
	t.Helper()
	require.NoError(t, applyBackchannelClients())
	return env.logouts
}

// waitAuthorizes waits until the replica shows the login page for an authorization request
// of the client (it serves the client).
func (r *replica) waitAuthorizes(clientID string, timeout time.Duration) error {
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: demoRedirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: r.base + "/oauth2/authorize"}}
	u := conf.AuthCodeURL("probe", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		jar, err := cookiejar.New(nil) // the login page needs the browser cookie of the redirect
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Jar: jar, Timeout: 10 * time.Second}).Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), harness.LoginAction) {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s does not serve %s: %s", r.name, clientID, last)
}

// session is a browser signed in as alice.
type session struct {
	s *suite
	b *harness.Browser
}

func (s *suite) newSession(t *testing.T) *session {
	t.Helper()
	servers := make([]string, 0, len(s.replicas))
	for _, r := range s.replicas {
		servers = append(servers, r.base)
	}
	b := harness.NewBrowser(t, nil, servers...)
	b.Origin = s.issuer
	return &session{s: s, b: b}
}

// signIn runs the authorization code flow of the client at replica r (alice signs in when
// the browser has no session yet), exchanges the code there with x/oauth2 and returns the
// verified ID token's raw form and claims.
func (ss *session) signIn(t *testing.T, r *replica, clientID string) (string, map[string]any) {
	t.Helper()
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: demoRedirect, Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: r.base + "/oauth2/authorize", TokenURL: r.base + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	p := ss.b.Get(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	if p.IsLogin() {
		p = ss.b.Login(p, alice, alicePassword)
	}
	cb := p.Callback(t)
	require.Empty(t, cb.Error, "error_description: %s", cb.ErrorDescription)
	require.Equal(t, state, cb.State)
	tok, err := conf.Exchange(t.Context(), cb.Code, oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	raw, _ := tok.Extra("id_token").(string)
	require.NotEmpty(t, raw)
	claims := verifyWith(t, r.jwks(t), raw, ss.s.issuer)
	require.NotEmpty(t, claims["sid"], "the ID token names the OP session")
	return raw, claims
}

// logout ends the session at replica r with the ID token as id_token_hint.
func (ss *session) logout(t *testing.T, r *replica, idToken string) {
	t.Helper()
	p := ss.b.Get(r.base + "/oauth2/logout?" + url.Values{"id_token_hint": {idToken}}.Encode())
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.Contains(t, p.Body, "You are signed out")
}

// deliveries sums latchkey_backchannel_logout_deliveries_total of result over the replicas
// (skip: a stopped one).
func (s *suite) deliveries(t *testing.T, result string, skip *replica) float64 {
	t.Helper()
	var sum float64
	for _, r := range s.replicas {
		if r != skip {
			sum += harness.DeliveryCounts(t, r.metrics)[result]
		}
	}
	return sum
}

// assertOneToken checks that the client got exactly one POST, a logout token of the session.
func assertOneToken(t *testing.T, s *suite, rc *harness.LogoutReceiver, clientID string, idClaims map[string]any) {
	t.Helper()
	got := rc.AwaitDelivered(t, clientID, 1, bcTimeout)
	claims := harness.VerifyLogoutToken(t, http.DefaultClient, s.issuer, clientID, got[0])
	assert.Equal(t, idClaims["sid"], claims["sid"], "%s: sid", clientID)
	assert.Equal(t, idClaims["sub"], claims["sub"], "%s: sub", clientID)
}

func TestBackchannelLogoutAtOneReplicaSendsOneTokenPerClientNotOnePerReplica(t *testing.T) {
	s := env
	rc := backchannelReceiver(t)
	a, b := s.replicas[1], s.replicas[2]
	delivered := s.deliveries(t, "delivered", nil)

	ss := s.newSession(t)
	appToken, appClaims := ss.signIn(t, a, bcAppID)
	_, shopClaims := ss.signIn(t, b, bcShopID) // the session is shared through Redis
	require.Equal(t, appClaims["sid"], shopClaims["sid"])
	ss.logout(t, a, appToken)

	assertOneToken(t, s, rc, bcAppID, appClaims)
	assertOneToken(t, s, rc, bcShopID, shopClaims)
	// Every replica polls the queue every second: a delivery claimed by more than one would
	// arrive again within that.
	assert.Never(t, func() bool { return len(rc.Posts(bcAppID)) > 1 || len(rc.Posts(bcShopID)) > 1 },
		2500*time.Millisecond, 50*time.Millisecond, "a second POST of a delivery")
	assert.InDelta(t, delivered+2, s.deliveries(t, "delivered", nil), 0, "two deliveries over all the replicas")
}

func TestBackchannelLogoutFirstTriedAtAReplicaThatStopsIsDeliveredByAnother(t *testing.T) {
	s := env
	rc := backchannelReceiver(t)
	rc.FailNext(bcFlakyID, 1)
	retried := make([]float64, len(s.replicas))
	for i, r := range s.replicas {
		retried[i] = harness.DeliveryCounts(t, r.metrics)["retried"]
	}

	ss := s.newSession(t)
	idToken, idClaims := ss.signIn(t, s.replicas[1], bcFlakyID)
	ss.logout(t, s.replicas[2], idToken)
	// The replica that made the failed first attempt (most likely the one that ended the
	// session: it is woken at once, the others poll) stops right after it.
	var a *replica
	require.Eventually(t, func() bool {
		for i, r := range s.replicas {
			if counts, err := harness.ScrapeDeliveryCounts(t.Context(), r.metrics); err == nil && counts["retried"] > retried[i] {
				a = r
				return true
			}
		}
		return false
	}, bcTimeout, 20*time.Millisecond, "a replica records the failed first attempt")
	require.Len(t, rc.Posts(bcFlakyID), 1, "the first attempt (answered 503)")
	a.stop()
	t.Cleanup(func() {
		// The next tests need every replica.
		require.NoError(t, a.srv.Restart())
		require.NoError(t, a.waitReady(30*time.Second))
	})
	t.Logf("%s made the first attempt and stopped", a.name)
	before := s.deliveries(t, "delivered", a)

	got := rc.AwaitDelivered(t, bcFlakyID, 1, bcRetryTimeout)
	posts := rc.Posts(bcFlakyID)
	require.Len(t, posts, 2, "one failed attempt and one delivery")
	assert.Equal(t, http.StatusServiceUnavailable, posts[0].Answered)
	claims := harness.VerifyLogoutToken(t, http.DefaultClient, s.issuer, bcFlakyID, got[0])
	assert.Equal(t, idClaims["sid"], claims["sid"])
	assert.Equal(t, idClaims["sub"], claims["sub"])
	assert.NotEqual(t, harness.VerifyLogoutToken(t, http.DefaultClient, s.issuer, bcFlakyID, posts[0].Token)["jti"], claims["jti"],
		"each attempt is a new token")
	// The receiver has the token before the replica counts it.
	assert.Eventually(t, func() bool {
		var sum float64
		for _, r := range s.replicas {
			if r == a {
				continue
			}
			counts, err := harness.ScrapeDeliveryCounts(t.Context(), r.metrics)
			if err != nil {
				return false
			}
			sum += counts["delivered"]
		}
		return sum == before+1
	}, bcTimeout, 50*time.Millisecond, "a running replica delivered it")
}

func TestBackchannelLogoutThatAlwaysFailsIsGivenUpWithAWarningEventOnTheOAuthClient(t *testing.T) {
	s := env
	rc := backchannelReceiver(t)
	rc.FailAlways(bcDownID)
	failed := s.deliveries(t, "failed", nil)

	ss := s.newSession(t)
	idToken, _ := ss.signIn(t, s.replicas[0], bcDownID)
	ss.logout(t, s.replicas[1], idToken)

	assert.Eventually(t, func() bool {
		out, err := s.cp.Kubectl(nil, "get", "events", "-n", "default", "--field-selector",
			"involvedObject.name="+bcDownID+",reason=BackchannelLogoutFailed", "-o", "jsonpath={.items[*].type}")
		return err == nil && strings.Contains(out, "Warning")
	}, bcRetryTimeout, 200*time.Millisecond, "a Warning Event BackchannelLogoutFailed on the OAuthClient")
	assert.Len(t, rc.Posts(bcDownID), backchannelAttempts, "every attempt was made, no more")
	assert.InDelta(t, failed+1, s.deliveries(t, "failed", nil), 0, "counted failed once")
}

func TestOneLogoutRequestedConcurrentlyAtEveryReplicaSendsOneTokenPerClient(t *testing.T) {
	s := env
	rc := backchannelReceiver(t)
	ss := s.newSession(t)
	appToken, appClaims := ss.signIn(t, s.replicas[0], bcAppID)
	_, shopClaims := ss.signIn(t, s.replicas[1], bcShopID)
	appBefore, shopBefore := len(rc.Posts(bcAppID)), len(rc.Posts(bcShopID))

	// The client's back end and the user's browser (twice, say) all ask at once, at every
	// replica, with the same hint and no cookie.
	const perReplica = 3
	logoutURL := "/oauth2/logout?" + url.Values{"id_token_hint": {appToken}}.Encode()
	start := make(chan struct{})
	var wg sync.WaitGroup
	statuses := make(chan int, perReplica*len(s.replicas))
	for _, r := range s.replicas {
		for range perReplica {
			wg.Go(func() {
				<-start
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.base+logoutURL, nil)
				if !assert.NoError(t, err) {
					return
				}
				resp, err := http.DefaultClient.Do(req)
				if !assert.NoError(t, err) {
					return
				}
				_ = resp.Body.Close()
				statuses <- resp.StatusCode
			})
		}
	}
	close(start)
	wg.Wait()
	close(statuses)
	for status := range statuses {
		assert.Equal(t, http.StatusOK, status)
	}

	got := rc.AwaitDelivered(t, bcAppID, appBefore+1, bcTimeout)
	assert.Equal(t, appClaims["sid"], harness.VerifyLogoutToken(t, http.DefaultClient, s.issuer, bcAppID, got[appBefore])["sid"])
	got = rc.AwaitDelivered(t, bcShopID, shopBefore+1, bcTimeout)
	assert.Equal(t, shopClaims["sid"], harness.VerifyLogoutToken(t, http.DefaultClient, s.issuer, bcShopID, got[shopBefore])["sid"])
	assert.Never(t, func() bool { return len(rc.Posts(bcAppID)) > appBefore+1 || len(rc.Posts(bcShopID)) > shopBefore+1 },
		2500*time.Millisecond, 50*time.Millisecond, "one session ended once: one logout token per client")
}
