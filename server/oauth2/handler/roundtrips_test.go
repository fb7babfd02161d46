package handler

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	redisstore "github.com/latchkey-dev/latchkey/server/store/redis"
)

// codeSPA is a public client of the code flow (PKCE, refresh tokens), registered by
// addCodeClients beside benchCodeClient's confidential one; limitedSPA is the same with a rate
// limit.
const (
	codeSPA    = "code-spa"
	limitedSPA = "code-spa-limited"
)

// replica is one replica of the server over a shared redis-server: its own Store (and
// so its own known records), handler and keys, the same clients.
type replica struct {
	*userEnv
	st *redisstore.Store
}

// newRedisReplicas returns n replicas over one new redis-server, and the server.
func newRedisReplicas(t *testing.T, n int, mutate ...func(*Config)) ([]replica, *harness.Redis) {
	srv := harness.NewRedis(t)
	out := make([]replica, n)
	for i := range out {
		st, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}, KeyPrefix: "rt:"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		require.NoError(t, st.LoadScripts(t.Context()))
		e := newUserEnv(t, append([]func(*Config){withRedis(st)}, mutate...)...)
		addCodeClients(e.reg)
		out[i] = replica{userEnv: e, st: st}
	}
	return out, srv
}

// addCodeClients registers codeSPA and benchCodeClient's ES256 client.
func addCodeClients(reg *registry.Registry) {
	benchCodeClient(reg, keys.ES256)
	for _, id := range []string{codeSPA, limitedSPA} {
		c := registry.Client{
			Source: "bench/" + id, Namespace: "bench", ID: id, Type: registry.Public, AuthMethod: oauth2.AuthMethodNone,
			GrantTypes: []string{"authorization_code", "refresh_token"}, RedirectURIs: []string{benchRedirect},
			Scopes: []string{"openid", "profile", projectScope},
		}
		if id == limitedSPA {
			c.RateLimit = registry.RateLimit{PerMinute: 600, Burst: 100}
		}
		reg.PutClient(c)
	}
}

// exchangeCode posts the exchange body of storeBenchCode as the client (codeSPA by client_id,
// the confidential one with client_secret_basic).
func (e *userEnv) exchangeCode(t testing.TB, clientID string, body []byte) response {
	t.Helper()
	rq := request{path: oauth2.TokenPath, contentType: formType, body: string(body)}
	if clientID == codeSPA || clientID == limitedSPA {
		rq.body += "&" + url.Values{"client_id": {clientID}}.Encode()
	} else {
		rq.authorization = basic(clientID, commonSecret)
	}
	return doT(t, e.srv, rq)
}

// refreshCodeSPA refreshes a token of codeSPA (client_id in the body).
func (e *userEnv) refreshCodeSPA(t testing.TB, rt string) response {
	t.Helper()
	return doT(t, e.srv, request{path: oauth2.TokenPath, contentType: formType,
		body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {codeSPA}}.Encode()})
}

// serverCounts reads what the redis-server counted over f: its reply writes (round trips) and
// its EVALSHA calls.
func serverCounts(t *testing.T, srv *harness.Redis, f func()) (roundTrips, scripts int64) {
	t.Helper()
	c := srv.Client(&goredis.Options{MaxRetries: -1})
	defer func() { _ = c.Close() }()
	before, err := srv.Stats(t.Context(), c)
	require.NoError(t, err)
	f()
	after, err := srv.Stats(t.Context(), c)
	require.NoError(t, err)
	d := after.Sub(before)
	return d.Writes, d.Calls["evalsha"]
}

