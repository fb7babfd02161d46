package multireplica

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// authorizeAt drives login and consent for demo-spa (PKCE S256) over HTTP against replica r,
// and returns the code and its verifier.
func authorizeAt(t *testing.T, s *suite, r *replica) (code, verifier string) {
	t.Helper()
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	conf := &oauth2.Config{ClientID: spaID, RedirectURL: demoRedirect, Scopes: []string{"openid", "profile", "read:projects"},
		Endpoint: oauth2.Endpoint{AuthURL: r.base + "/oauth2/authorize"}}
	servers := make([]string, 0, len(s.replicas))
	for _, r := range s.replicas {
		servers = append(servers, r.base)
	}
	// Behind a load balancer every replica sees the issuer's host, which the Origin must match
	// (http.CrossOriginProtection); the requests still go to the replica that served the page.
	b := harness.NewBrowser(t, nil, servers...)
	b.Origin = s.issuer
	p := b.Get(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "consent")))
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.True(t, p.IsLogin(), "a login page: %s", p.Body)
	p = b.Login(p, alice, alicePassword)
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.True(t, p.IsConsent(), "a consent page: %s", p.Body)
	cb := b.Decide(p, "allow").Callback(t)
	require.Equal(t, demoRedirect, cb.URI)
	require.Empty(t, cb.Error, "error_description: %s", cb.ErrorDescription)
	require.Equal(t, state, cb.State)
	require.Equal(t, s.issuer, cb.Iss, "RFC 9207 iss is the shared issuer")
	require.NotEmpty(t, cb.Code)
	return cb.Code, verifier
}

func exchangeForm(code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {demoRedirect}, "code_verifier": {verifier}}
}

func TestACodeIssuedByOneReplicaIsExchangedAtAnotherAndItsReplayRevokesEverywhere(t *testing.T) {
	s := env
	a, b, c := s.replicas[1], s.replicas[2], s.replicas[0]
	code, verifier := authorizeAt(t, s, a)

	res := b.token(t, spa, exchangeForm(code, verifier))
	require.Equal(t, http.StatusOK, res.status, "exchange at %s of a code of %s: %s", b.name, a.name, res)
	at, rt := res.str("access_token"), res.str("refresh_token")
	require.NotEmpty(t, at)
	require.NotEmpty(t, rt)
	require.True(t, a.introspect(t, at), "the access token is active at %s", a.name)

	replay := c.token(t, spa, exchangeForm(code, verifier))
	assert.Equal(t, http.StatusBadRequest, replay.status, "%s", replay)
	assert.Equal(t, "invalid_grant", replay.str("error"), "%s", replay)
	assert.NotContains(t, replay.body, "access_token")

	assert.False(t, a.introspect(t, at), "the replayed code's access token is inactive at %s", a.name)
	assert.False(t, a.introspect(t, rt), "the replayed code's refresh token is inactive at %s", a.name)
}

func TestARefreshTokenReusedAtAnotherReplicaKillsTheFamilyEverywhere(t *testing.T) {
	s := env
	a, b, c := s.replicas[0], s.replicas[1], s.replicas[2]
	first := a.tokens(t)
	rotated := a.refresh(t, first.str("refresh_token"))
	require.Equal(t, http.StatusOK, rotated.status, "rotation at %s: %s", a.name, rotated)
	successor := rotated.str("refresh_token")
	require.NotEmpty(t, successor)
	require.NotEqual(t, first.str("refresh_token"), successor, "the refresh token rotates")

	time.Sleep(refreshGrace + 300*time.Millisecond) // past the reuse grace window
	reused := b.refresh(t, first.str("refresh_token"))
	assert.Equal(t, http.StatusBadRequest, reused.status, "%s", reused)
	assert.Equal(t, "invalid_grant", reused.str("error"), "reuse at %s: %s", b.name, reused)

	dead := c.refresh(t, successor)
	assert.Equal(t, http.StatusBadRequest, dead.status, "%s", dead)
	assert.Equal(t, "invalid_grant", dead.str("error"), "the successor at %s after reuse: %s", c.name, dead)
	assert.False(t, c.introspect(t, successor), "the successor is inactive at %s", c.name)
}

