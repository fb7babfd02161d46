package handler

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// The audiences of the RFC 8707 test client.
const (
	apiA     = "https://a.api.example/"
	apiB     = "https://b.api.example/v1"
	multiAPI = "multi-api"
)

// newResourceEnv is newUserEnv with a confidential client that may reach apiA and apiB.
func newResourceEnv(t *testing.T) *userEnv {
	e := newUserEnv(t)
	e.reg.PutClient(registry.Client{
		Source: "apps/" + multiAPI, Namespace: "apps", ID: multiAPI, Type: registry.Confidential,
		GrantTypes: []string{"client_credentials", "password", "refresh_token"},
		Scopes:     []string{"openid", projectScope}, Audiences: []string{apiA, apiB},
		SecretHash: registry.HashSecret([]byte(userSecret)), HasSecret: true,
	})
	return e
}

// tokenWith posts a token request of multiAPI with the grant's values and resources.
func (e *userEnv) tokenWith(t *testing.T, values url.Values, resources ...string) response {
	t.Helper()
	for _, r := range resources {
		values.Add("resource", r)
	}
	return e.form(t, oauth2.TokenPath, multiAPI, values)
}

// audienceOf is the aud claim of an access token, as a list.
func (e *userEnv) audienceOf(t *testing.T, res response) []string {
	t.Helper()
	require.Equal(t, http.StatusOK, res.status, "%v", res.body)
	_, claims := e.verifyJWT(t, str(res.body["access_token"]))
	switch aud := claims["aud"].(type) {
	case string:
		return []string{aud}
	case []any:
		out := make([]string, len(aud))
		for i, a := range aud {
			out[i] = str(a)
		}
		return out
	}
	t.Fatalf("aud is %T", claims["aud"])
	return nil
}

func TestResourceIndicatorsRefusals(t *testing.T) {
	e := newResourceEnv(t)
	cc := func() url.Values { return url.Values{"grant_type": {"client_credentials"}} }
	pw := func() url.Values {
		return url.Values{"grant_type": {"password"}, "username": {aliceName}, "password": {alicePassword}}
	}
	tests := []struct {
		name      string
		values    url.Values
		resources []string
	}{
		{name: "a relative resource is invalid_target", values: cc(), resources: []string{"/api"}},
		{name: "a resource without a scheme is invalid_target", values: cc(), resources: []string{"a.api.example"}},
		{name: "a resource with a fragment is invalid_target", values: cc(), resources: []string{apiA + "#frag"}},
		{name: "an unknown resource is invalid_target", values: cc(), resources: []string{"https://evil.example/"}},
		{name: "another client's audience is invalid_target", values: cc(), resources: []string{"https://api.example.com"}},
		{name: "one unknown among known resources is invalid_target", values: cc(), resources: []string{apiA, "https://evil.example/"}},
		{name: "a resource that differs by a trailing slash is invalid_target", values: cc(), resources: []string{strings.TrimSuffix(apiA, "/")}},
		{name: "an oversized resource is invalid_target", values: cc(), resources: []string{"https://x.example/" + strings.Repeat("a", oauth2.MaxResourceLength)}},
		{name: "too many resources is invalid_target", values: cc(), resources: []string{
			"https://1.example", "https://2.example", "https://3.example", "https://4.example", "https://5.example",
			"https://6.example", "https://7.example", "https://8.example", "https://9.example"}},
		{name: "the password grant refuses an unknown resource", values: pw(), resources: []string{"https://evil.example/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.tokenWith(t, tt.values, tt.resources...)
			assert.Equal(t, http.StatusBadRequest, res.status)
			assert.Equal(t, "invalid_target", res.body["error"], "%v", res.body)
			assert.NotContains(t, res.body, "access_token")
		})
	}
}