// TestRedisRoundTripsPerGrant counts, as redis-server itself counts them (INFO stats and
// commandstats), the round trips of each grant at the handler level.
func TestRedisRoundTripsPerGrant(t *testing.T) {
	r, srv := newRedisReplicas(t, 2)
	a, b := r[0], r[1]
	limited := registry.Client{
		Source: "bench/limited", Namespace: "bench", ID: "limited", Type: registry.Confidential,
		GrantTypes: []string{"client_credentials"}, Scopes: []string{projectScope},
		SecretHash: registry.HashSecret([]byte(commonSecret)), HasSecret: true,
		RateLimit: registry.RateLimit{PerMinute: 600, Burst: 100},
	}
	a.reg.PutClient(limited)
	benchID := "code-" + keys.ES256
	tests := []struct {
		name string
		want int64
		run  func(t *testing.T) func() response
	}{
		{"client_credentials of a confidential client with a rate limit is one", 1, func(t *testing.T) func() response {
			return func() response {
				return doT(t, a.srv, request{path: oauth2.TokenPath, contentType: formType, authorization: basic(limited.ID, commonSecret),
					body: "grant_type=client_credentials"})
			}
		}},
		{"a public client's code exchange on the replica that stored the code is one", 1, func(t *testing.T) func() response {
			body := storeBenchCode(t, a.st, codeSPA, time.Now())
			return func() response { return a.exchangeCode(t, codeSPA, body) }
		}},
		{"a public client's code exchange with a rate limit on the replica that stored the code is one, its rate limit included", 1,
			func(t *testing.T) func() response {
				body := storeBenchCode(t, a.st, limitedSPA, time.Now())
				return func() response { return a.exchangeCode(t, limitedSPA, body) }
			}},
		{"a public client's code exchange on another replica is two: the code is taken, then the token stored", 2, func(t *testing.T) func() response {
			body := storeBenchCode(t, a.st, codeSPA, time.Now())
			return func() response { return b.exchangeCode(t, codeSPA, body) }
		}},
		{"a confidential client's code exchange on the replica that stored the code is one, its authentication's record included", 1,
			func(t *testing.T) func() response {
				body := storeBenchCode(t, a.st, benchID, time.Now())
				return func() response { return a.exchangeCode(t, benchID, body) }
			}},
		{"a public client's refresh on the replica that stored the token is one", 1, func(t *testing.T) func() response {
			rt := str(a.passwordLogin(t, spaID, aliceName, alicePassword, projectScope)["refresh_token"])
			return func() response { return a.refresh(t, spaID, rt, "") }
		}},
		{"a public client's refresh of the token another replica rotated to is one", 1, func(t *testing.T) func() response {
			rt := str(a.passwordLogin(t, spaID, aliceName, alicePassword, projectScope)["refresh_token"])
			res := b.refresh(t, spaID, rt, "")
			require.Equal(t, http.StatusOK, res.status, "%v", res.body)
			next := str(res.body["refresh_token"])
			return func() response { return b.refresh(t, spaID, next, "") }
		}},
		{"a public client's refresh on another replica is two: the token is read, then rotated", 2, func(t *testing.T) func() response {
			rt := str(a.passwordLogin(t, spaID, aliceName, alicePassword, projectScope)["refresh_token"])
			return func() response { return b.refresh(t, spaID, rt, "") }
		}},
		{"a confidential client's refresh on another replica is two: the token is read, then rotated with the authentication's record", 2,
			func(t *testing.T) func() response {
				rt := str(a.passwordLogin(t, appID, aliceName, alicePassword, projectScope)["refresh_token"])
				return func() response { return b.refresh(t, appID, rt, "") }
			}},
		{"a confidential client's code exchange on another replica is two: the code taken with the authentication's record, then the token stored", 2,
			func(t *testing.T) func() response {
				body := storeBenchCode(t, a.st, benchID, time.Now())
				return func() response { return b.exchangeCode(t, benchID, body) }
			}},
		{"a confidential client's refresh on the replica that stored the token is one, its authentication's record included", 1,
			func(t *testing.T) func() response {
				rt := str(a.passwordLogin(t, appID, aliceName, alicePassword, projectScope)["refresh_token"])
				return func() response { return a.refresh(t, appID, rt, "") }
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call := tt.run(t)
			var res response
			trips, scripts := serverCounts(t, srv, func() { res = call() })
			require.Equal(t, http.StatusOK, res.status, "%v", res.body)
			assert.Equal(t, tt.want, trips, "round trips (redis-server's reply writes)")
			assert.Equal(t, tt.want, scripts, "EVALSHA calls")
		})
	}
}

// failingSigner is a keyring whose ES256 key can be taken away (signing with it then fails,
// temporarily_unavailable) and given back.
type failingSigner struct {
	kr        *keys.Keyring
	set       *keys.Set
	withoutES *keys.Set
}

