package handler

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/assertion"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store/memory"
	"github.com/latchkey-dev/latchkey/server/workload"
)

// The clients of BenchmarkClientAuthentication, all issued ES256 access tokens.
const (
	benchSecretID    = "bench-secret"
	benchSAID        = "bench-sa"
	benchPKID        = "bench-pkjwt"
	benchNamespace   = "bench"
	benchSA          = "runner"
	benchCluster     = "https://kubernetes.default.svc.cluster.local"
	benchAssertionKI = "bench-key"
)

// instantReviewer authenticates every token as the bench ServiceAccount at once: the API
// server's side of a TokenReview is BenchmarkTokenReview's (controllers), not this one's.
type instantReviewer struct{ review assertion.Review }

func (r instantReviewer) Review(context.Context, string, []string) (assertion.Review, error) {
	return r.review, nil
}

// benchSigner signs the assertions of the benchmark with one ES256 key.
type benchSigner struct {
	signer jose.Signer
	public jose.JSONWebKey
}

func newBenchSigner(b *testing.B) benchSigner {
	b.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(b, err)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", benchAssertionKI))
	require.NoError(b, err)
	return benchSigner{signer: s, public: jose.JSONWebKey{Key: priv.Public(), KeyID: benchAssertionKI, Algorithm: "ES256", Use: "sig"}}
}

func (s benchSigner) sign(b *testing.B, claims map[string]any) string {
	payload, err := json.Marshal(claims)
	require.NoError(b, err)
	jws, err := s.signer.Sign(payload)
	require.NoError(b, err)
	out, err := jws.CompactSerialize()
	require.NoError(b, err)
	return out
}

// saToken is a projected ServiceAccount token of the bench ServiceAccount for Latchkey, as the
// kubelet hands out (one hour, bound to a pod), with the jti.
func (s benchSigner) saToken(b *testing.B, now time.Time, jti string) string {
	return s.sign(b, map[string]any{
		"iss": benchCluster, "sub": registry.ServiceAccountSubject(benchNamespace, benchSA), "aud": []string{testIssuer},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": jti,
		"kubernetes.io": map[string]any{
			"namespace":      benchNamespace,
			"serviceaccount": map[string]any{"name": benchSA, "uid": "0f4c9a52-6d1e-4d1b-9a0e-5b1f2c3d4e5f"},
			"pod":            map[string]any{"name": "runner-6d8f7b9c4-x2k7q", "uid": "7a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"},
			"node":           map[string]any{"name": "node-1", "uid": "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"},
		},
	})
}

// pkAssertion is a private_key_jwt assertion of the bench client for the token endpoint.
func (s benchSigner) pkAssertion(b *testing.B, now time.Time, jti string) string {
	return s.sign(b, map[string]any{
		"iss": benchPKID, "sub": benchPKID, "aud": testIssuer + oauth2.TokenPath,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": jti,
	})
}

// assertionPayload is the form body of a client_credentials request with the assertion.
func assertionPayload(clientID, tok string) []byte {
	return []byte(url.Values{
		"grant_type": {"client_credentials"}, "scope": {"read"}, "client_id": {clientID},
		"client_assertion_type": {oauth2.ClientAssertionTypeJWTBearer}, "client_assertion": {tok},
	}.Encode())
}

// benchAuthHandler is the handler with the memory store (brute-force accounting and jti
// counters, as in production, where a store is always configured) and a workload.Verifier of
// cfg.
func benchAuthHandler(b *testing.B, reg *registry.Registry, cfg workload.Config) http.Handler {
	b.Helper()
	kr, err := testKeyring()
	require.NoError(b, err)
	st := memory.New()
	cfg.Issuer, cfg.TokenEndpoint, cfg.Replay = testIssuer, testIssuer+oauth2.TokenPath, st
	v, err := workload.New(cfg)
	require.NoError(b, err)
	h, err := New(Config{Issuer: testIssuer, Registry: reg, Keys: kr, Now: time.Now, Store: st, ClientAssertions: v})
	require.NoError(b, err)
	return h
}

// assertionPoster posts bodies without an Authorization header.
func assertionPoster(h http.Handler) *poster {
	p := newPoster(h, oauth2.TokenPath, "", false)
	p.req.Header.Del("Authorization")
	return p
}

