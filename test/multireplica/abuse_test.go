package multireplica

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The clients of the abuse tests, each with its own client ID, so that their failures and
// rate limits touch no other test. Their sources are loopback addresses no other test uses
// (Linux answers on all of 127.0.0.0/8): the per-address limits never reach 127.0.0.1.
const (
	targetID     = "abuse-target"
	targetSecret = "abuse-target-secret-4a1f"
	limitedID    = "rate-limited"
	limitedRPM   = 1200 // 20 per second
	limitedBurst = 20
	legitAddr    = "127.0.0.2"
	attackAddr   = "127.0.0.3"
	attackAddr2  = "127.0.0.4"
	probeAddr    = "127.0.0.5" // polls until the replicas serve a new client
	// readinessAddr polls until a replica serves the samples (waitServes).
	readinessAddr = "127.0.0.6"
)

// abuseClients are the OAuthClients of the abuse tests and their Secrets.
func abuseClients() []byte {
	var b strings.Builder
	for _, c := range []struct{ id, rateLimit string }{
		{targetID, ""},
		{limitedID, fmt.Sprintf("  rateLimit: {requestsPerMinute: %d, burst: %d}\n", limitedRPM, limitedBurst)},
	} {
		fmt.Fprintf(&b, `apiVersion: v1
kind: Secret
metadata: {name: %[1]s-oauth-client, namespace: default}
stringData: {client-secret: %[2]s}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: %[1]s, namespace: default}
spec:
  clientID: %[1]s
  type: Confidential
  grantTypes: [client_credentials]
  scopes: ["read:projects"]
  tokenEndpointAuthMethod: client_secret_basic
  secretPolicy: External
  secretRef: {name: %[1]s-oauth-client, key: client-secret}
%[3]s---
`, c.id, targetSecret, c.rateLimit)
	}
	return []byte(b.String())
}