func newFailingSigner(t *testing.T) *failingSigner {
	set, err := keys.Generate(keys.SupportedAlgorithms(), time.Now().Add(-time.Minute))
	require.NoError(t, err)
	kr := keys.NewKeyring()
	require.NoError(t, kr.Load(set))
	without := &keys.Set{}
	for _, k := range set.Keys {
		if k.Algorithm != keys.ES256 {
			without.Keys = append(without.Keys, k)
		}
	}
	return &failingSigner{kr: kr, set: set, withoutES: without}
}

func (f *failingSigner) fail(t *testing.T)    { require.NoError(t, f.kr.Load(f.withoutES)) }
func (f *failingSigner) recover(t *testing.T) { require.NoError(t, f.kr.Load(f.set)) }

// TestAnExchangeWhoseSigningFailsUsesNothingUp: when signing fails, the refresh token (and, when
// the replica knows the code, the code) is left as it was, so the client's retry works;
// whichever path the replica takes (the record known or read from the store).
func TestAnExchangeWhoseSigningFailsUsesNothingUp(t *testing.T) {
	type setup struct {
		issuer, exchanger *userEnv
		st                store.Store
	}
	backends := []struct {
		name string
		new  func(t *testing.T, f *failingSigner) setup
	}{
		{"memory", func(t *testing.T, f *failingSigner) setup {
			e := newUserEnv(t, func(c *Config) { c.Keys = f.kr })
			addCodeClients(e.reg)
			return setup{e, e, e.store}
		}},
		{"redis, on the replica that stored the record", func(t *testing.T, f *failingSigner) setup {
			r, _ := newRedisReplicas(t, 1, func(c *Config) { c.Keys = f.kr })
			return setup{r[0].userEnv, r[0].userEnv, r[0].st}
		}},
		{"redis, on another replica", func(t *testing.T, f *failingSigner) setup {
			r, _ := newRedisReplicas(t, 2, func(c *Config) { c.Keys = f.kr })
			return setup{r[0].userEnv, r[1].userEnv, r[0].st}
		}},
	}
	for _, bk := range backends {
		t.Run(bk.name+": a refresh token stays active and its retry works", func(t *testing.T) {
			f := newFailingSigner(t)
			s := bk.new(t, f)
			rt := str(s.issuer.passwordLogin(t, esAppID, aliceName, alicePassword, "openid")["refresh_token"])
			f.fail(t)
			res := s.exchanger.refresh(t, esAppID, rt, "")
			assert.Equal(t, http.StatusServiceUnavailable, res.status)
			assert.Equal(t, "temporarily_unavailable", res.body["error"])
			assert.Nil(t, res.body["refresh_token"])
			_, err := s.st.GetRefresh(t.Context(), store.HashOf(rt))
			require.NoError(t, err, "the token is still active, not rotated")
			f.recover(t)
			res = s.exchanger.refresh(t, esAppID, rt, "")
			assert.Equal(t, http.StatusOK, res.status, "the retry works at once: %v", res.body)
		})
	}
	for _, bk := range backends[:2] {
		t.Run(bk.name+": a code the replica knows stays unused and its retry works", func(t *testing.T) {
			f := newFailingSigner(t)
			s := bk.new(t, f)
			id := "code-" + keys.ES256
			body := storeBenchCode(t, s.st, id, time.Now())
			f.fail(t)
			res := s.exchanger.exchangeCode(t, id, body)
			assert.Equal(t, http.StatusServiceUnavailable, res.status)
			assert.Nil(t, res.body["access_token"])
			f.recover(t)
			res = s.exchanger.exchangeCode(t, id, body)
			assert.Equal(t, http.StatusOK, res.status, "the retry works: %v", res.body)
			assert.NotEmpty(t, res.body["refresh_token"])
		})
	}
}

