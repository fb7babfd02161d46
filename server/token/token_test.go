package token

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// testKeyring is one keyring with a key per algorithm, generated once: RSA keys are slow.
var testKeyring = sync.OnceValues(func() (*keys.Keyring, error) {
	set, err := keys.Generate(keys.SupportedAlgorithms(), time.Now().Add(-time.Minute))
	if err != nil {
		return nil, err
	}
	kr := keys.NewKeyring()
	return kr, kr.Load(set)
})

func newTestIssuer(t testing.TB, cfg Config) (*Issuer, *keys.Keyring) {
	t.Helper()
	kr, err := testKeyring()
	require.NoError(t, err)
	cfg.Keys = kr
	if cfg.Issuer == "" {
		cfg.Issuer = "https://latchkey.example"
	}
	iss, err := NewIssuer(cfg)
	require.NoError(t, err)
	return iss, kr
}

var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// verify checks the token's signature against the keyring's public keys and returns its
// header and claims.
func verify(t *testing.T, kr *keys.Keyring, tok string) (jose.Header, map[string]any) {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, allowedAlgs)
	require.NoError(t, err)
	require.Len(t, parsed.Headers, 1)
	h := parsed.Headers[0]
	jwks := kr.PublicKeys()
	found := jwks.Key(h.KeyID)
	require.Len(t, found, 1, "kid %q is published", h.KeyID)
	var claims map[string]any
	require.NoError(t, parsed.Claims(found[0].Key, &claims))
	return h, claims
}

func TestIssueAccessToken(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name      string
		cfg       Config
		client    registry.Client
		scopes    []string
		wantAlg   string
		wantAud   any
		wantExpIn int64
		wantScope any
	}{
		{
			name:      "the default is RS256, one hour, and the client ID as audience",
			client:    registry.Client{ID: "svc"},
			wantAlg:   "RS256",
			wantAud:   "svc",
			wantExpIn: 3600,
		},
		{
			name:      "the client's algorithm, lifetime and audiences win",
			client:    registry.Client{ID: "svc", SigningAlgorithm: "EdDSA", AccessTokenLifetime: 5 * time.Minute, Audiences: []string{"https://a", "https://b"}},
			scopes:    []string{"read:projects", "admin:read"},
			wantAlg:   "EdDSA",
			wantAud:   []any{"https://a", "https://b"},
			wantExpIn: 300,
			wantScope: "read:projects admin:read",
		},
		{
			name:      "the configured default algorithm and lifetime apply",
			cfg:       Config{DefaultAlgorithm: "ES256", AccessTokenLifetime: 90 * time.Second},
			client:    registry.Client{ID: "svc", Audiences: []string{"https://api"}},
			scopes:    []string{"read"},
			wantAlg:   "ES256",
			wantAud:   "https://api",
			wantExpIn: 90,
			wantScope: "read",
		},
		{
			name:      "a lifetime under a second is one second",
			client:    registry.Client{ID: "svc", AccessTokenLifetime: time.Millisecond},
			wantAlg:   "RS256",
			wantAud:   "svc",
			wantExpIn: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Now = func() time.Time { return now }
			iss, kr := newTestIssuer(t, tt.cfg)
			at, err := iss.IssueAccessToken(AccessTokenRequest{Client: &tt.client, Subject: tt.client.ID, Scopes: tt.scopes})
			require.NoError(t, err)

			h, claims := verify(t, kr, at.Token)
			assert.Equal(t, tt.wantAlg, h.Algorithm)
			assert.Equal(t, "at+jwt", h.ExtraHeaders[jose.HeaderType])
			assert.Equal(t, at.KeyID, h.KeyID)
			assert.Equal(t, tt.wantAlg, at.Algorithm)

			assert.Equal(t, "https://latchkey.example", claims["iss"])
			assert.Equal(t, tt.client.ID, claims["sub"])
			assert.Equal(t, tt.client.ID, claims["client_id"])
			assert.Equal(t, tt.wantAud, claims["aud"])
			assert.InDelta(t, now.Unix(), claims["iat"], 0)
			assert.InDelta(t, now.Unix()+tt.wantExpIn, claims["exp"], 0)
			assert.Equal(t, tt.wantExpIn, at.ExpiresIn)
			assert.Equal(t, now.Add(time.Duration(tt.wantExpIn)*time.Second), at.ExpiresAt)
			assert.Equal(t, at.ID, claims["jti"])
			raw, err := base64.RawURLEncoding.DecodeString(at.ID)
			require.NoError(t, err)
			assert.Len(t, raw, 16, "jti carries 128 bits")
			if tt.wantScope == nil {
				assert.NotContains(t, claims, "scope")
			} else {
				assert.Equal(t, tt.wantScope, claims["scope"])
			}
			wantClaims := 8 // iss sub aud exp iat jti client_id scope
			if tt.wantScope == nil {
				wantClaims--
			}
			assert.Len(t, claims, wantClaims, "no other claims")
		})
	}
}

