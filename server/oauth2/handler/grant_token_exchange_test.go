package handler

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/assertion"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/metrics"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/grants"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	redisstore "github.com/latchkey-dev/latchkey/server/store/redis"
	"github.com/latchkey-dev/latchkey/server/token"
	"github.com/latchkey-dev/latchkey/server/workload"
)

// The parties of the token exchange tests, beside userRegistry's.
const (
	gatewayID   = "gateway"    // exchanges every source into ordersAud
	intruderID  = "intruder"   // may reach ordersAud, listed by no ProtectedResource
	limitedID   = "limited"    // exchanges access tokens only, and only into ordersAud
	wiOnlyID    = "wi-only"    // exchanges tokens of the WorkloadIssuer "other-ci" only
	noGrantXID  = "no-x-grant" // listed by ordersAud, without the grant type
	ordersAud   = "https://orders.example"
	reportsAud  = "https://reports.example" // owns read:projects only
	strayAud    = "https://stray.example"   // an audience of gateway with no ProtectedResource
	clusterIss  = "https://kubernetes.default.svc.cluster.local"
	ciIssuer    = "https://ci.example"
	ciAudience  = "latchkey"
	exchangeNS  = "apps"
	subjectType = "subject_token_type"
)

// exchangeEnv is userEnv with the token exchange parties, a workload.Verifier that checks
// ServiceAccount tokens against cluster keys (the JWKS mode) and WorkloadIssuer tokens against
// a static key, and an auditor.
type exchangeEnv struct {
	*userEnv
	cluster, ci *ecdsa.PrivateKey
	audit       *recordingAuditor
	metrics     *prometheus.Registry
}

func newExchangeEnv(t testing.TB, mutate ...func(*Config)) *exchangeEnv {
	t.Helper()
	cluster, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ci, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	clusterKeys, err := assertion.NewStaticKeys([]jose.JSONWebKey{{Key: cluster.Public(), KeyID: "cluster", Algorithm: "ES256", Use: "sig"}})
	require.NoError(t, err)
	audit := &recordingAuditor{}
	x := &exchangeEnv{cluster: cluster, ci: ci, audit: audit, metrics: prometheus.NewRegistry()}
	m, err := metrics.New(x.metrics)
	require.NoError(t, err)
	x.userEnv = newUserEnv(t, append([]func(*Config){func(c *Config) {
		v, err := workload.New(workload.Config{Issuer: testIssuer, ClusterKeys: clusterKeys, ClusterIssuer: clusterIss, Now: c.Now})
		require.NoError(t, err)
		c.ClientAssertions, c.WorkloadTokens, c.Audit, c.Metrics = v, v, audit, m
	}}, mutate...)...)
	x.addParties()
	return x
}

// addParties puts the exchange clients, the ProtectedResources and the WorkloadIssuers.
func (x *exchangeEnv) addParties() {
	all := []string{registry.SubjectAccessToken, registry.SubjectIDToken, registry.SubjectServiceAccountToken, registry.SubjectWorkloadIssuer}
	grantsX := []string{oauth2.GrantTokenExchange, "client_credentials", "password"}
	for _, c := range []registry.Client{
		{ID: gatewayID, GrantTypes: grantsX, Audiences: []string{ordersAud, reportsAud, strayAud}},
		{ID: intruderID, GrantTypes: grantsX, Audiences: []string{ordersAud}},
		{ID: limitedID, GrantTypes: grantsX, Audiences: []string{ordersAud, reportsAud}},
		{ID: wiOnlyID, GrantTypes: grantsX, Audiences: []string{ordersAud}},
		{ID: noGrantXID, GrantTypes: []string{"client_credentials"}, Audiences: []string{ordersAud}},
	} {
		c.Source, c.Namespace, c.Type = exchangeNS+"/"+c.ID, exchangeNS, registry.Confidential
		c.Scopes = []string{"openid", projectScope, "write:projects", "admin:read"}
		c.SecretHash, c.HasSecret = registry.HashSecret([]byte(userSecret)), true
		x.reg.PutClient(c)
	}
	x.reg.PutProtectedResource(registry.ProtectedResource{
		Source: "shop/orders", Namespace: "shop", Name: "orders", Audience: ordersAud,
		Scopes: []string{projectScope, "write:projects"},
		ExchangeRequesters: []registry.ExchangeRequester{
			{Client: exchangeNS + "/" + gatewayID, SubjectTokenSources: all},
			{Client: exchangeNS + "/" + limitedID, SubjectTokenSources: []string{registry.SubjectAccessToken}},
			{Client: exchangeNS + "/" + wiOnlyID, SubjectTokenSources: []string{registry.SubjectWorkloadIssuer}, WorkloadIssuers: []string{"other-ci"}},
			{Client: exchangeNS + "/" + noGrantXID, SubjectTokenSources: all},
		},
	})
	x.reg.PutProtectedResource(registry.ProtectedResource{
		Source: "shop/reports", Namespace: "shop", Name: "reports", Audience: reportsAud, Scopes: []string{projectScope},
		ExchangeRequesters: []registry.ExchangeRequester{{Client: exchangeNS + "/" + gatewayID, SubjectTokenSources: all}},
	})
	x.reg.PutWorkloadIssuer(registry.WorkloadIssuer{
		Name: "ci", Issuer: ciIssuer, Audiences: []string{ciAudience}, AllowedNamespaces: []string{exchangeNS},
		StaticKeys: []jose.JSONWebKey{{Key: x.ci.Public(), KeyID: "ci", Algorithm: "ES256", Use: "sig"}},
	})
}

