package handler

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// flowProof signs a DPoP proof of k for path of the flow's server.
func (env *flowEnv) flowProof(t *testing.T, k dpopKey, path string) string {
	t.Helper()
	out, err := harness.DPoPProof(k.priv, http.MethodPost, env.srv.URL+path, env.clock.Now(), nil)
	require.NoError(t, err)
	return out
}

// exchangeDPoP exchanges the SPA's code with the DPoP proofs given (none: no header).
func (env *flowEnv) exchangeDPoP(t *testing.T, code, verifier string, proofs ...string) (int, map[string]any) {
	t.Helper()
	body := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {spaClientID},
		"redirect_uri": {appRedirect}, "code_verifier": {verifier}}.Encode()
	var headers []string
	for _, p := range proofs {
		headers = append(headers, "DPoP", p)
	}
	return env.tokenPost(t, formType, body, headers...)
}

// setClientDPoP changes a client's DPoP policy in the flow registry.
func (env *flowEnv) setClientDPoP(t *testing.T, clientID, policy string) {
	t.Helper()
	c, ok := env.reg.Snapshot().Client(clientID)
	require.True(t, ok)
	cc := *c
	cc.DPoP = policy
	env.reg.PutClient(cc)
}

// codeOf signs in through the browser at authURL and returns the code.
func (env *flowEnv) codeOf(t *testing.T, authURL string) string {
	t.Helper()
	b := env.browser(t)
	p := b.Get(authURL)
	if p.IsLogin() {
		p = b.Login(p, ownerName, ownerPassword)
	}
	if p.IsConsent() {
		p = b.Decide(p, "allow")
	}
	cb := p.Callback(t)
	require.Empty(t, cb.Error, cb.ErrorDescription)
	require.NotEmpty(t, cb.Code)
	return cb.Code
}

func TestDPoPJKTBindsTheAuthorizationCode(t *testing.T) {
	env := newFlowEnv(t)
	key, other := newDPoPKey(t), newDPoPKey(t)
	boundCode := func(t *testing.T) (code, verifier string) {
		verifier, challenge := pkcePair()
		return env.codeOf(t, env.spaRequest(challenge, "dpop_jkt", key.jkt)), verifier
	}

	refusals := []struct {
		name   string
		proofs func(t *testing.T) []string
	}{
		{"a bound code without a proof is invalid_grant", func(*testing.T) []string { return nil }},
		{"a bound code with a proof of another key is invalid_grant", func(t *testing.T) []string {
			return []string{env.flowProof(t, other, oauth2.TokenPath)}
		}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			code, verifier := boundCode(t)
			status, body := env.exchangeDPoP(t, code, verifier, tt.proofs(t)...)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", body["error"])
			assert.Contains(t, body["error_description"], "dpop_jkt")
			assert.NotContains(t, body, "access_token")
			// The refused exchange used the code up, as every failed exchange does.
			status, body = env.exchangeDPoP(t, code, verifier, env.flowProof(t, key, oauth2.TokenPath))
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", body["error"])
		})
	}
	t.Run("a bound code with a proof of its key gets tokens bound to that key", func(t *testing.T) {
		code, verifier := boundCode(t)
		status, body := env.exchangeDPoP(t, code, verifier, env.flowProof(t, key, oauth2.TokenPath))
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.Equal(t, "DPoP", body["token_type"])
		assert.Equal(t, map[string]any{"jkt": key.jkt}, signedClaims(t, str(body["access_token"]))["cnf"])
	})
	t.Run("a code without dpop_jkt is not bound: any key, or none, may exchange it", func(t *testing.T) {
		verifier, challenge := pkcePair()
		code := env.codeOf(t, env.spaRequest(challenge))
		status, body := env.exchangeDPoP(t, code, verifier, env.flowProof(t, other, oauth2.TokenPath))
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.Equal(t, map[string]any{"jkt": other.jkt}, signedClaims(t, str(body["access_token"]))["cnf"])
	})
	for _, tt := range []struct{ name, jkt string }{
		{"a dpop_jkt that is no thumbprint is redirected as invalid_request", "not-a-thumbprint"},
		{"a padded dpop_jkt is redirected as invalid_request", key.jkt + "="},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, challenge := pkcePair()
			cb := env.browser(t).Get(env.spaRequest(challenge, "dpop_jkt", tt.jkt)).Callback(t)
			assert.Equal(t, "invalid_request", cb.Error)
			assert.Contains(t, cb.ErrorDescription, "dpop_jkt")
			assert.Empty(t, cb.Code)
		})
	}
	t.Run("dpop_jkt sent twice is redirected as invalid_request", func(t *testing.T) {
		_, challenge := pkcePair()
		cb := env.browser(t).Get(env.spaRequest(challenge, "dpop_jkt", key.jkt, "dpop_jkt", other.jkt)).Callback(t)
		assert.Equal(t, "invalid_request", cb.Error)
	})
	t.Run("a client with DPoP Disabled may not send dpop_jkt", func(t *testing.T) {
		env.setClientDPoP(t, spaClientID, registry.DPoPDisabled)
		defer env.setClientDPoP(t, spaClientID, registry.DPoPOptional)
		_, challenge := pkcePair()
		cb := env.browser(t).Get(env.spaRequest(challenge, "dpop_jkt", key.jkt)).Callback(t)
		assert.Equal(t, "invalid_request", cb.Error)
		assert.Contains(t, cb.ErrorDescription, "Disabled")
	})
}