func TestIssueAccessTokenIDsAreUnique(t *testing.T) {
	iss, _ := newTestIssuer(t, Config{DefaultAlgorithm: "EdDSA"})
	seen := map[string]bool{}
	c := &registry.Client{ID: "svc"}
	for range 100 {
		at, err := iss.IssueAccessToken(AccessTokenRequest{Client: c, Subject: c.ID})
		require.NoError(t, err)
		require.False(t, seen[at.ID])
		seen[at.ID] = true
	}
}

func TestIssueAccessTokenConcurrently(t *testing.T) {
	iss, kr := newTestIssuer(t, Config{})
	var wg sync.WaitGroup
	tokens := make([][]string, 8)
	for g := range tokens {
		wg.Go(func() {
			alg := []string{keys.ES256, keys.EdDSA}[g%2]
			c := &registry.Client{ID: fmt.Sprintf("client-%d", g), SigningAlgorithm: alg}
			for range 20 {
				at, err := iss.IssueAccessToken(AccessTokenRequest{Client: c, Subject: c.ID, Scopes: []string{"s"}})
				if err != nil {
					t.Error(err)
					return
				}
				tokens[g] = append(tokens[g], at.Token)
			}
		})
	}
	wg.Wait()
	for g, toks := range tokens {
		for _, tok := range toks {
			_, claims := verify(t, kr, tok)
			assert.Equal(t, fmt.Sprintf("client-%d", g), claims["client_id"], "concurrent tokens do not share claims")
		}
	}
}

func TestIssueAccessTokenErrors(t *testing.T) {
	iss, _ := newTestIssuer(t, Config{})
	t.Run("an algorithm without a key is ErrNoKey", func(t *testing.T) {
		_, err := iss.IssueAccessToken(AccessTokenRequest{Client: &registry.Client{ID: "x", SigningAlgorithm: "HS256"}})
		assert.ErrorIs(t, err, keys.ErrNoKey)
	})
	t.Run("no client is an error", func(t *testing.T) {
		_, err := iss.IssueAccessToken(AccessTokenRequest{})
		assert.Error(t, err)
	})
}

func TestNewIssuerChecksConfig(t *testing.T) {
	kr := keys.NewKeyring()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"an issuer is required", Config{Keys: kr}},
		{"keys are required", Config{Issuer: "https://i"}},
		{"an unknown default algorithm is refused", Config{Issuer: "https://i", Keys: kr, DefaultAlgorithm: "none"}},
		{"a negative lifetime is refused", Config{Issuer: "https://i", Keys: kr, AccessTokenLifetime: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewIssuer(tt.cfg)
			assert.Error(t, err)
		})
	}
}

func BenchmarkIssueAccessToken(b *testing.B) {
	for _, alg := range keys.SupportedAlgorithms() {
		b.Run(alg, func(b *testing.B) {
			iss, _ := newTestIssuer(b, Config{DefaultAlgorithm: alg})
			c := &registry.Client{ID: "billing-service", Audiences: []string{"https://api.example.com"},
				SecretHash: sha256.Sum256([]byte("s")), HasSecret: true}
			req := AccessTokenRequest{Client: c, Subject: c.ID, Scopes: []string{"read:projects", "admin:read"}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := iss.IssueAccessToken(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestIssueAccessTokenBindsToADPoPKey(t *testing.T) {
	iss, kr := newTestIssuer(t, Config{})
	client := registry.Client{ID: "svc"}
	at, err := iss.IssueAccessToken(AccessTokenRequest{Client: &client, Subject: "svc", DPoPThumbprint: "abc"})
	require.NoError(t, err)
	_, claims := verify(t, kr, at.Token)
	assert.Equal(t, map[string]any{"jkt": "abc"}, claims["cnf"], "a bound token carries cnf.jkt")

	parsed, err := NewVerifier("https://latchkey.example", kr, time.Now).Verify(at.Token)
	require.NoError(t, err)
	assert.Equal(t, "abc", parsed.DPoPThumbprint(), "the verifier reads cnf back")

	at, err = iss.IssueAccessToken(AccessTokenRequest{Client: &client, Subject: "svc"})
	require.NoError(t, err)
	_, claims = verify(t, kr, at.Token)
	assert.NotContains(t, claims, "cnf", "a Bearer token has no cnf")
}