// exchange posts a token exchange of the client with the values (grant_type added).
func (x *exchangeEnv) exchange(t testing.TB, clientID string, values url.Values, proofs ...string) response {
	t.Helper()
	values.Set("grant_type", oauth2.GrantTokenExchange)
	return x.formDPoP(t, oauth2.TokenPath, clientID, values, proofs...)
}

// subjectValues is an exchange of an access token into ordersAud.
func subjectValues(tok string) url.Values {
	return url.Values{"subject_token": {tok}, subjectType: {grants.TokenTypeAccessToken}, "resource": {ordersAud}}
}

// sign signs claims with the key (kid) as a JWT.
func signJWT(t *testing.T, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	require.NoError(t, err)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	jws, err := s.Sign(payload)
	require.NoError(t, err)
	out, err := jws.CompactSerialize()
	require.NoError(t, err)
	return out
}

// saToken is a projected token of ServiceAccount jobs/runner for Latchkey, valid 10 minutes.
func (x *exchangeEnv) saToken(t *testing.T, aud string) string {
	now := x.clock.Now()
	return signJWT(t, x.cluster, "cluster", map[string]any{
		"iss": clusterIss, "sub": registry.ServiceAccountSubject("jobs", "runner"), "aud": []string{aud},
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"kubernetes.io": map[string]any{"namespace": "jobs", "serviceaccount": map[string]any{"name": "runner", "uid": "u-1"}},
	})
}

// ciToken is a JWT of the WorkloadIssuer "ci" for sub, valid 5 minutes, with extra claims.
func (x *exchangeEnv) ciToken(t *testing.T, sub string, extra map[string]any) string {
	now := x.clock.Now()
	claims := map[string]any{"iss": ciIssuer, "sub": sub, "aud": ciAudience, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	return signJWT(t, x.ci, "ci", claims)
}

// requireError requires an error answer with the code.
func requireError(t testing.TB, res response, status int, code string) {
	t.Helper()
	require.Equal(t, status, res.status, "%v", res.body)
	assert.Equal(t, code, res.body["error"], "%v", res.body)
	assert.NotContains(t, res.body, "access_token")
}

// claimsOf requires a successful exchange and returns the issued token's claims.
func (x *exchangeEnv) claimsOf(t testing.TB, res response) map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, res.status, "%v", res.body)
	assert.Equal(t, grants.TokenTypeAccessToken, res.body["issued_token_type"])
	assert.NotContains(t, res.body, "refresh_token")
	assert.NotContains(t, res.body, "id_token")
	assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
	_, claims := x.verifyJWT(t, str(res.body["access_token"]))
	return claims
}

