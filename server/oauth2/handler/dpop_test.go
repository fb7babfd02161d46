package handler

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/dpop"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// dpopKey is a client's DPoP key pair.
type dpopKey struct {
	priv *ecdsa.PrivateKey
	jkt  string
}

func newDPoPKey(t testing.TB) dpopKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	jwk := jose.JSONWebKey{Key: k.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	require.NoError(t, err)
	return dpopKey{priv: k, jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

// proof signs a DPoP proof for method and path of the test issuer at now, with the claims
// in extra added (or replacing the defaults).
func (k dpopKey) proof(t testing.TB, method, path string, now time.Time, extra map[string]any) string {
	t.Helper()
	out, err := harness.DPoPProof(k.priv, method, testIssuer+path, now, extra)
	require.NoError(t, err)
	return out
}

// tokenProof is a valid proof for the token endpoint.
func (e *userEnv) tokenProof(t testing.TB, k dpopKey) string {
	return k.proof(t, http.MethodPost, oauth2.TokenPath, e.clock.Now(), nil)
}

// formDPoP is form with DPoP headers (none when proofs is empty).
func (e *userEnv) formDPoP(t testing.TB, path, clientID string, values url.Values, proofs ...string) response {
	t.Helper()
	rq := request{path: path, contentType: formType, header: http.Header{}}
	if secret := secretOf(clientID); secret != "" {
		rq.authorization = basic(clientID, secret)
	} else {
		values.Set("client_id", clientID)
	}
	for _, p := range proofs {
		rq.header.Add("DPoP", p)
	}
	rq.body = values.Encode()
	return doT(t, e.srv, rq)
}

// setDPoP changes a client's DPoP policy in the registry.
func (e *userEnv) setDPoP(t testing.TB, clientID, policy string) {
	t.Helper()
	c, ok := e.reg.Snapshot().Client(clientID)
	require.True(t, ok)
	cc := *c
	cc.DPoP = policy
	e.reg.PutClient(cc)
}

// cc is a client_credentials request's form.
func cc() url.Values { return url.Values{"grant_type": {"client_credentials"}} }

func TestDPoPTokenEndpoint(t *testing.T) {
	e := newUserEnv(t)
	key := newDPoPKey(t)

	t.Run("a valid proof binds the access token: token_type DPoP and cnf.jkt", func(t *testing.T) {
		res := e.formDPoP(t, oauth2.TokenPath, resourceID, cc(), e.tokenProof(t, key))
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		assert.Equal(t, "DPoP", res.body["token_type"])
		_, claims := e.verifyJWT(t, str(res.body["access_token"]))
		assert.Equal(t, map[string]any{"jkt": key.jkt}, claims["cnf"])
	})
	t.Run("without a proof an Optional client gets a Bearer token without cnf", func(t *testing.T) {
		res := e.formDPoP(t, oauth2.TokenPath, resourceID, cc())
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		assert.Equal(t, "Bearer", res.body["token_type"])
		_, claims := e.verifyJWT(t, str(res.body["access_token"]))
		assert.NotContains(t, claims, "cnf")
	})
	refusals := []struct {
		name   string
		proofs func(t *testing.T) []string
		code   string
	}{
		{"a proof for another URI is invalid_dpop_proof", func(t *testing.T) []string {
			return []string{key.proof(t, http.MethodPost, oauth2.UserinfoPath, e.clock.Now(), nil)}
		}, "invalid_dpop_proof"},
		{"a proof for another method is invalid_dpop_proof", func(t *testing.T) []string {
			return []string{key.proof(t, http.MethodGet, oauth2.TokenPath, e.clock.Now(), nil)}
		}, "invalid_dpop_proof"},
		{"a stale proof is invalid_dpop_proof", func(t *testing.T) []string {
			return []string{key.proof(t, http.MethodPost, oauth2.TokenPath, e.clock.Now().Add(-2*time.Minute), nil)}
		}, "invalid_dpop_proof"},
		{"two DPoP headers are invalid_dpop_proof", func(t *testing.T) []string {
			return []string{e.tokenProof(t, key), e.tokenProof(t, key)}
		}, "invalid_dpop_proof"},
		{"a proof that is no JWT is invalid_dpop_proof", func(*testing.T) []string { return []string{"not.a.jwt"} }, "invalid_dpop_proof"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			res := e.formDPoP(t, oauth2.TokenPath, resourceID, cc(), tt.proofs(t)...)
			assert.Equal(t, http.StatusBadRequest, res.status)
			assert.Equal(t, tt.code, res.body["error"])
			assert.NotContains(t, res.body, "access_token")
		})
	}
	t.Run("a replayed proof is invalid_dpop_proof", func(t *testing.T) {
		p := e.tokenProof(t, key)
		require.Equal(t, http.StatusOK, e.formDPoP(t, oauth2.TokenPath, resourceID, cc(), p).status)
		res := e.formDPoP(t, oauth2.TokenPath, resourceID, cc(), p)
		assert.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "invalid_dpop_proof", res.body["error"])
	})
	t.Run("a Required client without a proof is invalid_dpop_proof", func(t *testing.T) {
		e.setDPoP(t, resourceID, registry.DPoPRequired)
		defer e.setDPoP(t, resourceID, registry.DPoPOptional)
		res := e.formDPoP(t, oauth2.TokenPath, resourceID, cc())
		assert.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "invalid_dpop_proof", res.body["error"])
		res = e.formDPoP(t, oauth2.TokenPath, resourceID, cc(), e.tokenProof(t, key))
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		assert.Equal(t, "DPoP", res.body["token_type"])
	})
	t.Run("a Disabled client's proof is ignored: a Bearer token", func(t *testing.T) {
		e.setDPoP(t, resourceID, registry.DPoPDisabled)
		defer e.setDPoP(t, resourceID, registry.DPoPOptional)
		res := e.formDPoP(t, oauth2.TokenPath, resourceID, cc(), e.tokenProof(t, key))
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		assert.Equal(t, "Bearer", res.body["token_type"])
	})
	t.Run("introspection returns cnf", func(t *testing.T) {
		res := e.formDPoP(t, oauth2.TokenPath, resourceID, cc(), e.tokenProof(t, key))
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		got := e.introspect(t, resourceID, str(res.body["access_token"]))
		assert.Equal(t, true, got["active"])
		assert.Equal(t, map[string]any{"jkt": key.jkt}, got["cnf"])
		assert.Equal(t, "DPoP", got["token_type"])
	})
}

