package handler

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/userauth"
)

// ccRequest posts a client_credentials request with Basic credentials through c.
func ccRequest(t *testing.T, c *http.Client, srv *httptest.Server, id, secret string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+oauth2.TokenPath,
		strings.NewReader("grant_type=client_credentials"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", formType)
	req.Header.Set("Authorization", basic(id, secret))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	out := response{status: res.StatusCode, header: res.Header}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out.body))
	return out
}

func retryAfter(t *testing.T, res response) time.Duration {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, res.status, "%v", res.body)
	assert.Equal(t, "temporarily_unavailable", res.body["error"])
	n, err := strconv.Atoi(res.header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", res.header.Get("Retry-After"))
	require.Positive(t, n)
	return time.Duration(n) * time.Second
}

// TestClientSecretGuessingIsThrottled is finding 1 of the hardening issue: wrong secrets from
// one address are refused with 429 and an exponential back-off, the right secret included while
// the block lasts, while the client keeps working from another address.
func TestClientSecretGuessingIsThrottled(t *testing.T) {
	aud := &recordingAuditor{}
	e := newUserEnv(t, func(c *Config) { c.Audit = aud })
	policy := oauth2.DefaultClientBruteForce()
	attacker, legit := e.srv.Client(), harness.ClientFrom("127.0.0.2")

	for i := range policy.PerIdentityAddress {
		res := ccRequest(t, attacker, e.srv, resourceID, "guess-"+strconv.Itoa(i))
		require.Equal(t, http.StatusUnauthorized, res.status, "guess %d", i)
		require.Equal(t, "invalid_client", res.body["error"])
	}
	first := retryAfter(t, ccRequest(t, attacker, e.srv, resourceID, "guess-more"))
	assert.LessOrEqual(t, first, policy.Backoff)
	t.Run("the right secret is refused from the blocked address while the block lasts", func(t *testing.T) {
		retryAfter(t, ccRequest(t, attacker, e.srv, resourceID, resourceSec))
	})
	t.Run("the client keeps working from another address", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, ccRequest(t, legit, e.srv, resourceID, resourceSec).status)
	})
	t.Run("the next block after the first is longer: the back-off doubles", func(t *testing.T) {
		e.clock.Advance(first)
		assert.Equal(t, http.StatusUnauthorized, ccRequest(t, attacker, e.srv, resourceID, "guess-again").status)
		assert.Greater(t, retryAfter(t, ccRequest(t, attacker, e.srv, resourceID, "guess-again")), first)
	})
	t.Run("after the block a success from the address resets its count", func(t *testing.T) {
		e.clock.Advance(policy.MaxBackoff)
		require.Equal(t, http.StatusOK, ccRequest(t, attacker, e.srv, resourceID, resourceSec).status)
		assert.Equal(t, http.StatusUnauthorized, ccRequest(t, attacker, e.srv, resourceID, "guess").status,
			"the count starts over")
	})
	t.Run("the failures and refusals are audited, with the client ID of registered clients only", func(t *testing.T) {
		ccRequest(t, attacker, e.srv, "no-such-client", "x")
		aud.mu.Lock()
		defer aud.mu.Unlock()
		var failed, limited int
		for _, ev := range aud.events {
			switch ev.Event {
			case oauth2.AuditClientAuthenticationFailed:
				failed++
				assert.Contains(t, []string{resourceID, ""}, ev.ClientID)
				assert.Contains(t, ev.Reason, "client_secret_basic")
				assert.NotEmpty(t, ev.RemoteAddr)
			case oauth2.AuditRateLimited:
				limited++
				assert.Equal(t, resourceID, ev.ClientID)
			}
			assert.NotContains(t, ev.ClientID, "no-such-client")
		}
		assert.GreaterOrEqual(t, failed, policy.PerIdentityAddress+2)
		assert.GreaterOrEqual(t, limited, 3)
	})
}

