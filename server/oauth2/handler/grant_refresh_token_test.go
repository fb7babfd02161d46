package handler

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/grants"
	"github.com/latchkey-dev/latchkey/server/token"
)

func TestRefreshTokenGrant(t *testing.T) {
	e := newUserEnv(t)
	login := func(t *testing.T, scope string) map[string]any {
		return e.passwordLogin(t, appID, aliceName, alicePassword, scope)
	}

	t.Run("a refresh rotates the token and keeps the family, scopes and auth_time", func(t *testing.T) {
		first := login(t, allOIDC+" "+projectScope)
		rt := str(first["refresh_token"])
		_, firstID := e.verifyJWT(t, str(first["id_token"]))
		e.clock.Advance(time.Minute)
		res := e.refresh(t, appID, rt, "")
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		next := str(res.body["refresh_token"])
		assert.NotEqual(t, rt, next)
		assert.Equal(t, token.RefreshFamily(rt), token.RefreshFamily(next))
		assert.Equal(t, allOIDC+" "+projectScope, res.body["scope"])
		_, idc := e.verifyJWT(t, str(res.body["id_token"]))
		assert.Equal(t, firstID["auth_time"], idc["auth_time"], "auth_time is the login's")
		assert.NotContains(t, idc, "nonce")
		assert.Equal(t, atHash("RS256", str(res.body["access_token"])), idc["at_hash"])
		_, at := e.verifyJWT(t, str(res.body["access_token"]))
		assert.Equal(t, token.RefreshFamily(rt), at["latchkey_family"])
		assert.NotContains(t, at, "sid", "a password grant has no OP session")
	})
	t.Run("a narrower scope narrows the access token but not the refresh token", func(t *testing.T) {
		rt := str(login(t, allOIDC+" "+projectScope)["refresh_token"])
		res := e.refresh(t, appID, rt, projectScope)
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		assert.Equal(t, projectScope, res.body["scope"])
		assert.NotContains(t, res.body, "id_token", "no openid, no ID token")
		res = e.refresh(t, appID, str(res.body["refresh_token"]), "")
		require.Equal(t, http.StatusOK, res.status)
		assert.Equal(t, allOIDC+" "+projectScope, res.body["scope"], "the family keeps its scopes")
	})
	t.Run("a wider scope is invalid_scope and does not rotate", func(t *testing.T) {
		rt := str(login(t, "openid")["refresh_token"])
		res := e.refresh(t, appID, rt, "openid email")
		assert.Equal(t, "invalid_scope", res.body["error"])
		assert.Equal(t, http.StatusOK, e.refresh(t, appID, rt, "").status, "the token still works")
	})
	t.Run("another client's refresh token is invalid_grant and is not rotated", func(t *testing.T) {
		rt := str(login(t, "openid")["refresh_token"])
		res := e.refresh(t, otherAppID, rt, "")
		assert.Equal(t, "invalid_grant", res.body["error"])
		assert.Equal(t, badRefreshToken, res.body["error_description"])
		assert.Equal(t, http.StatusOK, e.refresh(t, appID, rt, "").status, "the owner can still use it")
	})
	t.Run("reuse after the grace window is invalid_grant and revokes the family, successor included", func(t *testing.T) {
		rt := str(login(t, "openid")["refresh_token"])
		res := e.refresh(t, appID, rt, "")
		require.Equal(t, http.StatusOK, res.status)
		successor, at := str(res.body["refresh_token"]), str(res.body["access_token"])
		e.clock.Advance(grants.DefaultRefreshReuseGrace + time.Second)
		res = e.refresh(t, appID, rt, "")
		assert.Equal(t, "invalid_grant", res.body["error"])
		assert.Equal(t, "invalid_grant", e.refresh(t, appID, successor, "").body["error"])
		revoked, err := e.store.FamilyRevoked(t.Context(), token.RefreshFamily(rt))
		require.NoError(t, err)
		assert.True(t, revoked)
		assert.Equal(t, false, e.introspect(t, resourceID, at)["active"], "the family's access tokens die too")
	})
	t.Run("a retry within the grace window gets the same successor with fresh tokens, and the chain goes on", func(t *testing.T) {
		rt := str(login(t, "openid")["refresh_token"])
		res := e.refresh(t, appID, rt, "")
		require.Equal(t, http.StatusOK, res.status)
		successor := str(res.body["refresh_token"])
		e.clock.Advance(time.Second)
		again := e.refresh(t, appID, rt, "")
		require.Equal(t, http.StatusOK, again.status, "%v", again.body)
		assert.Equal(t, successor, again.body["refresh_token"])
		assert.NotEqual(t, res.body["access_token"], again.body["access_token"], "a fresh access token")
		_, at := e.verifyJWT(t, str(again.body["access_token"]))
		assert.Equal(t, token.RefreshFamily(rt), at["latchkey_family"])
		_, idc := e.verifyJWT(t, str(again.body["id_token"]))
		assert.Equal(t, atHash("RS256", str(again.body["access_token"])), idc["at_hash"])
		next := e.refresh(t, appID, successor, "")
		assert.Equal(t, http.StatusOK, next.status)
		assert.NotEqual(t, successor, next.body["refresh_token"])
	})
	for _, tt := range []struct {
		name  string
		retry func(t *testing.T, rt string) response
	}{
		{"by another client", func(t *testing.T, rt string) response { return e.refresh(t, otherAppID, rt, "") }},
		{"authenticated another way", func(t *testing.T, rt string) response { return e.refreshSecretInBody(t, appID, rt) }},
	} {
		t.Run("a retry within the grace window "+tt.name+" is invalid_grant and changes nothing", func(t *testing.T) {
			rt := str(login(t, "openid")["refresh_token"])
			res := e.refresh(t, appID, rt, "")
			require.Equal(t, http.StatusOK, res.status)
			other := tt.retry(t, rt)
			assert.Equal(t, "invalid_grant", other.body["error"], "%v", other.body)
			assert.Nil(t, other.body["refresh_token"])
			assert.Equal(t, res.body["refresh_token"], e.refresh(t, appID, rt, "").body["refresh_token"], "the client's retry still works")
		})
	}
	t.Run("the old token within the grace window once its successor was rotated is reuse and revokes the family", func(t *testing.T) {
		rt := str(login(t, "openid")["refresh_token"])
		res := e.refresh(t, appID, rt, "")
		require.Equal(t, http.StatusOK, res.status)
		next := e.refresh(t, appID, str(res.body["refresh_token"]), "")
		require.Equal(t, http.StatusOK, next.status)
		assert.Equal(t, "invalid_grant", e.refresh(t, appID, rt, "").body["error"])
		assert.Equal(t, "invalid_grant", e.refresh(t, appID, str(next.body["refresh_token"]), "").body["error"])
		revoked, err := e.store.FamilyRevoked(t.Context(), token.RefreshFamily(rt))
		require.NoError(t, err)
		assert.True(t, revoked)
	})
	t.Run("a disabled user's refresh token is invalid_grant", func(t *testing.T) {
		body := e.passwordLogin(t, appID, bobName, bobPassword, "openid")
		snap := e.reg.Snapshot()
		bob, _ := snap.User(bobName)
		disabled := *bob
		disabled.Disabled = true
		e.reg.PutUser(disabled)
		t.Cleanup(func() { e.reg.PutUser(*bob) })
		assert.Equal(t, "invalid_grant", e.refresh(t, appID, str(body["refresh_token"]), "").body["error"])
	})
	t.Run("a scope the client may no longer request is invalid_scope", func(t *testing.T) {
		rt := str(login(t, "openid "+projectScope)["refresh_token"])
		snap := e.reg.Snapshot()
		app, _ := snap.Client(appID)
		narrowed := *app
		narrowed.Scopes = []string{"openid"}
		e.reg.PutClient(narrowed)
		t.Cleanup(func() { e.reg.PutClient(*app) })
		assert.Equal(t, "invalid_scope", e.refresh(t, appID, rt, "").body["error"])
		assert.Equal(t, http.StatusOK, e.refresh(t, appID, rt, "openid").status, "narrowing to what is left works")
	})
	for _, tt := range []struct{ name, token string }{
		{"a malformed refresh token is invalid_grant", "not-a-token"},
		{"an unknown well-formed refresh token is invalid_grant", "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := e.refresh(t, appID, tt.token, "")
			assert.Equal(t, "invalid_grant", res.body["error"])
			assert.Equal(t, badRefreshToken, res.body["error_description"])
		})
	}
	t.Run("a missing refresh_token is invalid_request", func(t *testing.T) {
		res := e.form(t, oauth2.TokenPath, appID, url.Values{"grant_type": {"refresh_token"}})
		assert.Equal(t, "invalid_request", res.body["error"])
	})
	t.Run("an expired refresh token is invalid_grant", func(t *testing.T) {
		rt := str(login(t, "openid")["refresh_token"])
		e.clock.Advance(oauth2.DefaultRefreshTokenLifetime + time.Second)
		assert.Equal(t, "invalid_grant", e.refresh(t, appID, rt, "").body["error"])
	})
}

