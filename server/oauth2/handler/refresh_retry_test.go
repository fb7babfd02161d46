package handler

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/store"
	redisstore "github.com/latchkey-dev/latchkey/server/store/redis"
	"github.com/latchkey-dev/latchkey/server/token"
)

// lostReplyEnv is two replicas over one redis-server: cut reaches it through a proxy that can
// lose a script's reply (harness.CutProxy), other directly; direct is a store of their keys
// that the test reads.
type lostReplyEnv struct {
	cut, other *userEnv
	cutStore   *redisstore.Store
	proxy      *harness.CutProxy
	srv        *harness.Redis
	direct     *redisstore.Store
}

func newLostReplyEnv(t *testing.T, grace time.Duration) *lostReplyEnv {
	srv := harness.NewRedis(t)
	proxy := harness.NewCutProxy(t, srv.Addr())
	replica := func(addr string) (*userEnv, *redisstore.Store) {
		st, err := redisstore.New(redisstore.Options{Addrs: []string{addr}, KeyPrefix: "lost:", Timeout: 2 * time.Second})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		require.NoError(t, st.LoadScripts(t.Context()))
		e := newUserEnv(t, withRedis(st), func(c *Config) { c.RefreshReuseGrace = grace })
		return e, st
	}
	cut, cutStore := replica(proxy.Addr())
	other, direct := replica(srv.Addr())
	return &lostReplyEnv{cut: cut, other: other, cutStore: cutStore, proxy: proxy, srv: srv, direct: direct}
}

// loseRotation logs alice in on appID (openid) and refreshes on the cut replica, losing the
// rotation script's reply: the client gets 503 and keeps the token it presented, which the
// server did rotate. It returns that token.
func (l *lostReplyEnv) loseRotation(t *testing.T) string {
	t.Helper()
	rt := str(l.cut.passwordLogin(t, appID, aliceName, alicePassword, "openid")["refresh_token"])
	l.proxy.Arm("evalsha")
	res := l.cut.refresh(t, appID, rt, "")
	require.Equal(t, http.StatusServiceUnavailable, res.status, "%v", res.body)
	assert.Equal(t, "temporarily_unavailable", res.body["error"])
	assert.Nil(t, res.body["refresh_token"])
	_, err := l.direct.GetRefresh(t.Context(), store.HashOf(rt))
	require.ErrorIs(t, err, store.ErrReused, "the server ran the rotation")
	// The cut connection is gone: open the next one now, so the retry's round trips are its own.
	require.NoError(t, l.cutStore.Ping(t.Context()))
	return rt
}

func (l *lostReplyEnv) familyRevoked(t *testing.T, rt string) bool {
	t.Helper()
	revoked, err := l.direct.FamilyRevoked(t.Context(), token.RefreshFamily(rt))
	require.NoError(t, err)
	return revoked
}