func TestARevocationAtOneReplicaIsSeenByTheOthers(t *testing.T) {
	s := env
	a, b, c := s.replicas[2], s.replicas[0], s.replicas[1]
	tok := a.tokens(t)
	at := tok.str("access_token")
	require.True(t, b.introspect(t, at), "active at %s before revocation", b.name)
	require.True(t, c.introspect(t, at), "active at %s before revocation", c.name)
	require.Equal(t, http.StatusOK, c.userinfo(t, at), "userinfo at %s before revocation", c.name)

	a.revoke(t, webapp, at, "access_token")
	assert.False(t, b.introspect(t, at), "the revoked access token is inactive at %s", b.name)
	assert.False(t, c.introspect(t, at), "the revoked access token is inactive at %s", c.name)
	assert.Equal(t, http.StatusUnauthorized, c.userinfo(t, at), "userinfo at %s refuses the revoked token", c.name)
}

func TestATokenSignedByOneReplicaVerifiesWithEveryReplicasJWKS(t *testing.T) {
	s := env
	for _, signer := range s.replicas {
		tok := signer.clientCredentials(t)
		for _, r := range s.replicas {
			claims := verifyWith(t, r.jwks(t), tok, s.issuer)
			assert.Equal(t, serviceID, claims["client_id"], "a token of %s verified with the JWKS of %s", signer.name, r.name)
		}
	}
}

func TestAForcedKeyRotationBreaksNoVerificationAndEveryReplicaConverges(t *testing.T) {
	s := env
	before := map[string]string{} // token -> replica that issued it
	for _, r := range s.replicas {
		before[r.clientCredentials(t)] = r.name
	}
	initial := kids(s.replicas[0].jwks(t))

	out, err := s.cp.Kubectl(nil, "annotate", "secret", keySecret, "-n", namespace,
		fmt.Sprintf("oauth.latchkey.dev/rotate-keys=%d", time.Now().UnixNano()), "--overwrite")
	require.NoError(t, err, out)

	// Every replica publishes the same key set, with a key that was not there before.
	var sets [][]string
	require.Eventually(t, func() bool {
		sets = sets[:0]
		for _, r := range s.replicas {
			k := kids(r.jwks(t))
			slices.Sort(k)
			sets = append(sets, k)
		}
		grew := slices.ContainsFunc(sets[0], func(k string) bool { return !slices.Contains(initial, k) })
		return grew && slices.Equal(sets[0], sets[1]) && slices.Equal(sets[0], sets[2])
	}, 30*time.Second, 200*time.Millisecond, "the replicas' key sets converge to a rotated set; initial %v, last %v", initial, sets)

	for tok, issuer := range before {
		require.Contains(t, initial, kidOf(t, tok), "a token of %s from before the rotation is signed by a key of before", issuer)
		for _, r := range s.replicas {
			verifyWith(t, r.jwks(t), tok, s.issuer)
			assert.True(t, r.introspect(t, tok), "a token of %s from before the rotation is active at %s", issuer, r.name)
		}
	}
	// Tokens issued after the rotation verify everywhere too.
	for _, signer := range s.replicas {
		tok := signer.clientCredentials(t)
		for _, r := range s.replicas {
			verifyWith(t, r.jwks(t), tok, s.issuer)
		}
	}
}