func TestARefreshWithoutASigningKeyDoesNotUseUpTheToken(t *testing.T) {
	set, err := keys.Generate(keys.SupportedAlgorithms(), time.Now().Add(-time.Minute))
	require.NoError(t, err)
	kr := keys.NewKeyring()
	require.NoError(t, kr.Load(set))
	e := newUserEnv(t, func(c *Config) { c.Keys = kr })
	e.jwks = kr.PublicKeys()
	rt := str(e.passwordLogin(t, esAppID, aliceName, alicePassword, "openid")["refresh_token"])

	withoutES := &keys.Set{}
	for _, k := range set.Keys {
		if k.Algorithm != keys.ES256 {
			withoutES.Keys = append(withoutES.Keys, k)
		}
	}
	require.NoError(t, kr.Load(withoutES))
	res := e.refresh(t, esAppID, rt, "")
	assert.Equal(t, http.StatusServiceUnavailable, res.status)
	assert.Equal(t, "temporarily_unavailable", res.body["error"])

	require.NoError(t, kr.Load(set))
	e.clock.Advance(grants.DefaultRefreshReuseGrace + time.Second)
	res = e.refresh(t, esAppID, rt, "")
	assert.Equal(t, http.StatusOK, res.status, "the retry works: %v", res.body)
}