func TestTokenExchangeOfAUserAccessToken(t *testing.T) {
	x := newExchangeEnv(t)
	login := x.passwordLogin(t, appID, aliceName, alicePassword, "openid "+projectScope)
	at := str(login["access_token"])
	_, subject := x.verifyJWT(t, at)

	t.Run("an allowed requester gets a token for the subject, for the target, down-scoped", func(t *testing.T) {
		res := x.exchange(t, gatewayID, subjectValues(at))
		claims := x.claimsOf(t, res)
		assert.Equal(t, "Bearer", res.body["token_type"])
		assert.Equal(t, subjectOf(aliceName), claims["sub"])
		assert.Equal(t, gatewayID, claims["client_id"])
		assert.Equal(t, ordersAud, claims["aud"])
		assert.Equal(t, "openid "+projectScope, claims["scope"], "the subject's, which the target owns (and the OIDC scopes)")
		assert.Equal(t, subject["latchkey_family"], claims["latchkey_family"], "revoking the grant revokes the exchanged token")
		assert.LessOrEqual(t, claims["exp"], subject["exp"])
		assert.NotContains(t, claims, "act", "no actor token: nobody acts")

		var ev *oauth2.AuditEvent
		for i := range x.audit.events {
			if x.audit.events[i].Event == oauth2.AuditTokenExchanged {
				ev = &x.audit.events[i]
			}
		}
		require.NotNil(t, ev, "a token_exchanged event")
		assert.Equal(t, gatewayID, ev.ClientID)
		assert.Equal(t, subjectOf(aliceName), ev.Subject)
		assert.Equal(t, []string{ordersAud}, ev.Targets)
		assert.Equal(t, registry.SubjectAccessToken, ev.SubjectSource)
		assert.Equal(t, oauth2.GrantTokenExchange, ev.GrantType)
		assert.NotContains(t, ev.TokenRef, at)

		text, _ := scrape(t, x.metrics)
		assert.Contains(t, text, `latchkey_token_exchanges_total{subject_source="AccessToken"} 1`)
		assert.Contains(t, text, `latchkey_tokens_issued_total{client_id="gateway",client_namespace="apps",grant_type="urn:ietf:params:oauth:grant-type:token-exchange"} 1`)
	})

	t.Run("the audience parameter names a target like resource", func(t *testing.T) {
		v := subjectValues(at)
		v.Del("resource")
		v.Set("audience", ordersAud)
		assert.Equal(t, ordersAud, x.claimsOf(t, x.exchange(t, gatewayID, v))["aud"])
	})

	t.Run("a JSON body works like a form", func(t *testing.T) {
		body, err := json.Marshal(map[string]string{"grant_type": oauth2.GrantTokenExchange, "subject_token": at,
			"subject_token_type": grants.TokenTypeAccessToken, "audience": ordersAud, "scope": projectScope})
		require.NoError(t, err)
		res := doT(t, x.srv, request{path: oauth2.TokenPath, contentType: "application/json",
			authorization: basic(gatewayID, userSecret), body: string(body)})
		assert.Equal(t, projectScope, x.claimsOf(t, res)["scope"])
	})

	t.Run("the token's lifetime ends with the subject token's", func(t *testing.T) {
		x.clock.Advance(50 * time.Minute)
		defer x.clock.Set(testNow)
		claims := x.claimsOf(t, x.exchange(t, gatewayID, subjectValues(at)))
		assert.Equal(t, subject["exp"], claims["exp"])
	})

	for _, tc := range []struct {
		name, client string
		change       func(url.Values)
		status       int
		code         string
	}{
		{"a requester the ProtectedResource does not list is refused", intruderID, nil, http.StatusBadRequest, "invalid_target"},
		{"a requester without the grant type is refused", noGrantXID, nil, http.StatusBadRequest, "unauthorized_client"},
		{"a request without a target is refused", gatewayID, func(v url.Values) { v.Del("resource") }, http.StatusBadRequest, "invalid_target"},
		{"a target that is no ProtectedResource is refused", gatewayID, func(v url.Values) { v.Set("resource", strayAud) },
			http.StatusBadRequest, "invalid_target"},
		{"a target the requester may not reach is refused (widening the audience)", limitedID,
			func(v url.Values) { v.Set("resource", "https://api.example.com") }, http.StatusBadRequest, "invalid_target"},
		{"a second target the requester may not exchange into is refused (widening the audience)", limitedID,
			func(v url.Values) { v.Add("audience", reportsAud) }, http.StatusBadRequest, "invalid_target"},
		{"a scope the subject token lacks is refused (widening the scope)", gatewayID,
			func(v url.Values) { v.Set("scope", "write:projects") }, http.StatusBadRequest, "invalid_scope"},
		{"a scope the requester may not have is refused", gatewayID,
			func(v url.Values) { v.Set("scope", "profile") }, http.StatusBadRequest, "invalid_scope"},
		{"an ID token typed as an access token is refused", gatewayID,
			func(v url.Values) { v.Set("subject_token", str(login["id_token"])) }, http.StatusBadRequest, "invalid_grant"},
		{"a malformed subject token is refused", gatewayID,
			func(v url.Values) { v.Set("subject_token", "not-a-token") }, http.StatusBadRequest, "invalid_grant"},
		{"a refresh token cannot be requested", gatewayID,
			func(v url.Values) { v.Set("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token") },
			http.StatusBadRequest, "invalid_request"},
		{"an ID token source the requester's policy does not list is refused", limitedID,
			func(v url.Values) {
				v.Set(subjectType, grants.TokenTypeIDToken)
				v.Set("subject_token", str(login["id_token"]))
			},
			http.StatusBadRequest, "invalid_target"},
		{"a public client cannot exchange", spaID, nil, http.StatusBadRequest, "unauthorized_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := subjectValues(at)
			if tc.change != nil {
				tc.change(v)
			}
			requireError(t, x.exchange(t, tc.client, v), tc.status, tc.code)
		})
	}

	t.Run("without scope the subject's scopes are narrowed to the target's and the requester's", func(t *testing.T) {
		wide := str(x.passwordLogin(t, appID, aliceName, alicePassword, projectScope+" write:projects profile")["access_token"])
		v := subjectValues(wide)
		v.Set("resource", reportsAud)
		assert.Equal(t, projectScope, x.claimsOf(t, x.exchange(t, gatewayID, v))["scope"])
		v.Set("scope", projectScope+" write:projects")
		assert.Equal(t, projectScope, x.claimsOf(t, x.exchange(t, gatewayID, v))["scope"], "a scope the target does not own is dropped")
	})

	t.Run("an expired subject token is refused", func(t *testing.T) {
		x.clock.Advance(time.Hour + time.Second)
		defer x.clock.Set(testNow)
		requireError(t, x.exchange(t, gatewayID, subjectValues(at)), http.StatusBadRequest, "invalid_grant")
	})
}