// Retiring the key that signs now (annotation oauth.latchkey.dev/retire-keys, with kubectl) takes
// it out of every replica within a bounded wait, with no publish lead: it leaves the JWKS, new
// tokens have another kid and verify, and a token it signed is refused at userinfo and inactive
// at introspection.
func TestRetiringTheSigningKeyCutsItOnEveryReplicaAtOnce(t *testing.T) {
	s := env
	at := s.replicas[1].tokens(t).str("access_token")
	leaked := kidOf(t, at)
	for _, r := range s.replicas {
		require.Equal(t, http.StatusOK, r.userinfo(t, at), "userinfo at %s before the retirement", r.name)
		require.True(t, r.introspect(t, at), "active at %s before the retirement", r.name)
	}

	s.cp.MustKubectl(t, nil, "annotate", "secret", keySecret, "-n", namespace, "oauth.latchkey.dev/retire-keys="+leaked, "--overwrite")
	start := time.Now()
	// Polled in the test's goroutine (not in assert.Eventually's), so that a failed request
	// fails the test with its own message.
	var holding []string
	for deadline := start.Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		holding = holding[:0]
		for _, r := range s.replicas {
			published := slices.Contains(kids(r.jwks(t)), leaked)
			signs := kidOf(t, r.clientCredentials(t)) == leaked
			status := r.userinfo(t, at)
			if published || signs || status != http.StatusUnauthorized {
				holding = append(holding, fmt.Sprintf("%s: published %v, signs %v, userinfo %d", r.name, published, signs, status))
			}
		}
		if len(holding) == 0 || time.Now().After(deadline) {
			break
		}
	}
	require.Empty(t, holding, "every replica drops the retired key %s within 20 s", leaked)
	t.Logf("every replica dropped the retired key within %s", time.Since(start).Round(time.Millisecond))

	for _, r := range s.replicas {
		jwks := r.jwks(t)
		assert.NotContains(t, kids(jwks), leaked, "%s no longer publishes the retired key", r.name)
		assert.Equal(t, http.StatusUnauthorized, r.userinfo(t, at), "userinfo at %s refuses a token of the retired key", r.name)
		assert.False(t, r.introspect(t, at), "a token of the retired key is inactive at %s", r.name)
		tok := r.clientCredentials(t)
		assert.NotEqual(t, leaked, kidOf(t, tok), "%s signs with another key", r.name)
		for _, v := range s.replicas {
			verifyWith(t, v.jwks(t), tok, s.issuer)
		}
		fresh := r.tokens(t).str("access_token")
		assert.Equal(t, http.StatusOK, r.userinfo(t, fresh), "userinfo at %s accepts a token of the new key", r.name)
	}
	states := s.cp.MustKubectl(t, nil, "get", "secret", keySecret, "-n", namespace,
		"-o", `jsonpath={.metadata.annotations.oauth\.latchkey\.dev/key-states}`)
	type keyState struct {
		ID           string `json:"kid"`
		State        string `json:"state"`
		RetiredEarly bool   `json:"retiredEarly"`
	}
	var recorded []keyState
	require.NoError(t, json.Unmarshal([]byte(states), &recorded), states)
	i := slices.IndexFunc(recorded, func(k keyState) bool { return k.ID == leaked })
	require.GreaterOrEqual(t, i, 0, "key-states records %s: %s", leaked, states)
	assert.Equal(t, "retired", recorded[i].State)
	assert.True(t, recorded[i].RetiredEarly)
}

func TestSIGTERMDrainsAnInFlightRequestAndTheProcessExitsCleanly(t *testing.T) {
	s := env
	r, err := s.startReplica("replica-drain")
	require.NoError(t, err)
	t.Cleanup(r.stop)
	require.NoError(t, r.waitServes(30*time.Second))

	body := url.Values{"grant_type": {"client_credentials"}, "scope": {"read:projects"}}.Encode()
	half := len(body) / 2
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	require.NoError(t, err)
	defer conn.Close()                                                        //nolint:errcheck // test
	req, err := http.NewRequest(http.MethodPost, r.base+"/oauth2/token", nil) //nolint:noctx // only for its header
	require.NoError(t, err)
	req.SetBasicAuth(serviceID, serviceSecret)
	head := fmt.Sprintf("POST /oauth2/token HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		req.Host, req.Header.Get("Authorization"), len(body))
	_, err = conn.Write([]byte(head + body[:half]))
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // the server has read the headers and waits for the body

	signalled := time.Now()
	require.NoError(t, r.srv.Signal(syscall.SIGTERM))
	time.Sleep(500 * time.Millisecond) // the server is draining
	_, err = conn.Write([]byte(body[half:]))
	require.NoError(t, err, "the in-flight connection stays open while draining")

	require.NoError(t, conn.SetReadDeadline(time.Now().Add(shutdownTimeout)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "a response to the in-flight request")
	defer resp.Body.Close() //nolint:errcheck // test
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the in-flight request completes")

	select {
	case <-r.srv.Exited():
		assert.NoError(t, r.srv.Err(), "exit status 0")
		assert.Equal(t, 0, r.srv.ExitCode())
		assert.Less(t, time.Since(signalled), shutdownTimeout, "the process exits within --shutdown-timeout")
	case <-time.After(shutdownTimeout - time.Since(signalled)):
		t.Fatalf("%s did not exit within --shutdown-timeout %s of SIGTERM", r.name, shutdownTimeout)
	}
}