func TestDPoPBindsPublicClientsRefreshTokens(t *testing.T) {
	e := newUserEnv(t)
	key, other := newDPoPKey(t), newDPoPKey(t)
	login := func(t *testing.T, clientID string) string {
		res := e.formDPoP(t, oauth2.TokenPath, clientID, url.Values{"grant_type": {"password"},
			"username": {aliceName}, "password": {alicePassword}, "scope": {"openid"}}, e.tokenProof(t, key))
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		assert.Equal(t, "DPoP", res.body["token_type"])
		return str(res.body["refresh_token"])
	}
	refresh := func(t *testing.T, clientID, rt string, proofs ...string) response {
		return e.formDPoP(t, oauth2.TokenPath, clientID, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, proofs...)
	}

	t.Run("a public client's refresh token needs a proof with its key", func(t *testing.T) {
		rt := login(t, spaID)
		res := refresh(t, spaID, rt)
		assert.Equal(t, "invalid_dpop_proof", res.body["error"], "no proof")
		res = refresh(t, spaID, rt, e.tokenProof(t, other))
		assert.Equal(t, "invalid_dpop_proof", res.body["error"], "another key")

		res = refresh(t, spaID, rt, e.tokenProof(t, key))
		require.Equal(t, http.StatusOK, res.status, "the refused attempts did not use the token up: %v", res.body)
		assert.Equal(t, "DPoP", res.body["token_type"])
		_, claims := e.verifyJWT(t, str(res.body["access_token"]))
		assert.Equal(t, map[string]any{"jkt": key.jkt}, claims["cnf"])

		next := str(res.body["refresh_token"])
		assert.Equal(t, "invalid_dpop_proof", refresh(t, spaID, next, e.tokenProof(t, other)).body["error"],
			"the successor stays bound")
	})
	t.Run("a party without the key cannot revoke the family by presenting a rotated token", func(t *testing.T) {
		rt := login(t, spaID)
		res := refresh(t, spaID, rt, e.tokenProof(t, key))
		require.Equal(t, http.StatusOK, res.status)
		next := str(res.body["refresh_token"])
		e.clock.Advance(time.Minute) // past the reuse grace
		assert.Equal(t, "invalid_dpop_proof", refresh(t, spaID, rt).body["error"])
		assert.Equal(t, "invalid_dpop_proof", refresh(t, spaID, rt, e.tokenProof(t, other)).body["error"])
		assert.Equal(t, http.StatusOK, refresh(t, spaID, next, e.tokenProof(t, key)).status, "the family lives")
	})
	t.Run("a confidential client's refresh token is not bound", func(t *testing.T) {
		rt := login(t, appID)
		res := refresh(t, appID, rt)
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		assert.Equal(t, "Bearer", res.body["token_type"])
	})
}

func TestDPoPNonces(t *testing.T) {
	nonceKey, err := dpop.NonceKey([]byte("shared"))
	require.NoError(t, err)
	e := newUserEnv(t, func(c *Config) { c.DPoP = DPoPConfig{NonceKey: nonceKey, RequireNonce: true} })
	key := newDPoPKey(t)

	res := e.formDPoP(t, oauth2.TokenPath, resourceID, cc(), e.tokenProof(t, key))
	assert.Equal(t, http.StatusBadRequest, res.status)
	assert.Equal(t, "use_dpop_nonce", res.body["error"], "a proof without the nonce")
	nonce := res.header.Get("DPoP-Nonce")
	require.NotEmpty(t, nonce)

	res = e.formDPoP(t, oauth2.TokenPath, resourceID, cc(),
		key.proof(t, http.MethodPost, oauth2.TokenPath, e.clock.Now(), map[string]any{"nonce": nonce}))
	require.Equal(t, http.StatusOK, res.status, "%v", res.body)
	assert.Equal(t, "DPoP", res.body["token_type"])

	e.clock.Advance(time.Hour)
	res = e.formDPoP(t, oauth2.TokenPath, resourceID, cc(),
		key.proof(t, http.MethodPost, oauth2.TokenPath, e.clock.Now(), map[string]any{"nonce": nonce}))
	assert.Equal(t, "use_dpop_nonce", res.body["error"], "an old nonce")
	assert.NotEqual(t, nonce, res.header.Get("DPoP-Nonce"), "the nonce rotated")
}