func TestAPushedRequestBindsTheCodeToADPoPKey(t *testing.T) {
	env := newFlowEnv(t)
	key, other := newDPoPKey(t), newDPoPKey(t)
	// push sends a pushed request with the DPoP proofs given.
	push := func(t *testing.T, form url.Values, proofs ...string) response {
		t.Helper()
		rq := request{path: oauth2.PushedAuthorizationRequestPath, contentType: formType, body: form.Encode(), header: http.Header{}}
		for _, p := range proofs {
			rq.header.Add("DPoP", p)
		}
		return do(t, env.srv, rq)
	}
	// codeThrough pushes form with proofs and signs in through the request_uri.
	codeThrough := func(t *testing.T, form url.Values, proofs ...string) string {
		t.Helper()
		res := push(t, form, proofs...)
		require.Equal(t, http.StatusCreated, res.status, "%v", res.body)
		return env.codeOf(t, env.authorizeURL("client_id", spaClientID, "request_uri", str(res.body["request_uri"])))
	}
	parProof := func(t *testing.T, k dpopKey) string {
		return env.flowProof(t, k, oauth2.PushedAuthorizationRequestPath)
	}

	tests := []struct {
		name  string
		extra []string // pushForm's extra parameters
		proof func(t *testing.T) []string
	}{
		{"dpop_jkt in the pushed request binds the code", []string{"dpop_jkt", key.jkt}, func(*testing.T) []string { return nil }},
		{"a DPoP proof with the push binds the code to its key (RFC 9449 10.1)", nil,
			func(t *testing.T) []string { return []string{parProof(t, key)} }},
		{"a DPoP proof and the same dpop_jkt bind the code", []string{"dpop_jkt", key.jkt}, func(t *testing.T) []string { return []string{parProof(t, key)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifier, challenge := pkcePair()
			code := codeThrough(t, pushForm(challenge, tt.extra...), tt.proof(t)...)
			status, body := env.exchangeDPoP(t, code, verifier, env.flowProof(t, other, oauth2.TokenPath))
			assert.Equal(t, "invalid_grant", body["error"], "another key: %d", status)

			verifier, challenge = pkcePair()
			code = codeThrough(t, pushForm(challenge, tt.extra...), tt.proof(t)...)
			status, body = env.exchangeDPoP(t, code, verifier, env.flowProof(t, key, oauth2.TokenPath))
			require.Equal(t, http.StatusOK, status, "%v", body)
			assert.Equal(t, map[string]any{"jkt": key.jkt}, signedClaims(t, str(body["access_token"]))["cnf"])
		})
	}
	refusals := []struct {
		name  string
		extra []string // pushForm's extra parameters
		proof func(t *testing.T) []string
	}{
		{"a proof whose key is not dpop_jkt is invalid_dpop_proof", []string{"dpop_jkt", other.jkt}, func(t *testing.T) []string { return []string{parProof(t, key)} }},
		{"a proof for the token endpoint is invalid_dpop_proof", nil,
			func(t *testing.T) []string { return []string{env.flowProof(t, key, oauth2.TokenPath)} }},
		{"two DPoP headers are invalid_dpop_proof", nil,
			func(t *testing.T) []string { return []string{parProof(t, key), parProof(t, key)} }},
		{"a replayed proof is invalid_dpop_proof", nil, func(t *testing.T) []string {
			p := parProof(t, key)
			_, challenge := pkcePair()
			require.Equal(t, http.StatusCreated, push(t, pushForm(challenge), p).status)
			return []string{p}
		}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, challenge := pkcePair()
			res := push(t, pushForm(challenge, tt.extra...), tt.proof(t)...)
			assert.Equal(t, http.StatusBadRequest, res.status)
			assert.Equal(t, "invalid_dpop_proof", res.body["error"])
			assert.NotContains(t, res.body, "request_uri")
		})
	}
	t.Run("a malformed dpop_jkt is refused at the push with invalid_request", func(t *testing.T) {
		_, challenge := pkcePair()
		res := push(t, pushForm(challenge, "dpop_jkt", "short"))
		assert.Equal(t, http.StatusBadRequest, res.status)
		assert.Equal(t, "invalid_request", res.body["error"])
	})
	t.Run("a Disabled client's proof is ignored: the code is not bound", func(t *testing.T) {
		env.setClientDPoP(t, spaClientID, registry.DPoPDisabled)
		defer env.setClientDPoP(t, spaClientID, registry.DPoPOptional)
		verifier, challenge := pkcePair()
		code := codeThrough(t, pushForm(challenge), parProof(t, key))
		status, body := env.exchangeDPoP(t, code, verifier)
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.Equal(t, "Bearer", body["token_type"])
	})
}

