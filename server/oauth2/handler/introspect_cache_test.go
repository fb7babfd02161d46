package handler

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/metrics"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/token"
)

// cacheCounts reads latchkey_access_token_cache_lookups_total: hits and misses.
type cacheCounts struct{ hits, misses float64 }

func readCacheCounts(t *testing.T, reg *prometheus.Registry) cacheCounts {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	var c cacheCounts
	for _, f := range families {
		if f.GetName() != "latchkey_access_token_cache_lookups_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			switch m.GetLabel()[0].GetValue() {
			case "hit":
				c.hits = m.GetCounter().GetValue()
			case "miss":
				c.misses = m.GetCounter().GetValue()
			}
		}
	}
	return c
}

// newCachedEnv is a userEnv with metrics and a keyring of its own (tests retire its keys).
func newCachedEnv(t *testing.T) (*userEnv, *prometheus.Registry, *keys.Keyring, *keys.Set) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	set, err := keys.Generate(keys.SupportedAlgorithms(), time.Now().Add(-time.Minute))
	require.NoError(t, err)
	kr := keys.NewKeyring()
	require.NoError(t, kr.Load(set))
	e := newUserEnv(t, func(c *Config) { c.Metrics, c.Keys = m, kr })
	return e, reg, kr, set
}

func TestIntrospectionCache(t *testing.T) {
	inactive := map[string]any{"active": false}

	t.Run("a cached token answers as it did when it was verified", func(t *testing.T) {
		e, reg, _, _ := newCachedEnv(t)
		for _, client := range []string{appID, esAppID, edAppID} {
			at := str(e.passwordLogin(t, client, aliceName, alicePassword, "openid "+projectScope)["access_token"])
			before := readCacheCounts(t, reg)
			miss := e.introspect(t, resourceID, at)
			hit := e.introspect(t, resourceID, at)
			assert.Equal(t, true, miss["active"])
			assert.Equal(t, miss, hit, client)
			assert.Equal(t, cacheCounts{before.hits + 1, before.misses + 1}, readCacheCounts(t, reg), client)
		}
	})
	t.Run("a cached access token revoked by its jti is inactive on the next introspection", func(t *testing.T) {
		e, reg, _, _ := newCachedEnv(t)
		at := str(e.passwordLogin(t, appID, aliceName, alicePassword, "openid")["access_token"])
		assert.Equal(t, true, e.introspect(t, resourceID, at)["active"])
		res := e.form(t, oauth2.RevocationPath, appID, url.Values{"token": {at}})
		require.Equal(t, http.StatusOK, res.status)
		before := readCacheCounts(t, reg)
		assert.Equal(t, inactive, e.introspect(t, resourceID, at))
		assert.Equal(t, before.hits+1, readCacheCounts(t, reg).hits, "the verification came from the cache")
	})
	t.Run("a cached access token is inactive once its refresh token family is revoked", func(t *testing.T) {
		e, _, _, _ := newCachedEnv(t)
		login := e.passwordLogin(t, appID, aliceName, alicePassword, "openid offline_access")
		at := str(login["access_token"])
		assert.Equal(t, true, e.introspect(t, resourceID, at)["active"])
		res := e.form(t, oauth2.RevocationPath, appID, url.Values{"token": {str(login["refresh_token"])}})
		require.Equal(t, http.StatusOK, res.status)
		assert.Equal(t, inactive, e.introspect(t, resourceID, at))
	})
	t.Run("a cached access token is inactive from its exp on", func(t *testing.T) {
		e, _, _, _ := newCachedEnv(t)
		at := str(e.passwordLogin(t, esAppID, aliceName, alicePassword, "openid")["access_token"])
		assert.Equal(t, true, e.introspect(t, resourceID, at)["active"])
		e.clock.Advance(time.Hour - time.Second)
		assert.Equal(t, true, e.introspect(t, resourceID, at)["active"], "still active in its last second")
		e.clock.Advance(time.Second)
		assert.Equal(t, inactive, e.introspect(t, resourceID, at))
	})
	t.Run("a cached access token is inactive once its signing key is retired", func(t *testing.T) {
		e, _, kr, set := newCachedEnv(t)
		es := str(e.passwordLogin(t, esAppID, aliceName, alicePassword, "openid")["access_token"])
		ed := str(e.passwordLogin(t, edAppID, aliceName, alicePassword, "openid")["access_token"])
		assert.Equal(t, true, e.introspect(t, resourceID, es)["active"])
		assert.Equal(t, true, e.introspect(t, resourceID, ed)["active"])
		jws, err := jose.ParseSignedCompact(es, []jose.SignatureAlgorithm{jose.ES256})
		require.NoError(t, err)
		_, err = keys.RetireNow(set, []string{jws.Signatures[0].Header.KeyID}, time.Now())
		require.NoError(t, err)
		require.NoError(t, kr.Load(set))
		assert.Equal(t, inactive, e.introspect(t, resourceID, es))
		assert.Equal(t, true, e.introspect(t, resourceID, ed)["active"], "another key's tokens stay active")
	})
	t.Run("userinfo is answered from the cache and still checks revocation", func(t *testing.T) {
		e, reg, _, _ := newCachedEnv(t)
		at := str(e.passwordLogin(t, edAppID, aliceName, alicePassword, "openid")["access_token"])
		userinfo := func() response {
			return doT(t, e.srv, request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: "Bearer " + at})
		}
		first := userinfo()
		require.Equal(t, http.StatusOK, first.status)
		before := readCacheCounts(t, reg)
		second := userinfo()
		assert.Equal(t, first.body, second.body)
		assert.Equal(t, before.hits+1, readCacheCounts(t, reg).hits)
		require.Equal(t, http.StatusOK, e.form(t, oauth2.RevocationPath, edAppID, url.Values{"token": {at}}).status)
		assert.Equal(t, http.StatusUnauthorized, userinfo().status)
	})
	t.Run("with the cache off every introspection verifies afresh", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m, err := metrics.New(reg)
		require.NoError(t, err)
		e := newUserEnv(t, func(c *Config) { c.Metrics, c.AccessTokenCacheSize = m, -1 })
		at := str(e.passwordLogin(t, esAppID, aliceName, alicePassword, "openid")["access_token"])
		first := e.introspect(t, resourceID, at)
		assert.Equal(t, first, e.introspect(t, resourceID, at))
		assert.Equal(t, cacheCounts{}, readCacheCounts(t, reg))
	})
	t.Run("a cache of one entry is refused", func(t *testing.T) {
		kr, err := testKeyring()
		require.NoError(t, err)
		_, err = New(Config{Issuer: testIssuer, Registry: userRegistry(), Keys: kr, Store: newUserEnv(t).store, AccessTokenCacheSize: 1})
		require.Error(t, err)
	})
}

var _ token.CacheMetrics = (*metrics.Metrics)(nil)