func TestResourceIndicatorsSelectTheAudience(t *testing.T) {
	e := newResourceEnv(t)
	cc := func() url.Values { return url.Values{"grant_type": {"client_credentials"}} }

	t.Run("without resource the token carries every audience of the client", func(t *testing.T) {
		assert.Equal(t, []string{apiA, apiB}, e.audienceOf(t, e.tokenWith(t, cc())))
	})
	t.Run("one resource becomes the only audience", func(t *testing.T) {
		assert.Equal(t, []string{apiB}, e.audienceOf(t, e.tokenWith(t, cc(), apiB)))
	})
	t.Run("a resource sent twice counts once", func(t *testing.T) {
		assert.Equal(t, []string{apiA}, e.audienceOf(t, e.tokenWith(t, cc(), apiA, apiA)))
	})
	t.Run("two resources are both audiences", func(t *testing.T) {
		assert.Equal(t, []string{apiB, apiA}, e.audienceOf(t, e.tokenWith(t, cc(), apiB, apiA)))
	})
	t.Run("an empty resource counts as omitted", func(t *testing.T) {
		assert.Equal(t, []string{apiA, apiB}, e.audienceOf(t, e.tokenWith(t, cc(), "")))
	})
	t.Run("a JSON body takes one resource", func(t *testing.T) {
		res := doT(t, e.srv, request{path: oauth2.TokenPath, contentType: "application/json", authorization: basic(multiAPI, userSecret),
			body: `{"grant_type":"client_credentials","resource":"` + apiA + `"}`})
		assert.Equal(t, []string{apiA}, e.audienceOf(t, res))
	})
}

func TestResourceIndicatorsOnRefresh(t *testing.T) {
	e := newResourceEnv(t)
	login := func(t *testing.T, resources ...string) string {
		res := e.tokenWith(t, url.Values{"grant_type": {"password"}, "username": {aliceName}, "password": {alicePassword},
			"scope": {projectScope}}, resources...)
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		return str(res.body["refresh_token"])
	}
	refresh := func(rt string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	}

	t.Run("a refresh keeps the granted resources", func(t *testing.T) {
		rt := login(t, apiA)
		assert.Equal(t, []string{apiA}, e.audienceOf(t, e.tokenWith(t, refresh(rt))))
	})
	t.Run("a refresh may narrow the resources and the family keeps them all", func(t *testing.T) {
		rt := login(t, apiA, apiB)
		res := e.tokenWith(t, refresh(rt), apiB)
		assert.Equal(t, []string{apiB}, e.audienceOf(t, res))
		res = e.tokenWith(t, refresh(str(res.body["refresh_token"])))
		assert.Equal(t, []string{apiA, apiB}, e.audienceOf(t, res), "the next refresh has both again")
	})
	t.Run("a refresh may not widen the resources and does not rotate", func(t *testing.T) {
		rt := login(t, apiA)
		res := e.tokenWith(t, refresh(rt), apiB)
		assert.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "invalid_target", res.body["error"])
		assert.Equal(t, []string{apiA}, e.audienceOf(t, e.tokenWith(t, refresh(rt))), "the token still works")
	})
	t.Run("a family started without resource may select one of the client's", func(t *testing.T) {
		rt := login(t)
		assert.Equal(t, []string{apiB}, e.audienceOf(t, e.tokenWith(t, refresh(rt), apiB)))
	})
	t.Run("a family started without resource may not select another audience", func(t *testing.T) {
		res := e.tokenWith(t, refresh(login(t)), "https://evil.example/")
		assert.Equal(t, "invalid_target", res.body["error"])
	})
	t.Run("a family whose resource the client lost is refused, not widened", func(t *testing.T) {
		rt := login(t, apiB)
		c, ok := e.reg.Snapshot().Client(multiAPI)
		require.True(t, ok)
		changed := *c
		changed.Audiences = []string{apiA}
		e.reg.PutClient(changed)
		t.Cleanup(func() { e.reg.PutClient(*c) })
		res := e.tokenWith(t, refresh(rt))
		assert.Equal(t, "invalid_target", res.body["error"], "%v", res.body)
	})
}