func TestTokenExchangeRefusesRevokedSubjects(t *testing.T) {
	for _, be := range []struct {
		name  string
		setup func(t *testing.T) *exchangeEnv
	}{
		{"on the memory store", func(t *testing.T) *exchangeEnv { return newExchangeEnv(t) }},
		{"on Redis", func(t *testing.T) *exchangeEnv {
			srv := harness.NewRedis(t)
			st, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}, KeyPrefix: "exchange:"})
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			x := newExchangeEnv(t, func(c *Config) { c.Store = store.Store(st) })
			x.clock.Set(time.Now()) // Redis leases run on real time
			return x
		}},
	} {
		t.Run(be.name, func(t *testing.T) {
			x := be.setup(t)
			first := x.passwordLogin(t, appID, aliceName, alicePassword, projectScope)
			second := x.passwordLogin(t, appID, aliceName, alicePassword, projectScope)
			at := str(first["access_token"])
			x.claimsOf(t, x.exchange(t, gatewayID, subjectValues(at)))

			res := x.form(t, oauth2.RevocationPath, appID, url.Values{"token": {at}})
			require.Equal(t, http.StatusOK, res.status)
			requireError(t, x.exchange(t, gatewayID, subjectValues(at)), http.StatusBadRequest, "invalid_grant")

			// Revoking the refresh token revokes its family: its access tokens, and the
			// tokens exchanged from them, are no longer accepted.
			at2 := str(second["access_token"])
			exchanged := str(x.claimsOfRes(t, x.exchange(t, gatewayID, subjectValues(at2))))
			res = x.form(t, oauth2.RevocationPath, appID, url.Values{"token": {str(second["refresh_token"])}})
			require.Equal(t, http.StatusOK, res.status)
			requireError(t, x.exchange(t, gatewayID, subjectValues(at2)), http.StatusBadRequest, "invalid_grant")
			requireError(t, x.exchange(t, gatewayID, subjectValues(exchanged)), http.StatusBadRequest, "invalid_grant")
			assert.Equal(t, false, x.introspect(t, resourceID, exchanged)["active"])
		})
	}
}

// claimsOfRes requires a successful exchange and returns its access token.
func (x *exchangeEnv) claimsOfRes(t *testing.T, res response) any {
	t.Helper()
	x.claimsOf(t, res)
	return res.body["access_token"]
}