// TestARefusedExchangeIssuesNoToken: the replica signs from a record it knows before the store
// decides; when the store refuses (the token was rotated or the code used, by another
// replica), nothing signed is handed out, and a replay after the grace window revokes the
// grant (RFC 9700 4.14.2, 2.1.1).
func TestARefusedExchangeIssuesNoToken(t *testing.T) {
	const grace = 50 * time.Millisecond
	r, srv := newRedisReplicas(t, 2, func(c *Config) { c.RefreshReuseGrace = grace })
	a, b := r[0], r[1]
	noTokens := func(t *testing.T, res response) {
		t.Helper()
		assert.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "invalid_grant", res.body["error"])
		for _, k := range []string{"access_token", "refresh_token", "id_token"} {
			assert.Nil(t, res.body[k], k)
		}
	}
	t.Run("a refresh token another replica rotated gets that rotation's successor within the grace window, and its family lives", func(t *testing.T) {
		rt := str(a.passwordLogin(t, spaID, aliceName, alicePassword, "openid")["refresh_token"])
		res := b.refresh(t, spaID, rt, "")
		require.Equal(t, http.StatusOK, res.status)
		_, known := a.st.KnownRefresh(store.HashOf(rt))
		require.True(t, known, "a signs from the record it stored")
		again := a.refresh(t, spaID, rt, "")
		require.Equal(t, http.StatusOK, again.status, "%v", again.body)
		assert.Equal(t, res.body["refresh_token"], again.body["refresh_token"], "not the token a signed for itself")
		assert.Equal(t, http.StatusOK, b.refresh(t, spaID, str(res.body["refresh_token"]), "").status, "a retry revokes nothing")
	})
	t.Run("a refresh token whose successor another replica rotated is refused within the grace window: its family is revoked", func(t *testing.T) {
		rt := str(a.passwordLogin(t, spaID, aliceName, alicePassword, "openid")["refresh_token"])
		res := b.refresh(t, spaID, rt, "")
		require.Equal(t, http.StatusOK, res.status)
		next := b.refresh(t, spaID, str(res.body["refresh_token"]), "")
		require.Equal(t, http.StatusOK, next.status)
		_, known := a.st.KnownRefresh(store.HashOf(rt))
		require.True(t, known, "a signs from the record it stored")
		noTokens(t, a.refresh(t, spaID, rt, ""))
		noTokens(t, b.refresh(t, spaID, str(next.body["refresh_token"]), ""))
	})
	t.Run("a refresh token another replica rotated is reuse after the grace window: its family is revoked", func(t *testing.T) {
		rt := str(a.passwordLogin(t, spaID, aliceName, alicePassword, "openid")["refresh_token"])
		res := b.refresh(t, spaID, rt, "")
		require.Equal(t, http.StatusOK, res.status)
		waitRedisTime(t, srv, grace)
		noTokens(t, a.refresh(t, spaID, rt, ""))
		noTokens(t, b.refresh(t, spaID, str(res.body["refresh_token"]), ""))
	})
	t.Run("a code another replica exchanged is refused, and its replay with the verifier revokes the first exchange", func(t *testing.T) {
		body := storeBenchCode(t, a.st, codeSPA, time.Now())
		first := b.exchangeCode(t, codeSPA, body)
		require.Equal(t, http.StatusOK, first.status, "%v", first.body)
		noTokens(t, a.exchangeCode(t, codeSPA, body))
		noTokens(t, b.refreshCodeSPA(t, str(first.body["refresh_token"])))
	})
	t.Run("a code replayed on the replica that exchanged it revokes the first exchange", func(t *testing.T) {
		body := storeBenchCode(t, a.st, codeSPA, time.Now())
		first := a.exchangeCode(t, codeSPA, body)
		require.Equal(t, http.StatusOK, first.status, "%v", first.body)
		noTokens(t, a.exchangeCode(t, codeSPA, body))
		noTokens(t, a.refreshCodeSPA(t, str(first.body["refresh_token"])))
	})
}

// waitRedisTime waits until d has passed on the redis-server's clock (the one the scripts
// compare grace windows with).
func waitRedisTime(t *testing.T, srv *harness.Redis, d time.Duration) {
	t.Helper()
	c := srv.Client(&goredis.Options{MaxRetries: -1})
	defer func() { _ = c.Close() }()
	now := func() time.Time {
		tm, err := c.Time(context.Background()).Result()
		require.NoError(t, err)
		return tm
	}
	start := now()
	require.Eventually(t, func() bool { return now().Sub(start) > d }, 10*time.Second, time.Millisecond)
}