// applyAbuseClients applies the abuse tests' clients once and waits until every replica serves
// them.
var applyAbuseClients = sync.OnceValue(func() error { //nolint:gochecknoglobals // once per package run
	s := env
	if out, err := s.cp.Kubectl(abuseClients(), "apply", "-f", "-"); err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, out)
	}
	probe := harness.ClientFrom(probeAddr)
	for _, id := range []string{targetID, limitedID} {
		for _, r := range s.replicas {
			deadline := time.Now().Add(30 * time.Second)
			for {
				res, err := r.postFormWith(context.Background(), probe, "/oauth2/token", clientAuth{id, targetSecret},
					url.Values{"grant_type": {"client_credentials"}})
				if err == nil && res.status == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("%s does not serve %s: %v %v", r.name, id, res, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	return nil
})

func retryAfterOf(t *testing.T, res apiResponse) time.Duration {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, res.status, "%s", res)
	assert.Equal(t, "temporarily_unavailable", res.str("error"))
	n, err := strconv.Atoi(res.header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", res.header.Get("Retry-After"))
	require.Positive(t, n)
	return time.Duration(n) * time.Second
}

// TestSecretGuessingIsThrottledAcrossReplicasWhileTheClientKeepsWorking is the brute-force part
// of the hardening issue against three replicas sharing Redis: one address guessing a client's
// secret round-robin over the replicas gets as many failures as one replica would allow, then
// 429 with a Retry-After that grows, everywhere; the right secret from another address keeps
// getting tokens at every replica all along; the failures reach the audit log and, past the
// threshold, a Warning Event on the OAuthClient.
func TestSecretGuessingIsThrottledAcrossReplicasWhileTheClientKeepsWorking(t *testing.T) {
	s := env
	require.NoError(t, applyAbuseClients())
	attacker, attacker2, legit := harness.ClientFrom(attackAddr), harness.ClientFrom(attackAddr2), harness.ClientFrom(legitAddr)
	cc := url.Values{"grant_type": {"client_credentials"}}
	post := func(c *http.Client, r *replica, secret string) apiResponse {
		t.Helper()
		res, err := r.postFormWith(t.Context(), c, "/oauth2/token", clientAuth{targetID, secret}, cc)
		require.NoError(t, err)
		return res
	}

	var stop atomic.Bool
	var legitOK, legitOther atomic.Int64
	var legitLast atomic.Value
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			res, err := s.replicas[i%len(s.replicas)].postFormWith(context.Background(), legit, "/oauth2/token",
				clientAuth{targetID, targetSecret}, cc)
			if err == nil && res.status == http.StatusOK {
				legitOK.Add(1)
			} else {
				legitOther.Add(1)
				legitLast.Store(fmt.Sprint(res, err))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	failures := 0
	var first apiResponse
	for i := 0; i < 50; i++ {
		res := post(attacker, s.replicas[i%len(s.replicas)], "guess-"+strconv.Itoa(i))
		if res.status == http.StatusUnauthorized {
			assert.Equal(t, "invalid_client", res.str("error"))
			failures++
			continue
		}
		first = res
		break
	}
	wait := retryAfterOf(t, first)
	// The default policy allows 5 failures per client and address; counted per replica it
	// would be 15.
	assert.Equal(t, 5, failures, "failures from one address before the 429, counted across the replicas")
	for _, r := range s.replicas {
		assert.Equal(t, http.StatusTooManyRequests, post(attacker, r, targetSecret).status,
			"%s refuses the blocked address, even with the right secret", r.name)
	}
	time.Sleep(wait + 100*time.Millisecond)
	res := post(attacker, s.replicas[1], "guess-after-wait")
	assert.Equal(t, http.StatusUnauthorized, res.status, "after Retry-After one more guess is checked: %s", res)
	next := retryAfterOf(t, post(attacker, s.replicas[2], "guess-again"))
	assert.Greater(t, next, wait, "the back-off grows")

	// A second address adds its own five failures: ten from all addresses cross the Event
	// threshold, and the client is slowed down, never refused, for its own address.
	for i := range 5 {
		require.Equal(t, http.StatusUnauthorized, post(attacker2, s.replicas[i%len(s.replicas)], "x"+strconv.Itoa(i)).status)
	}
	// The legitimate client gets tokens after the second address's failures too (the client
	// is slowed down for failures, never refused for them).
	after := legitOK.Load()
	assert.Eventually(t, func() bool { return legitOK.Load() >= after+int64(len(s.replicas)) }, 10*time.Second, 20*time.Millisecond,
		"the legitimate client keeps getting tokens at every replica after the attack")
	stop.Store(true)
	wg.Wait()
	assert.Zero(t, legitOther.Load(), "the legitimate client from %s is never refused: %v", legitAddr, legitLast.Load())
	assert.Positive(t, after, "the legitimate client got tokens during the attack")
	for _, r := range s.replicas {
		assert.Equal(t, http.StatusOK, post(legit, r, targetSecret).status, "%s serves the right secret from %s", r.name, legitAddr)
	}
	t.Logf("the legitimate client got %d tokens while the attacker guessed", legitOK.Load())

	assert.Eventually(t, func() bool {
		out, err := s.cp.Kubectl(nil, "get", "events", "-n", "default", "--field-selector",
			"involvedObject.name="+targetID+",reason=ClientAuthenticationFailures", "-o", "jsonpath={.items[*].type}")
		return err == nil && strings.Contains(out, "Warning")
	}, 20*time.Second, 200*time.Millisecond, "a Warning Event ClientAuthenticationFailures on the OAuthClient")

	var logs strings.Builder
	for _, r := range s.replicas {
		logs.WriteString(r.srv.Tail(1 << 20))
	}
	all := logs.String()
	assert.Contains(t, all, `"client_authentication_failed"`)
	assert.Contains(t, all, `"rate_limited"`)
	assert.Contains(t, all, attackAddr)
	assert.NotContains(t, all, "guess-", "no guessed secret is logged")
	assert.NotContains(t, all, targetSecret, "no secret is logged")
}

// TestAClientsRateLimitHoldsAcrossReplicas sends token requests of a client with spec.rateLimit
// at two and a half times its rate for 30 seconds, round-robin over the three replicas: the
// tokens issued stay within 10% of the declared rate (plus the burst), the rest are 429 with
// Retry-After, and every replica refuses some, which one bucket per replica would not.
func TestAClientsRateLimitHoldsAcrossReplicas(t *testing.T) {
	s := env
	require.NoError(t, applyAbuseClients())
	const (
		duration = 30 * time.Second
		interval = 20 * time.Millisecond // 50 requests per second
	)
	c := harness.ClientFrom(legitAddr)
	cc := url.Values{"grant_type": {"client_credentials"}}
	// The probe of applyAbuseClients spent some of the burst; let it refill.
	time.Sleep(time.Duration(limitedBurst) * time.Minute / limitedRPM)

	var ok, limited, other atomic.Int64
	var badRetryAfter atomic.Int64
	var lastOther atomic.Value
	perReplica := make([]atomic.Int64, len(s.replicas))
	var wg sync.WaitGroup
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	start := time.Now()
	for i := 0; time.Since(start) < duration; i++ {
		<-ticker.C
		wg.Go(func() {
			r := i % len(s.replicas)
			res, err := s.replicas[r].postFormWith(context.Background(), c, "/oauth2/token", clientAuth{limitedID, targetSecret}, cc)
			switch {
			case err != nil:
				other.Add(1)
				lastOther.Store(err.Error())
			case res.status == http.StatusOK:
				ok.Add(1)
			case res.status == http.StatusTooManyRequests:
				limited.Add(1)
				perReplica[r].Add(1)
				if n, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || n < 1 {
					badRetryAfter.Add(1)
				}
			default:
				other.Add(1)
				lastOther.Store(res.String())
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	declared := float64(limitedRPM) / 60 * elapsed.Seconds()
	t.Logf("over %s: %d issued, %d refused (429), %d other; declared %.0f plus a burst of %d; measured rate %.2f/s for a declared %.2f/s",
		elapsed.Round(time.Millisecond), ok.Load(), limited.Load(), other.Load(), declared, limitedBurst,
		float64(ok.Load()-limitedBurst)/elapsed.Seconds(), float64(limitedRPM)/60)
	assert.Zero(t, other.Load(), "every answer is 200 or 429: %v", lastOther.Load())
	assert.Zero(t, badRetryAfter.Load(), "every 429 has a Retry-After of at least a second")
	assert.GreaterOrEqual(t, float64(ok.Load()), 0.9*declared, "at least 90%% of the declared rate is served")
	assert.LessOrEqual(t, float64(ok.Load()), 1.1*declared+limitedBurst, "at most 110%% of the declared rate plus the burst")
	for i, r := range s.replicas {
		assert.Positive(t, perReplica[i].Load(), "%s refuses requests past the shared limit", r.name)
	}
}
