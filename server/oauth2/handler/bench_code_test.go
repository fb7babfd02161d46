package handler

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/token"
)

// BenchmarkCodeExchange measures an authorization_code exchange with PKCE (S256) through the
// handler's ServeHTTP: the one-time take of the code, the verifier check and the issue of an
// access, refresh and ID token. Each iteration makes and stores a fresh code first (about 1 µs).
func BenchmarkCodeExchange(b *testing.B) {
	const verifier = "bench-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	const redirect = "https://app.example/cb"
	for _, alg := range keys.SupportedAlgorithms() {
		b.Run(alg, func(b *testing.B) {
			e := newUserEnv(b)
			id := "code-" + alg
			e.reg.PutClient(registry.Client{
				Source: "bench/" + id, Namespace: "bench", ID: id, Type: registry.Confidential,
				GrantTypes: []string{"authorization_code", "refresh_token"}, RedirectURIs: []string{redirect},
				Scopes: []string{"openid", "profile", projectScope}, SigningAlgorithm: alg,
				SecretHash: registry.HashSecret([]byte(commonSecret)), HasSecret: true,
			})
			req := httptest.NewRequest(http.MethodPost, oauth2.TokenPath, nil)
			req.Header.Set("Content-Type", formType)
			req.Header.Set("Authorization", basic(id, commonSecret))
			w := &bodyWriter{header: http.Header{}}
			body := &rewindBody{}
			b.ReportAllocs()
			for b.Loop() {
				code, err := oauth2.NewSecret()
				require.NoError(b, err)
				family, err := token.NewFamilyID()
				require.NoError(b, err)
				require.NoError(b, e.store.PutCode(b.Context(), store.HashOf(code), store.Code{
					ClientID: id, RedirectURI: redirect, Subject: subjectOf(aliceName),
					Scopes: []string{"openid", projectScope}, CodeChallenge: challenge, CodeChallengeMethod: "S256",
					AuthTime: testNow, FamilyID: family,
				}, 10*time.Minute))
				payload := []byte(url.Values{
					"grant_type": {"authorization_code"}, "code": {code},
					"redirect_uri": {redirect}, "code_verifier": {verifier},
				}.Encode())
				body.Reset(payload)
				req.Body, req.ContentLength = body, int64(len(payload))
				w.reset()
				e.h.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					b.Fatalf("status %d: %s", w.status, w.body.String())
				}
			}
		})
	}
}