// TestAnAddressGuessingManyClientsIsThrottled: failures across client IDs from one address
// block the address.
func TestAnAddressGuessingManyClientsIsThrottled(t *testing.T) {
	e := newUserEnv(t)
	policy := oauth2.DefaultClientBruteForce()
	attacker := e.srv.Client()
	for i := range policy.PerAddress {
		res := ccRequest(t, attacker, e.srv, "client-"+strconv.Itoa(i), "x")
		require.Equal(t, http.StatusUnauthorized, res.status, "guess %d", i)
	}
	retryAfter(t, ccRequest(t, attacker, e.srv, resourceID, resourceSec))
	assert.Equal(t, http.StatusOK, ccRequest(t, harness.ClientFrom("127.0.0.2"), e.srv, resourceID, resourceSec).status)
}

// TestGuessesFromManyAddressesSlowDownButNeverLockTheClientOut: failures of one client from
// every address are answered ever later, never refused; the client's own requests still work.
func TestGuessesFromManyAddressesSlowDownButNeverLockTheClientOut(t *testing.T) {
	e := newUserEnv(t, func(c *Config) { c.Login.ClientIPHeader = "X-Forwarded-For" })
	policy := oauth2.DefaultClientBruteForce()
	c := e.srv.Client()
	var last time.Duration
	for i := range policy.SlowAfter + 2 {
		start := time.Now()
		res := ccRequest(t, c, e.srv, resourceID, "x", "X-Forwarded-For", "198.51.100."+strconv.Itoa(i+1))
		require.Equal(t, http.StatusUnauthorized, res.status, "attempt %d from its own address is never refused", i)
		last = time.Since(start)
	}
	assert.GreaterOrEqual(t, last, 2*policy.SlowDelay, "failures past SlowAfter are slowed down, doubling")
	res := ccRequest(t, c, e.srv, resourceID, resourceSec, "X-Forwarded-For", "203.0.113.9")
	assert.Equal(t, http.StatusOK, res.status, "the right secret is never refused for failures elsewhere")
}

// TestADeclaredAuthMethodIsEnforced is finding 8: a client that declares client_secret_basic
// cannot authenticate with client_secret_post, and the other way round; a client that declares
// none accepts both (the seeds mix them).
func TestADeclaredAuthMethodIsEnforced(t *testing.T) {
	e := newUserEnv(t)
	for _, tt := range []struct {
		name, method string
		basic        bool
		want         int
	}{
		{"client_secret_basic declared, Basic used", oauth2.AuthMethodBasic, true, http.StatusOK},
		{"client_secret_basic declared, the body used", oauth2.AuthMethodBasic, false, http.StatusBadRequest},
		{"client_secret_post declared, the body used", oauth2.AuthMethodPost, false, http.StatusOK},
		{"client_secret_post declared, Basic used", oauth2.AuthMethodPost, true, http.StatusUnauthorized},
		{"nothing declared, Basic used", "", true, http.StatusOK},
		{"nothing declared, the body used", "", false, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			snap := e.reg.Snapshot()
			c, _ := snap.Client(resourceID)
			declared := *c
			declared.AuthMethod = tt.method
			e.reg.PutClient(declared)
			rq := request{path: oauth2.TokenPath, contentType: formType}
			form := url.Values{"grant_type": {"client_credentials"}}
			if tt.basic {
				rq.authorization = basic(resourceID, resourceSec)
			} else {
				form.Set("client_id", resourceID)
				form.Set("client_secret", resourceSec)
			}
			rq.body = form.Encode()
			res := doT(t, e.srv, rq)
			assert.Equal(t, tt.want, res.status, "%v", res.body)
			if tt.want != http.StatusOK {
				assert.Equal(t, "invalid_client", res.body["error"])
				assert.Contains(t, res.body["error_description"], tt.method)
			}
		})
	}
}