func TestDPoPBindsTheTokensOfTheDeviceFlow(t *testing.T) {
	env := newFlowEnv(t)
	key, other := newDPoPKey(t), newDPoPKey(t)
	// pollDPoP polls as the device client with the proofs given.
	pollDPoP := func(t *testing.T, deviceCode string, proofs ...string) (int, map[string]any) {
		t.Helper()
		var headers []string
		for _, p := range proofs {
			headers = append(headers, "DPoP", p)
		}
		body := url.Values{"grant_type": {oauth2.GrantDeviceCode}, "client_id": {deviceID}, "device_code": {deviceCode}}.Encode()
		return env.tokenPost(t, formType, body, headers...)
	}
	refresh := func(t *testing.T, rt string, proofs ...string) (int, map[string]any) {
		t.Helper()
		var headers []string
		for _, p := range proofs {
			headers = append(headers, "DPoP", p)
		}
		body := url.Values{"grant_type": {"refresh_token"}, "client_id": {deviceID}, "refresh_token": {rt}}.Encode()
		return env.tokenPost(t, formType, body, headers...)
	}
	approved := func(t *testing.T) deviceAuth {
		t.Helper()
		da := env.startDevice(t, deviceID, "openid read:projects offline_access")
		p := env.approveDevice(t, da, "allow")
		require.Equal(t, http.StatusOK, p.Status, p.Body)
		return da
	}

	t.Run("a poll with a proof gets tokens bound to its key, and the public client's refresh token too", func(t *testing.T) {
		da := approved(t)
		status, body := pollDPoP(t, da.DeviceCode, env.flowProof(t, key, oauth2.TokenPath))
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.Equal(t, "DPoP", body["token_type"])
		assert.Equal(t, map[string]any{"jkt": key.jkt}, signedClaims(t, str(body["access_token"]))["cnf"])
		rt := str(body["refresh_token"])
		require.NotEmpty(t, rt)

		status, res := refresh(t, rt, env.flowProof(t, other, oauth2.TokenPath))
		requireOAuthError(t, status, res, http.StatusBadRequest, "invalid_dpop_proof")
		status, res = refresh(t, rt)
		requireOAuthError(t, status, res, http.StatusBadRequest, "invalid_dpop_proof")
		status, res = refresh(t, rt, env.flowProof(t, key, oauth2.TokenPath))
		require.Equal(t, http.StatusOK, status, "%v", res)
		assert.Equal(t, map[string]any{"jkt": key.jkt}, signedClaims(t, str(res["access_token"]))["cnf"])
	})
	t.Run("a bad proof is refused before the device code is looked at, and does not use it up", func(t *testing.T) {
		da := approved(t)
		status, body := pollDPoP(t, da.DeviceCode, env.flowProof(t, key, oauth2.UserinfoPath))
		requireOAuthError(t, status, body, http.StatusBadRequest, "invalid_dpop_proof")
		status, body = pollDPoP(t, da.DeviceCode, env.flowProof(t, key, oauth2.TokenPath))
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.Equal(t, "DPoP", body["token_type"])
	})
	t.Run("a Required client's poll without a proof is invalid_dpop_proof", func(t *testing.T) {
		env.setClientDPoP(t, deviceID, registry.DPoPRequired)
		defer env.setClientDPoP(t, deviceID, registry.DPoPOptional)
		da := approved(t)
		status, body := pollDPoP(t, da.DeviceCode)
		requireOAuthError(t, status, body, http.StatusBadRequest, "invalid_dpop_proof")
		status, body = pollDPoP(t, da.DeviceCode, env.flowProof(t, key, oauth2.TokenPath))
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.Equal(t, "DPoP", body["token_type"])
	})
	t.Run("a poll without a proof gets Bearer tokens when DPoP is Optional", func(t *testing.T) {
		da := approved(t)
		status, body := pollDPoP(t, da.DeviceCode)
		require.Equal(t, http.StatusOK, status, "%v", body)
		assert.Equal(t, "Bearer", body["token_type"])
		assert.NotContains(t, signedClaims(t, str(body["access_token"])), "cnf")
	})
}
