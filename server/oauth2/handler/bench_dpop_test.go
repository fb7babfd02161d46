package handler

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/oauth2"
)

// BenchmarkDPoP measures what DPoP adds on the server: a client_credentials token request and
// a userinfo call, each as Bearer and with a DPoP proof (ES256) that the server verifies and
// whose jti it records in the memory store. The proofs are signed before the timer starts:
// signing is the client's cost.
func BenchmarkDPoP(b *testing.B) {
	e := newUserEnv(b)
	key := newDPoPKey(b)
	ccBody := []byte(cc().Encode())
	tokenReq := func(proof string) *http.Request {
		req := httptest.NewRequest(http.MethodPost, oauth2.TokenPath, nil)
		req.Header.Set("Content-Type", formType)
		req.Header.Set("Authorization", basic(resourceID, secretOf(resourceID)))
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		return req
	}
	proofs := func(n int, method, path string, extra map[string]any) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = key.proof(b, method, path, e.clock.Now(), extra)
		}
		return out
	}
	p := &poster{h: e.h, w: bodyWriter{header: http.Header{}, discard: true}}
	run := func(b *testing.B, proofs []string, req *http.Request, body []byte) {
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			p.req = req
			if proofs != nil {
				req.Header.Set("DPoP", proofs[i])
			}
			p.post(b, body)
		}
	}
	b.Run("token request Bearer", func(b *testing.B) { run(b, nil, tokenReq(""), ccBody) })
	b.Run("token request DPoP", func(b *testing.B) {
		run(b, proofs(b.N, http.MethodPost, oauth2.TokenPath, nil), tokenReq(""), ccBody)
	})

	login := func(proof string) string {
		res := e.formDPoP(b, oauth2.TokenPath, appID, url.Values{"grant_type": {"password"},
			"username": {aliceName}, "password": {alicePassword}, "scope": {"openid"}}, proof)
		require.Equal(b, http.StatusOK, res.status, "%v", res.body)
		return str(res.body["access_token"])
	}
	bearerTok := str(e.passwordLogin(b, appID, aliceName, alicePassword, "openid")["access_token"])
	bound := login(e.tokenProof(b, key))
	userinfoReq := func(auth string) *http.Request {
		req := httptest.NewRequest(http.MethodPost, oauth2.UserinfoPath, nil)
		req.Header.Set("Authorization", auth)
		return req
	}
	b.Run("userinfo Bearer", func(b *testing.B) { run(b, nil, userinfoReq("Bearer "+bearerTok), nil) })
	b.Run("userinfo DPoP", func(b *testing.B) {
		run(b, proofs(b.N, http.MethodPost, oauth2.UserinfoPath, map[string]any{"ath": ath(bound)}), userinfoReq("DPoP "+bound), nil)
	})
}