// BenchmarkClientAuthentication measures a whole client_credentials request (form body, one
// scope, an ES256 access token) through the handler's ServeHTTP, without the network, by client
// authentication method. Every handler has the memory store, so each request also pays the
// brute-force accounting, as in production.
//
// Assertions are signed before the timed part: signing is the client's cost, not the server's.
// Where each request needs a fresh assertion (a TokenReview cache miss, a single-use jti), b.N
// of them are pre-signed and the timer reset, so that ns/op and allocs/op are the server's
// alone (b.StopTimer around each signature would cost more than what it hides).
func BenchmarkClientAuthentication(b *testing.B) {
	signer := newBenchSigner(b)
	cc := []string{"client_credentials"}
	reg := registry.New()
	reg.PutScope("scope/read", registry.Scope{Name: "read"})
	for _, c := range []registry.Client{
		{ID: benchSecretID, SecretHash: registry.HashSecret([]byte(commonSecret)), HasSecret: true},
		{ID: benchSAID, AuthMethod: registry.AuthMethodServiceAccountToken, ServiceAccount: benchSA},
		{ID: benchPKID, AuthMethod: registry.AuthMethodPrivateKeyJWT, PublicKeys: []jose.JSONWebKey{signer.public}},
	} {
		c.Source, c.Namespace, c.Type, c.GrantTypes = benchNamespace+"/"+c.ID, benchNamespace, registry.Confidential, cc
		c.Scopes, c.SigningAlgorithm = []string{"read"}, keys.ES256
		reg.PutClient(c)
	}
	reviewer := instantReviewer{assertion.Review{
		Authenticated: true, Username: registry.ServiceAccountSubject(benchNamespace, benchSA), Audiences: []string{testIssuer},
	}}
	clusterKeys, err := assertion.NewStaticKeys([]jose.JSONWebKey{signer.public})
	require.NoError(b, err)

	b.Run("client_secret_basic", func(b *testing.B) {
		p := newPoster(benchAuthHandler(b, reg, workload.Config{}), oauth2.TokenPath, basic(benchSecretID, commonSecret), false)
		payload := []byte("grant_type=client_credentials&scope=read")
		b.ReportAllocs()
		for b.Loop() {
			p.post(b, payload)
		}
	})
	b.Run("service_account_token/tokenreview_cache_hit", func(b *testing.B) {
		// One token, reviewed once before the loop: every timed request is a cache hit (the
		// review is kept for ReviewTTL, longer than the run).
		p := assertionPoster(benchAuthHandler(b, reg, workload.Config{Reviewer: reviewer, ReviewTTL: time.Hour}))
		payload := assertionPayload(benchSAID, signer.saToken(b, time.Now(), "sa-jti"))
		p.post(b, payload)
		b.ReportAllocs()
		for b.Loop() {
			p.post(b, payload)
		}
	})
	b.Run("service_account_token/tokenreview_cache_miss", func(b *testing.B) {
		// A fresh token per request: each misses the cache, and the Reviewer answers at once, so
		// this is our side of a miss (claims check, cache lookup and store, the call); add
		// BenchmarkTokenReview for the API server's round trip.
		p := assertionPoster(benchAuthHandler(b, reg, workload.Config{Reviewer: reviewer}))
		now := time.Now()
		payloads := make([][]byte, b.N)
		for i := range payloads {
			payloads[i] = assertionPayload(benchSAID, signer.saToken(b, now, "sa-jti-"+strconv.Itoa(i)))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			p.post(b, payloads[i])
		}
	})
	b.Run("service_account_token/jwks", func(b *testing.B) {
		// JWKS mode: the signature is checked against the cluster's keys on every request (no
		// cache, and jti is not single-use for ServiceAccount tokens), so one token serves.
		p := assertionPoster(benchAuthHandler(b, reg, workload.Config{ClusterKeys: clusterKeys, ClusterIssuer: benchCluster}))
		payload := assertionPayload(benchSAID, signer.saToken(b, time.Now(), "sa-jti"))
		b.ReportAllocs()
		for b.Loop() {
			p.post(b, payload)
		}
	})
	b.Run("private_key_jwt", func(b *testing.B) {
		// A fresh jti per request (each is single-use), counted in the memory store.
		p := assertionPoster(benchAuthHandler(b, reg, workload.Config{}))
		now := time.Now()
		payloads := make([][]byte, b.N)
		for i := range payloads {
			payloads[i] = assertionPayload(benchPKID, signer.pkAssertion(b, now, "pk-jti-"+strconv.Itoa(i)))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			p.post(b, payloads[i])
		}
	})
}