func TestTokenExchangeActChain(t *testing.T) {
	x := newExchangeEnv(t)
	at := str(x.passwordLogin(t, appID, aliceName, alicePassword, projectScope)["access_token"])
	actorAT := x.clientCredentialsToken(t, resourceID, projectScope)

	// First hop: resource-server acts for alice.
	v := subjectValues(at)
	v.Set("actor_token", actorAT)
	v.Set("actor_token_type", grants.TokenTypeAccessToken)
	res := x.exchange(t, gatewayID, v)
	first := x.claimsOf(t, res)
	assert.Equal(t, subjectOf(aliceName), first["sub"])
	assert.Equal(t, map[string]any{"sub": resourceID}, first["act"])
	hop1 := str(res.body["access_token"])
	assert.Equal(t, map[string]any{"sub": resourceID}, x.introspect(t, resourceID, hop1)["act"], "introspection shows the actor")

	// An actor whose own token carries act: the ServiceAccount acting through the gateway.
	saAsActor := url.Values{"subject_token": {x.saToken(t, testIssuer)}, subjectType: {grants.TokenTypeJWT},
		"resource": {ordersAud}, "actor_token": {actorAT}, "actor_token_type": {grants.TokenTypeAccessToken}}
	actorWithAct := x.exchange(t, gatewayID, saAsActor)
	require.Contains(t, x.claimsOf(t, actorWithAct), "act")

	t.Run("a second hop nests the subject token's act under the new actor", func(t *testing.T) {
		v := subjectValues(hop1)
		v.Set("actor_token", str(actorWithAct.body["access_token"]))
		v.Set("actor_token_type", grants.TokenTypeAccessToken)
		claims := x.claimsOf(t, x.exchange(t, gatewayID, v))
		assert.Equal(t, subjectOf(aliceName), claims["sub"])
		assert.Equal(t, map[string]any{
			"sub": registry.ServiceAccountSubject("jobs", "runner"),
			"act": map[string]any{"sub": resourceID},
		}, claims["act"], "the actor's own act is not the subject's chain")
	})

	t.Run("without an actor token the subject's act is kept", func(t *testing.T) {
		claims := x.claimsOf(t, x.exchange(t, gatewayID, subjectValues(hop1)))
		assert.Equal(t, map[string]any{"sub": resourceID}, claims["act"])
	})

	t.Run("an actor from another issuer is named with its iss", func(t *testing.T) {
		v := subjectValues(at)
		v.Set("actor_token", x.ciToken(t, "repo:shop/deploy", nil))
		v.Set("actor_token_type", grants.TokenTypeJWT)
		claims := x.claimsOf(t, x.exchange(t, gatewayID, v))
		assert.Equal(t, map[string]any{"sub": "repo:shop/deploy", "iss": ciIssuer}, claims["act"])
	})

	t.Run("an invalid actor token is refused", func(t *testing.T) {
		v := subjectValues(at)
		v.Set("actor_token", "x.y.z")
		v.Set("actor_token_type", grants.TokenTypeAccessToken)
		requireError(t, x.exchange(t, gatewayID, v), http.StatusBadRequest, "invalid_grant")
	})
}