// TestTheAuthenticationRecordInTheExchangesStepStillGuards: a confidential client's successful
// authentication is recorded in the store step of its code exchange or refresh (one round
// trip for both), and that record still refuses while the client's address is blocked, and
// still takes from its rate limit (so does a public client's, which has no record): a refused
// request uses nothing up.
func TestTheAuthenticationRecordInTheExchangesStepStillGuards(t *testing.T) {
	policy := oauth2.DefaultClientBruteForce()
	backends := []struct {
		name string
		new  func(t *testing.T) (*userEnv, store.Store)
	}{
		{"memory", func(t *testing.T) (*userEnv, store.Store) {
			e := newUserEnv(t)
			addCodeClients(e.reg)
			return e, e.store
		}},
		{"redis", func(t *testing.T) (*userEnv, store.Store) {
			r, _ := newRedisReplicas(t, 1)
			return r[0].userEnv, r[0].st
		}},
	}
	elsewhere := harness.ClientFrom("127.0.0.2")
	block := func(t *testing.T, e *userEnv, id string) {
		t.Helper()
		for i := range policy.PerIdentityAddress {
			require.Equal(t, http.StatusUnauthorized, ccRequest(t, e.srv.Client(), e.srv, id, "guess-"+strconv.Itoa(i)).status)
		}
	}
	benchID := "code-" + keys.ES256
	for _, bk := range backends {
		t.Run(bk.name+": a blocked client's refresh is refused with its right secret, and its token stays active", func(t *testing.T) {
			e, st := bk.new(t)
			rt := str(e.passwordLogin(t, appID, aliceName, alicePassword, "openid")["refresh_token"])
			block(t, e, appID)
			retryAfter(t, e.refresh(t, appID, rt, ""))
			_, err := st.GetRefresh(t.Context(), store.HashOf(rt))
			require.NoError(t, err, "not rotated")
			res := doWith(t, elsewhere, e.srv, request{path: oauth2.TokenPath, contentType: formType, authorization: basic(appID, appSecret),
				body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()})
			assert.Equal(t, http.StatusOK, res.status, "from another address: %v", res.body)
		})
		t.Run(bk.name+": a blocked client's code exchange is refused with its right secret, and its code stays unused", func(t *testing.T) {
			e, st := bk.new(t)
			body := storeBenchCode(t, st, benchID, time.Now())
			block(t, e, benchID)
			retryAfter(t, e.exchangeCode(t, benchID, body))
			res := doWith(t, elsewhere, e.srv, request{path: oauth2.TokenPath, contentType: formType, authorization: basic(benchID, commonSecret),
				body: string(body)})
			assert.Equal(t, http.StatusOK, res.status, "from another address: %v", res.body)
		})
		t.Run(bk.name+": a blocked client's request that fails before its store step is refused all the same", func(t *testing.T) {
			e, _ := bk.new(t)
			block(t, e, appID)
			retryAfter(t, e.form(t, oauth2.TokenPath, appID, url.Values{"grant_type": {"refresh_token"}}))
			retryAfter(t, e.form(t, oauth2.TokenPath, appID, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-token"}}))
		})
		for _, id := range []string{appID, spaID} {
			t.Run(bk.name+": a refresh past the rate limit of "+id+" is refused, and its token stays active", func(t *testing.T) {
				e, st := bk.new(t)
				c, _ := e.reg.Snapshot().Client(id)
				limited := *c
				limited.RateLimit = registry.RateLimit{PerMinute: 1, Burst: 2}
				e.reg.PutClient(limited)
				rt := str(e.passwordLogin(t, id, aliceName, alicePassword, "openid")["refresh_token"])
				res := e.refresh(t, id, rt, "")
				require.Equal(t, http.StatusOK, res.status, "%v", res.body)
				next := str(res.body["refresh_token"])
				retryAfter(t, e.refresh(t, id, next, ""))
				_, err := st.GetRefresh(t.Context(), store.HashOf(next))
				require.NoError(t, err, "not rotated")
			})
		}
	}
}
