package handler

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	redisstore "github.com/latchkey-dev/latchkey/server/store/redis"
	"github.com/latchkey-dev/latchkey/server/token"
)

// redisRoundTrips counts the commands and pipelines the client sends: each is one round trip.
type redisRoundTrips struct{ n atomic.Int64 }

func (r *redisRoundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *redisRoundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *redisRoundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// benchRedisStore starts a redis-server of its own on a free loopback port (no persistence) and
// returns a Store over a client that counts round trips. A missing redis-server fails the
// benchmark: `make bench` installs it.
func benchRedisStore(b testing.TB) (*redisstore.Store, *redisRoundTrips) {
	s, rt, _ := startRedis(b)
	return s, rt
}

// startRedis is benchRedisStore that also returns a function killing the redis-server.
func startRedis(b testing.TB) (*redisstore.Store, *redisRoundTrips, func()) {
	b.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		b.Fatal("redis-server not installed (hack/apt-install.sh redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(b, l.Close())
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", b.TempDir())
	require.NoError(b, cmd.Start())
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second,
		WriteTimeout: 2 * time.Second, MaxRetries: 1})
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			b.Fatalf("redis-server on %s did not start", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s := redisstore.NewFromClient(c, "bench:")
	b.Cleanup(func() { _ = s.Close() })
	require.NoError(b, s.LoadScripts(context.Background()))
	rt := &redisRoundTrips{}
	c.AddHook(rt)
	return s, rt, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
}

// withRedis puts the Redis store in the handler's Config, on the wall clock (Redis expires keys
// on its own clock).
func withRedis(s store.Store) func(*Config) {
	return func(c *Config) { c.Store, c.Now = s, time.Now }
}

// BenchmarkCodeExchangeRedis is BenchmarkCodeExchange with the Redis store: the code is stored
// (PutCode) with the timer stopped and outside the round-trip count, so ns/op and redis-rt/op
// are the exchange's alone.
func BenchmarkCodeExchangeRedis(b *testing.B) {
	const verifier = "bench-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	const redirect = "https://app.example/cb"
	for _, alg := range []string{keys.ES256, keys.EdDSA} {
		b.Run(alg, func(b *testing.B) {
			rs, rt := benchRedisStore(b)
			e := newUserEnv(b, withRedis(rs))
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
			var trips int64
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				code, err := oauth2.NewSecret()
				require.NoError(b, err)
				family, err := token.NewFamilyID()
				require.NoError(b, err)
				require.NoError(b, rs.PutCode(b.Context(), store.HashOf(code), store.Code{
					ClientID: id, RedirectURI: redirect, Subject: subjectOf(aliceName),
					Scopes: []string{"openid", projectScope}, CodeChallenge: challenge, CodeChallengeMethod: "S256",
					AuthTime: time.Now(), FamilyID: family,
				}, 10*time.Minute))
				payload := []byte(url.Values{
					"grant_type": {"authorization_code"}, "code": {code},
					"redirect_uri": {redirect}, "code_verifier": {verifier},
				}.Encode())
				body.Reset(payload)
				req.Body, req.ContentLength = body, int64(len(payload))
				w.reset()
				before := rt.n.Load()
				b.StartTimer()
				e.h.ServeHTTP(w, req)
				trips += rt.n.Load() - before
				if w.status != http.StatusOK {
					b.Fatalf("status %d: %s", w.status, w.body.String())
				}
			}
			b.ReportMetric(float64(trips)/float64(b.N), "redis-rt/op")
		})
	}
}

// BenchmarkRefreshRotationRedis is BenchmarkRefreshRotation with the Redis store: each iteration
// presents the refresh token the previous one got.
func BenchmarkRefreshRotationRedis(b *testing.B) {
	for _, alg := range []string{keys.ES256, keys.EdDSA} {
		b.Run(alg, func(b *testing.B) {
			rs, rt := benchRedisStore(b)
			e := newUserEnv(b, withRedis(rs))
			client := map[string]string{keys.ES256: esAppID, keys.EdDSA: edAppID}[alg]
			token := str(e.passwordLogin(b, client, aliceName, alicePassword, projectScope)["refresh_token"])
			req := httptest.NewRequest(http.MethodPost, oauth2.TokenPath, nil)
			req.Header.Set("Content-Type", formType)
			req.Header.Set("Authorization", basic(client, secretOf(client)))
			w := &bodyWriter{header: http.Header{}}
			body := &rewindBody{}
			start := rt.n.Load()
			b.ReportAllocs()
			for b.Loop() {
				payload := []byte("grant_type=refresh_token&refresh_token=" + token)
				body.Reset(payload)
				req.Body, req.ContentLength = body, int64(len(payload))
				w.reset()
				e.h.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					b.Fatalf("status %d: %s", w.status, w.body.String())
				}
				token = refreshFromBody(w.body.Bytes())
			}
			b.ReportMetric(float64(rt.n.Load()-start)/float64(b.N), "redis-rt/op")
		})
	}
}