func TestTokenExchangeHonoursMayAct(t *testing.T) {
	x := newExchangeEnv(t)
	ciValues := func(tok string) url.Values {
		return url.Values{"subject_token": {tok}, subjectType: {grants.TokenTypeJWT}, "resource": {ordersAud}}
	}
	t.Run("may_act naming the requesting client lets it act", func(t *testing.T) {
		tok := x.ciToken(t, "repo:shop/app", map[string]any{"may_act": map[string]any{"sub": gatewayID}})
		claims := x.claimsOf(t, x.exchange(t, gatewayID, ciValues(tok)))
		assert.Equal(t, "repo:shop/app", claims["sub"])
	})
	t.Run("may_act naming another party refuses the requesting client", func(t *testing.T) {
		tok := x.ciToken(t, "repo:shop/app", map[string]any{"may_act": map[string]any{"sub": "someone-else"}})
		requireError(t, x.exchange(t, gatewayID, ciValues(tok)), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("may_act is matched against the actor token when there is one", func(t *testing.T) {
		tok := x.ciToken(t, "repo:shop/app", map[string]any{"may_act": map[string]any{"sub": resourceID, "iss": testIssuer}})
		v := ciValues(tok)
		requireError(t, x.exchange(t, gatewayID, v), http.StatusBadRequest, "invalid_grant")
		v.Set("actor_token", x.clientCredentialsToken(t, resourceID, projectScope))
		v.Set("actor_token_type", grants.TokenTypeAccessToken)
		assert.Equal(t, map[string]any{"sub": resourceID}, x.claimsOf(t, x.exchange(t, gatewayID, v))["act"])
	})
	t.Run("a malformed may_act is refused", func(t *testing.T) {
		tok := x.ciToken(t, "repo:shop/app", map[string]any{"may_act": "gateway"})
		requireError(t, x.exchange(t, gatewayID, ciValues(tok)), http.StatusBadRequest, "invalid_grant")
	})
}

func TestTokenExchangeOfIDAndWorkloadTokens(t *testing.T) {
	x := newExchangeEnv(t)
	jwtValues := func(tok string) url.Values {
		return url.Values{"subject_token": {tok}, subjectType: {grants.TokenTypeJWT}, "resource": {ordersAud}}
	}
	t.Run("an ID token issued to the requester is exchanged", func(t *testing.T) {
		own := x.passwordLogin(t, gatewayID, aliceName, alicePassword, "openid")
		v := url.Values{"subject_token": {str(own["id_token"])}, subjectType: {grants.TokenTypeIDToken}, "resource": {ordersAud}}
		claims := x.claimsOf(t, x.exchange(t, gatewayID, v))
		assert.Equal(t, subjectOf(aliceName), claims["sub"])
		assert.Equal(t, projectScope, claims["scope"], "the requester's default scopes the target owns")
	})
	t.Run("an ID token of another client is refused", func(t *testing.T) {
		other := x.passwordLogin(t, appID, aliceName, alicePassword, "openid")
		v := url.Values{"subject_token": {str(other["id_token"])}, subjectType: {grants.TokenTypeIDToken}, "resource": {ordersAud}}
		res := x.exchange(t, gatewayID, v)
		requireError(t, res, http.StatusBadRequest, "invalid_grant")
		assert.Equal(t, "An ID token can only be exchanged by the client it was issued to.", res.body["error_description"])
	})
	t.Run("a ServiceAccount token for Latchkey is exchanged", func(t *testing.T) {
		claims := x.claimsOf(t, x.exchange(t, gatewayID, jwtValues(x.saToken(t, testIssuer))))
		assert.Equal(t, registry.ServiceAccountSubject("jobs", "runner"), claims["sub"])
		assert.Equal(t, float64(x.clock.Now().Add(10*time.Minute).Unix()), claims["exp"], "bounded by the ServiceAccount token")
	})
	t.Run("a ServiceAccount token for another audience is refused", func(t *testing.T) {
		requireError(t, x.exchange(t, gatewayID, jwtValues(x.saToken(t, "https://kubernetes.default.svc"))), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("a ServiceAccount token is refused to a policy without that source", func(t *testing.T) {
		requireError(t, x.exchange(t, limitedID, jwtValues(x.saToken(t, testIssuer))), http.StatusBadRequest, "invalid_target")
	})
	t.Run("a WorkloadIssuer's JWT is exchanged", func(t *testing.T) {
		claims := x.claimsOf(t, x.exchange(t, gatewayID, jwtValues(x.ciToken(t, "repo:shop/app", nil))))
		assert.Equal(t, "repo:shop/app", claims["sub"])
		assert.Equal(t, registry.SubjectWorkloadIssuer, x.audit.events[len(x.audit.events)-1].SubjectSource)
	})
	t.Run("a WorkloadIssuer JWT expired within the clock skew leeway is refused: it would outlive it", func(t *testing.T) {
		tok := x.ciToken(t, "repo:shop/app", nil)
		x.clock.Advance(5*time.Minute + 10*time.Second)
		defer x.clock.Set(testNow)
		requireError(t, x.exchange(t, gatewayID, jwtValues(tok)), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("a WorkloadIssuer the policy does not name is refused", func(t *testing.T) {
		requireError(t, x.exchange(t, wiOnlyID, jwtValues(x.ciToken(t, "repo:shop/app", nil))), http.StatusBadRequest, "invalid_target")
	})
	t.Run("a WorkloadIssuer JWT with a forged signature is refused", func(t *testing.T) {
		forged, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		now := x.clock.Now()
		tok := signJWT(t, forged, "ci", map[string]any{"iss": ciIssuer, "sub": "repo:shop/app", "aud": ciAudience,
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
		requireError(t, x.exchange(t, gatewayID, jwtValues(tok)), http.StatusBadRequest, "invalid_grant")
	})
}

func TestTokenExchangeWithDPoP(t *testing.T) {
	x := newExchangeEnv(t)
	at := str(x.passwordLogin(t, appID, aliceName, alicePassword, projectScope)["access_token"])
	k := newDPoPKey(t)

	t.Run("a proof binds the exchanged token to its key", func(t *testing.T) {
		res := x.exchange(t, gatewayID, subjectValues(at), x.tokenProof(t, k))
		claims := x.claimsOf(t, res)
		assert.Equal(t, "DPoP", res.body["token_type"])
		assert.Equal(t, map[string]any{"jkt": k.jkt}, claims["cnf"])
	})

	t.Run("a DPoP-bound subject token needs a proof of its key", func(t *testing.T) {
		x.setDPoP(t, appID, registry.DPoPOptional)
		bound := x.form(t, oauth2.TokenPath, appID, url.Values{"grant_type": {"password"}, "username": {aliceName},
			"password": {alicePassword}, "scope": {projectScope}})
		require.Equal(t, http.StatusOK, bound.status)
		res := x.formDPoP(t, oauth2.TokenPath, appID, url.Values{"grant_type": {"password"}, "username": {aliceName},
			"password": {alicePassword}, "scope": {projectScope}}, x.tokenProof(t, k))
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		boundAT := str(res.body["access_token"])

		requireError(t, x.exchange(t, gatewayID, subjectValues(boundAT)), http.StatusBadRequest, "invalid_grant")
		requireError(t, x.exchange(t, gatewayID, subjectValues(boundAT), x.tokenProof(t, newDPoPKey(t))), http.StatusBadRequest, "invalid_grant")
		claims := x.claimsOf(t, x.exchange(t, gatewayID, subjectValues(boundAT), x.tokenProof(t, k)))
		assert.Equal(t, map[string]any{"jkt": k.jkt}, claims["cnf"])
	})
}

// TestTokenExchangeAppliesEveryClientRestriction: the restrictions of the requesting client
// apply to a token exchange as to every grant, at the token endpoint's one admission path.
func TestTokenExchangeAppliesEveryClientRestriction(t *testing.T) {
	x := newExchangeEnv(t)
	at := str(x.passwordLogin(t, appID, aliceName, alicePassword, projectScope)["access_token"])
	change := func(t *testing.T, mutate func(*registry.Client)) {
		t.Helper()
		c, ok := x.reg.Snapshot().Client(gatewayID)
		require.True(t, ok)
		cc := *c
		mutate(&cc)
		x.reg.PutClient(cc)
		t.Cleanup(func() { x.reg.PutClient(*c) })
	}
	t.Run("the grant type must be allowed", func(t *testing.T) {
		change(t, func(c *registry.Client) { c.GrantTypes = []string{"client_credentials"} })
		requireError(t, x.exchange(t, gatewayID, subjectValues(at)), http.StatusBadRequest, "unauthorized_client")
	})
	t.Run("the client must authenticate", func(t *testing.T) {
		rq := request{path: oauth2.TokenPath, contentType: formType, authorization: basic(gatewayID, "wrong")}
		v := subjectValues(at)
		v.Set("grant_type", oauth2.GrantTokenExchange)
		rq.body = v.Encode()
		res := doT(t, x.srv, rq)
		assert.Equal(t, http.StatusUnauthorized, res.status)
		assert.Equal(t, "invalid_client", res.body["error"])
	})
	t.Run("the rate limit applies", func(t *testing.T) {
		change(t, func(c *registry.Client) { c.RateLimit = registry.RateLimit{PerMinute: 1, Burst: 1} })
		x.claimsOf(t, x.exchange(t, gatewayID, subjectValues(at)))
		res := x.exchange(t, gatewayID, subjectValues(at))
		requireError(t, res, http.StatusTooManyRequests, "temporarily_unavailable")
		assert.NotEmpty(t, res.header.Get("Retry-After"))
	})
	t.Run("a DPoP policy of Required applies", func(t *testing.T) {
		change(t, func(c *registry.Client) { c.DPoP = registry.DPoPRequired })
		requireError(t, x.exchange(t, gatewayID, subjectValues(at)), http.StatusBadRequest, "invalid_dpop_proof")
	})
	t.Run("the client's scopes apply", func(t *testing.T) {
		change(t, func(c *registry.Client) { c.Scopes = []string{"write:projects"} })
		v := subjectValues(at)
		v.Set("scope", projectScope)
		requireError(t, x.exchange(t, gatewayID, v), http.StatusBadRequest, "invalid_scope")
		v.Del("scope")
		claims := x.claimsOf(t, x.exchange(t, gatewayID, v))
		assert.NotContains(t, claims, "scope", "the subject's scope the client may not have is dropped")
	})
	t.Run("the client's access token lifetime applies", func(t *testing.T) {
		change(t, func(c *registry.Client) { c.AccessTokenLifetime = 5 * time.Minute })
		res := x.exchange(t, gatewayID, subjectValues(at))
		x.claimsOf(t, res)
		assert.Equal(t, float64(300), res.body["expires_in"])
	})
	t.Run("the exchange requesters decide, not the client's own audiences", func(t *testing.T) {
		change(t, func(c *registry.Client) { c.Audiences = []string{reportsAud} })
		res := x.exchange(t, gatewayID, subjectValues(at))
		assert.Equal(t, ordersAud, x.claimsOf(t, res)["aud"], "a listed requester exchanges into the resource without reaching it itself")
		cc := x.form(t, oauth2.TokenPath, gatewayID, url.Values{"grant_type": {"client_credentials"}, "resource": {ordersAud}})
		requireError(t, cc, http.StatusBadRequest, "invalid_target")
	})
}

// BenchmarkTokenExchange measures a whole token exchange (a user's access token for an access
// token of ordersAud, form body, client_secret_basic) through the handler's ServeHTTP, without
// the network, per algorithm: the subject token and the exchanged token are signed with it.
// "cached" exchanges one subject token again and again, so its signature is verified once and
// then found in the verified-token cache (a gateway exchanging a user's token for several
// calls); "fresh" exchanges a new subject token each time (b.N of them signed before the timed
// part: signing them is the first grant's cost), so each exchange also verifies one. Either
// way the subject's revocation is checked in the memory store on every exchange.
func BenchmarkTokenExchange(b *testing.B) {
	for _, alg := range []struct{ name, subjectClient, alg string }{
		{"RS256", appID, keys.RS256}, {"ES256", esAppID, keys.ES256}, {"EdDSA", edAppID, keys.EdDSA},
	} {
		for _, fresh := range []bool{false, true} {
			name := alg.name + "/cached"
			if fresh {
				name = alg.name + "/fresh"
			}
			b.Run(name, func(b *testing.B) {
				x := newExchangeEnv(b)
				c, _ := x.reg.Snapshot().Client(gatewayID)
				cc := *c
				cc.SigningAlgorithm = alg.alg
				x.reg.PutClient(cc)
				login := x.passwordLogin(b, alg.subjectClient, aliceName, alicePassword, projectScope)
				payloads := [][]byte{exchangePayload(str(login["access_token"]))}
				if fresh {
					payloads = freshSubjects(b, x, alg.subjectClient, str(login["access_token"]), b.N)
				}
				p := newPoster(x.h, oauth2.TokenPath, basic(gatewayID, userSecret), false)
				p.post(b, payloads[0])
				b.ReportAllocs()
				cpu := processCPU(b)
				b.ResetTimer()
				for i := range b.N {
					p.post(b, payloads[i%len(payloads)])
				}
				b.StopTimer()
				reportCPU(b, processCPU(b)-cpu, "exchanges")
			})
		}
	}
}

// exchangePayload is the form body of gateway's exchange of the subject access token.
func exchangePayload(subject string) []byte {
	v := subjectValues(subject)
	v.Set("grant_type", oauth2.GrantTokenExchange)
	return []byte(v.Encode())
}

// freshSubjects signs n+1 access tokens of the grant of the subject token (its client, user,
// family and scopes) and returns their exchange payloads.
func freshSubjects(b *testing.B, x *exchangeEnv, clientID, subject string, n int) [][]byte {
	b.Helper()
	kr, err := testKeyring()
	require.NoError(b, err)
	iss, err := token.NewIssuer(token.Config{Issuer: testIssuer, Keys: kr, Now: x.clock.Now})
	require.NoError(b, err)
	c, ok := x.reg.Snapshot().Client(clientID)
	require.True(b, ok)
	_, claims := x.verifyJWT(b, subject)
	out := make([][]byte, 0, n+1)
	for range n + 1 {
		at, err := iss.IssueAccessToken(token.AccessTokenRequest{Client: c, Subject: str(claims["sub"]),
			Scopes: []string{projectScope}, FamilyID: str(claims["latchkey_family"])})
		require.NoError(b, err)
		out = append(out, exchangePayload(at.Token))
	}
	return out
}