func TestDPoPRequireNonceNeedsAKey(t *testing.T) {
	kr, err := testKeyring()
	require.NoError(t, err)
	_, err = New(Config{Issuer: testIssuer, Registry: userRegistry(), Keys: kr, DPoP: DPoPConfig{RequireNonce: true}})
	require.Error(t, err)
}

// ath is the proof's hash of an access token.
func ath(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestDPoPUserinfo(t *testing.T) {
	e := newUserEnv(t)
	key, other := newDPoPKey(t), newDPoPKey(t)
	res := e.formDPoP(t, oauth2.TokenPath, appID, url.Values{"grant_type": {"password"},
		"username": {aliceName}, "password": {alicePassword}, "scope": {"openid"}}, e.tokenProof(t, key))
	require.Equal(t, http.StatusOK, res.status, "%v", res.body)
	bound := str(res.body["access_token"])
	bearerTok := str(e.passwordLogin(t, appID, aliceName, alicePassword, "openid")["access_token"])
	userinfoProof := func(k dpopKey, tok string, extra map[string]any) string {
		c := map[string]any{"ath": ath(tok)}
		for n, v := range extra {
			c[n] = v
		}
		return k.proof(t, http.MethodGet, oauth2.UserinfoPath, e.clock.Now(), c)
	}
	get := func(t *testing.T, authorization string, proofs ...string) response {
		rq := request{method: http.MethodGet, path: oauth2.UserinfoPath, authorization: authorization, header: http.Header{}}
		for _, p := range proofs {
			rq.header.Add("DPoP", p)
		}
		return doT(t, e.srv, rq)
	}

	t.Run("a bound token with the DPoP scheme and a proof of its key gets the claims", func(t *testing.T) {
		res := get(t, "DPoP "+bound, userinfoProof(key, bound, nil))
		require.Equal(t, http.StatusOK, res.status, "%v", res.body)
		assert.Equal(t, subjectOf(aliceName), res.body["sub"])
	})
	tests := []struct {
		name, authorization string
		proofs              func() []string
		code                string
	}{
		{"a bound token as Bearer is invalid_token", "Bearer " + bound, func() []string { return nil }, "invalid_token"},
		{"a bound token without a proof is invalid_dpop_proof", "DPoP " + bound, func() []string { return nil }, "invalid_dpop_proof"},
		{"a proof of another key is invalid_dpop_proof", "DPoP " + bound,
			func() []string { return []string{userinfoProof(other, bound, nil)} }, "invalid_dpop_proof"},
		{"a proof without ath is invalid_dpop_proof", "DPoP " + bound,
			func() []string {
				return []string{key.proof(t, http.MethodGet, oauth2.UserinfoPath, e.clock.Now(), nil)}
			}, "invalid_dpop_proof"},
		{"a proof with the ath of another token is invalid_dpop_proof", "DPoP " + bound,
			func() []string { return []string{userinfoProof(key, bearerTok, nil)} }, "invalid_dpop_proof"},
		{"a proof for the token endpoint is invalid_dpop_proof", "DPoP " + bound,
			func() []string { return []string{e.tokenProof(t, key)} }, "invalid_dpop_proof"},
		{"a Bearer token with the DPoP scheme is invalid_token", "DPoP " + bearerTok,
			func() []string { return []string{userinfoProof(key, bearerTok, nil)} }, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, tt.authorization, tt.proofs()...)
			assert.Equal(t, http.StatusUnauthorized, res.status)
			assert.Equal(t, tt.code, res.body["error"])
			assert.NotContains(t, res.body, "sub")
			assert.Contains(t, res.header.Get("WWW-Authenticate"), `error="`+tt.code+`"`)
		})
	}
	t.Run("a DPoP refusal has a DPoP challenge", func(t *testing.T) {
		res := get(t, "DPoP "+bound)
		assert.Contains(t, res.header.Get("WWW-Authenticate"), `DPoP realm="latchkey", algs="ES256 EdDSA RS256 PS256"`)
	})
	t.Run("a replayed userinfo proof is invalid_dpop_proof", func(t *testing.T) {
		p := userinfoProof(key, bound, nil)
		require.Equal(t, http.StatusOK, get(t, "DPoP "+bound, p).status)
		assert.Equal(t, "invalid_dpop_proof", get(t, "DPoP "+bound, p).body["error"])
	})
	t.Run("a Bearer token still works as Bearer", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, get(t, "Bearer "+bearerTok).status)
	})
}