func TestResourceIndicatorsInTheCodeFlow(t *testing.T) {
	env := newFlowEnv(t)
	c, ok := env.reg.Snapshot().Client(spaClientID)
	require.True(t, ok)
	spa := *c
	spa.Audiences = []string{apiA, apiB}
	env.reg.PutClient(spa)
	exchange := func(t *testing.T, code, verifier string, kv ...string) response {
		status, body := env.exchangeForm(t, append([]string{"grant_type", "authorization_code", "code", code,
			"client_id", spaClientID, "redirect_uri", appRedirect, "code_verifier", verifier}, kv...)...)
		return response{status: status, body: body}
	}
	audOf := func(t *testing.T, res response) any {
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		return signedClaims(t, str(res.body["access_token"]))["aud"]
	}

	t.Run("an unknown resource on the authorization request is invalid_target at the redirect URI", func(t *testing.T) {
		b := env.browser(t)
		_, challenge := pkcePair()
		cb := b.Get(env.spaRequest(challenge, "resource", "https://evil.example/")).Callback(t)
		assert.Equal(t, "invalid_target", cb.Error)
		assert.Empty(t, cb.Code)
		assert.Equal(t, "st-123", cb.State)
	})
	t.Run("a resource with a fragment on the authorization request is invalid_target", func(t *testing.T) {
		_, challenge := pkcePair()
		cb := env.browser(t).Get(env.spaRequest(challenge, "resource", apiA+"#x")).Callback(t)
		assert.Equal(t, "invalid_target", cb.Error)
	})
	t.Run("the code remembers the resource and its token carries it", func(t *testing.T) {
		code, verifier := env.signIn(t, env.browser(t), "resource", apiA)
		assert.Equal(t, apiA, audOf(t, exchange(t, code, verifier)))
	})
	t.Run("the token request may narrow the code's resources", func(t *testing.T) {
		code, verifier := env.signIn(t, env.browser(t), "resource", apiA, "resource", apiB)
		assert.Equal(t, apiB, audOf(t, exchange(t, code, verifier, "resource", apiB)))
	})
	t.Run("the token request may not widen the code's resources", func(t *testing.T) {
		code, verifier := env.signIn(t, env.browser(t), "resource", apiA)
		res := exchange(t, code, verifier, "resource", apiB)
		assert.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "invalid_target", res.body["error"])
	})
	t.Run("the refresh token of the code keeps its resource", func(t *testing.T) {
		code, verifier := env.signIn(t, env.browser(t), "resource", apiB)
		res := exchange(t, code, verifier)
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		status, body := env.exchangeForm(t, "grant_type", "refresh_token", "refresh_token", str(res.body["refresh_token"]), "client_id", spaClientID)
		assert.Equal(t, apiB, audOf(t, response{status: status, body: body}))
	})
	t.Run("without resource the token carries every audience", func(t *testing.T) {
		code, verifier := env.signIn(t, env.browser(t))
		assert.Equal(t, []any{apiA, apiB}, audOf(t, exchange(t, code, verifier)))
	})
}

// signedClaims checks a token's signature against the test keyring and returns its claims.
func signedClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	kr, err := testKeyring()
	require.NoError(t, err)
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	require.NoError(t, err)
	jwks := kr.PublicKeys()
	k := jwks.Key(parsed.Headers[0].KeyID)
	require.Len(t, k, 1)
	var claims map[string]any
	require.NoError(t, parsed.Claims(k[0].Key, &claims))
	return claims
}

func TestResourceIndicatorsInTheDeviceFlow(t *testing.T) {
	env := newFlowEnv(t)
	c, ok := env.reg.Snapshot().Client(deviceID)
	require.True(t, ok)
	cli := *c
	cli.Audiences = []string{apiA, apiB}
	env.reg.PutClient(cli)
	da := env.startDevice(t, deviceID, "openid read:projects")
	env.approveDevice(t, da, "allow")

	poll := func(resource string) (int, map[string]any) {
		return env.exchangeForm(t, "grant_type", oauth2.GrantDeviceCode, "client_id", deviceID, "device_code", da.DeviceCode, "resource", resource)
	}
	status, body := poll("https://evil.example/")
	requireOAuthError(t, status, body, http.StatusBadRequest, "invalid_target")

	status, body = poll(apiA)
	require.Equal(t, http.StatusOK, status, "%v", body)
	assert.Equal(t, apiA, signedClaims(t, str(body["access_token"]))["aud"])

	status, body = env.exchangeForm(t, "grant_type", "refresh_token", "refresh_token", str(body["refresh_token"]),
		"client_id", deviceID, "resource", apiB)
	requireOAuthError(t, status, body, http.StatusBadRequest, "invalid_target")
}