// TestARefreshWhoseReplyWasLostIsAnsweredAgain is the soak's lost reply at a Redis restart: a
// rotation ran in Redis, its reply never came back, the client got 503 and retries with the
// token it still holds. Within the grace window its retry gets the successor the lost rotation
// issued, on the replica that issued the token (one round trip) or on another; the chain goes
// on from it. After the grace window, or by another client, the retry gets nothing.
func TestARefreshWhoseReplyWasLostIsAnsweredAgain(t *testing.T) {
	t.Run("the retry on the issuing replica gets the successor in one round trip, again and again, and the chain goes on", func(t *testing.T) {
		l := newLostReplyEnv(t, time.Minute)
		rt := l.loseRotation(t)
		var res response
		trips, scripts := serverCounts(t, l.srv, func() { res = l.cut.refresh(t, appID, rt, "") })
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		assert.Equal(t, int64(1), trips, "round trips (redis-server's reply writes)")
		assert.Equal(t, int64(1), scripts, "EVALSHA calls")
		successor := str(res.body["refresh_token"])
		require.NotEqual(t, rt, successor)
		assert.Equal(t, token.RefreshFamily(rt), token.RefreshFamily(successor))
		_, err := l.direct.GetRefresh(t.Context(), store.HashOf(successor))
		require.NoError(t, err, "the successor is the token the lost rotation stored")
		assert.Equal(t, atHash("RS256", str(res.body["access_token"])), unverifiedClaims(t, str(res.body["id_token"]))["at_hash"],
			"a fresh ID token for the fresh access token")

		again := l.cut.refresh(t, appID, rt, "")
		require.Equal(t, http.StatusOK, again.status, "%v", again.body)
		assert.Equal(t, successor, again.body["refresh_token"])
		assert.NotEqual(t, res.body["access_token"], again.body["access_token"])

		next := l.cut.refresh(t, appID, successor, "")
		require.Equal(t, http.StatusOK, next.status, "%v", next.body)
		last := str(next.body["refresh_token"])
		assert.Equal(t, http.StatusOK, l.other.refresh(t, appID, last, "").status, "the chain goes on")
		assert.False(t, l.familyRevoked(t, rt))
	})
	t.Run("the retry on another replica, by golang.org/x/oauth2, gets the same successor", func(t *testing.T) {
		l := newLostReplyEnv(t, time.Minute)
		rt := l.loseRotation(t)
		cfg := xoauth2.Config{ClientID: appID, ClientSecret: appSecret,
			Endpoint: xoauth2.Endpoint{TokenURL: l.other.srv.URL + oauth2.TokenPath, AuthStyle: xoauth2.AuthStyleInHeader}}
		ctx := context.WithValue(t.Context(), xoauth2.HTTPClient, l.other.srv.Client())
		tok, err := cfg.TokenSource(ctx, &xoauth2.Token{RefreshToken: rt}).Token()
		require.NoError(t, err)
		successor := tok.RefreshToken
		require.NotEqual(t, rt, successor)
		assert.NotEmpty(t, tok.AccessToken)
		assert.Equal(t, successor, l.cut.refresh(t, appID, rt, "").body["refresh_token"], "and on the issuing one")
		assert.Equal(t, http.StatusOK, l.other.refresh(t, appID, successor, "").status)
	})
	t.Run("a retry once the successor was rotated is reuse: the family is revoked", func(t *testing.T) {
		l := newLostReplyEnv(t, time.Minute)
		rt := l.loseRotation(t)
		successor := str(l.cut.refresh(t, appID, rt, "").body["refresh_token"])
		next := l.other.refresh(t, appID, successor, "")
		require.Equal(t, http.StatusOK, next.status, "%v", next.body)
		for _, e := range []*userEnv{l.cut, l.other} {
			res := e.refresh(t, appID, rt, "")
			assert.Equal(t, "invalid_grant", res.body["error"])
			assert.Nil(t, res.body["refresh_token"])
		}
		assert.True(t, l.familyRevoked(t, rt))
		assert.Equal(t, "invalid_grant", l.other.refresh(t, appID, str(next.body["refresh_token"]), "").body["error"])
	})
	t.Run("a retry after the grace window is reuse: the family is revoked", func(t *testing.T) {
		const grace = 300 * time.Millisecond
		l := newLostReplyEnv(t, grace)
		rt := l.loseRotation(t)
		waitRedisTime(t, l.srv, grace)
		res := l.cut.refresh(t, appID, rt, "")
		assert.Equal(t, "invalid_grant", res.body["error"], "%v", res.body)
		assert.Nil(t, res.body["refresh_token"])
		assert.True(t, l.familyRevoked(t, rt))
	})
	t.Run("a retry by another client is refused and changes nothing", func(t *testing.T) {
		l := newLostReplyEnv(t, time.Minute)
		rt := l.loseRotation(t)
		for _, e := range []*userEnv{l.cut, l.other} {
			res := e.refresh(t, otherAppID, rt, "")
			assert.Equal(t, "invalid_grant", res.body["error"], "%v", res.body)
			assert.Nil(t, res.body["refresh_token"])
		}
		assert.False(t, l.familyRevoked(t, rt))
		res := l.cut.refresh(t, appID, rt, "")
		assert.Equal(t, http.StatusOK, res.status, "the client's own retry still works: %v", res.body)
	})
	t.Run("a retry by the same client authenticated another way is refused and changes nothing", func(t *testing.T) {
		l := newLostReplyEnv(t, time.Minute)
		rt := l.loseRotation(t)
		for _, e := range []*userEnv{l.cut, l.other} {
			res := e.refreshSecretInBody(t, appID, rt)
			assert.Equal(t, "invalid_grant", res.body["error"], "%v", res.body)
			assert.Nil(t, res.body["refresh_token"])
		}
		assert.False(t, l.familyRevoked(t, rt))
		assert.Equal(t, http.StatusOK, l.other.refresh(t, appID, rt, "").status)
	})
}

// unverifiedClaims are the claims of a JWT, unverified (the Redis replicas sign on real time,
// verifyJWT checks on the test's fake clock).
func unverifiedClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, parsed.UnsafeClaimsWithoutVerification(&claims))
	return claims
}

// refreshSecretInBody runs the refresh_token grant as the client with client_secret_post
// (refresh uses client_secret_basic).
func (e *userEnv) refreshSecretInBody(t testing.TB, clientID, rt string) response {
	t.Helper()
	return doT(t, e.srv, request{path: oauth2.TokenPath, contentType: formType, body: url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}, "client_secret": {secretOf(clientID)},
	}.Encode()})
}