func TestConcurrentRefreshesWithinTheGraceWindowAllGetTheOneSuccessor(t *testing.T) {
	e := newUserEnv(t)
	rt := str(e.passwordLogin(t, appID, aliceName, alicePassword, "openid")["refresh_token"])
	const n = 8
	statuses := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = e.refresh(t, appID, rt, "")
		})
	}
	close(start)
	wg.Wait()
	winner := str(statuses[0].body["refresh_token"])
	for _, res := range statuses {
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		assert.Equal(t, winner, res.body["refresh_token"], "one rotation wins, and the others get its token")
	}
	revoked, err := e.store.FamilyRevoked(t.Context(), token.RefreshFamily(rt))
	require.NoError(t, err)
	assert.False(t, revoked, "the family lives")
	assert.Equal(t, http.StatusOK, e.refresh(t, appID, winner, "").status, "the winner's token works")
}

// BenchmarkRefreshRotation measures a whole refresh_token request (client_secret_basic, form
// body, RS256 access token, openid-less scope) through ServeHTTP with the memory store: each
// iteration presents the token the previous one got.
func BenchmarkRefreshRotation(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			e := newUserEnv(b)
			client := map[string]string{"RS256": appID, "ES256": esAppID, "EdDSA": edAppID}[alg]
			rt := str(e.passwordLogin(b, client, aliceName, alicePassword, projectScope)["refresh_token"])
			p := newPoster(e.h, oauth2.TokenPath, basic(client, secretOf(client)), true)
			b.ReportAllocs()
			for b.Loop() {
				rt = refreshFromBody(p.post(b, []byte("grant_type=refresh_token&refresh_token="+rt)))
			}
		})
	}
}