// TestTokenRequestsFollowTheClientsRateLimit: an OAuthClient's rateLimit (and the server's
// default for clients without one) bounds its token requests: 429 with Retry-After when the
// bucket is empty.
func TestTokenRequestsFollowTheClientsRateLimit(t *testing.T) {
	aud := &recordingAuditor{}
	e := newUserEnv(t, func(c *Config) { c.Audit, c.ClientRateLimit = aud, registry.RateLimit{PerMinute: 6000, Burst: 100} })
	snap := e.reg.Snapshot()
	c, _ := snap.Client(resourceID)
	limited := *c
	limited.RateLimit = registry.RateLimit{PerMinute: 60, Burst: 2}
	e.reg.PutClient(limited)
	cc := e.srv.Client()

	for i := range 2 {
		require.Equal(t, http.StatusOK, ccRequest(t, cc, e.srv, resourceID, resourceSec).status, "request %d of the burst", i)
	}
	wait := retryAfter(t, ccRequest(t, cc, e.srv, resourceID, resourceSec))
	assert.Equal(t, time.Second, wait, "one request a second comes back")
	e.clock.Advance(time.Second)
	assert.Equal(t, http.StatusOK, ccRequest(t, cc, e.srv, resourceID, resourceSec).status)
	retryAfter(t, ccRequest(t, cc, e.srv, resourceID, resourceSec))

	t.Run("a client without a limit of its own gets the server's default", func(t *testing.T) {
		for i := range 100 {
			require.Equal(t, http.StatusOK, ccRequest(t, cc, e.srv, appID, appSecret).status, "request %d", i)
		}
		retryAfter(t, ccRequest(t, cc, e.srv, appID, appSecret))
	})
	t.Run("a public client's limit is per address: a caller naming its ID cannot spend it for everyone", func(t *testing.T) {
		spa, _ := e.reg.Snapshot().Client(spaID)
		public := *spa
		public.RateLimit = registry.RateLimit{PerMinute: 1, Burst: 1}
		e.reg.PutClient(public)
		grant := func(c *http.Client) response {
			return doWith(t, c, e.srv, request{path: oauth2.TokenPath, contentType: formType,
				body: url.Values{"grant_type": {"password"}, "client_id": {spaID}, "username": {aliceName}, "password": {alicePassword}}.Encode()})
		}
		require.Equal(t, http.StatusOK, grant(cc).status)
		retryAfter(t, grant(cc))
		assert.Equal(t, http.StatusOK, grant(harness.ClientFrom("127.0.0.2")).status, "another address has its own bucket")
	})
	t.Run("the refusals are audited as rate_limited", func(t *testing.T) {
		aud.mu.Lock()
		defer aud.mu.Unlock()
		n := 0
		for _, ev := range aud.events {
			if ev.Event == oauth2.AuditRateLimited {
				n++
				assert.Contains(t, ev.Reason, "client rate limit")
			}
		}
		assert.Equal(t, 4, n)
	})
}

// Finding 2 of the hardening issue: failures of alice's password from an attacker's address lock
// that address out of alice's account, never alice herself, who signs in from another address,
// through the password grant and through the login page alike.
func TestAnAttackerCannotLockAUserOut(t *testing.T) {
	t.Run("The password grant still lets alice in from her own address", func(t *testing.T) {
		e := newUserEnv(t)
		grant := func(c *http.Client, pw string) response {
			return doWith(t, c, e.srv, request{path: oauth2.TokenPath, contentType: formType, authorization: basic(appID, appSecret),
				body: url.Values{"grant_type": {"password"}, "username": {aliceName}, "password": {pw}}.Encode()})
		}
		attacker, alice := e.srv.Client(), harness.ClientFrom("127.0.0.2")
		for range 3 * userauth.DefaultMaxFailuresPerUser {
			grant(attacker, "guess")
		}
		assertLocked(t, grant(attacker, alicePassword))
		assert.Equal(t, http.StatusOK, grant(alice, alicePassword).status, "alice from 127.0.0.2")
		assertLocked(t, grant(attacker, alicePassword))
	})
	t.Run("The login page still lets alice in from her own address", func(t *testing.T) {
		env := newFlowEnv(t)
		attacker := env.browser(t)
		p := env.loginPage(t, attacker)
		for range 3 * userauth.DefaultMaxFailuresPerUser {
			p = attacker.Login(p, ownerName, "guess")
		}
		p = attacker.Login(p, ownerName, ownerPassword)
		require.Equal(t, http.StatusTooManyRequests, p.Status)
		assert.Contains(t, p.Body, msgLocked)

		alice := harness.NewBrowser(t, harness.ClientFrom("127.0.0.2"), env.srv.URL)
		p = alice.Login(env.loginPage(t, alice), ownerName, ownerPassword)
		assert.True(t, p.IsConsent(), "alice from 127.0.0.2 signs in: %s", p.Body)
	})
}
