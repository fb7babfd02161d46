package token

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestIssueIDToken(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	iss, kr := newTestIssuer(t, Config{Now: func() time.Time { return now }})
	alice := &registry.User{Subject: "0d5c6a0e-1111-4222-8333-944445555666", Username: "alice", Email: "a@example.com", EmailVerified: true,
		DisplayName: "Alice \"A\" L.", Groups: []string{"admins"}}
	tests := []struct {
		name      string
		client    registry.Client
		req       IDTokenRequest
		wantAlg   string
		wantExp   int64
		want      map[string]any
		wantNoKey []string
	}{
		{
			name:    "an RS256 token has the OIDC claims, nonce, at_hash and sid, and no user claims unless released",
			client:  registry.Client{ID: "app", Audiences: []string{"https://api"}},
			req:     IDTokenRequest{AuthTime: now.Add(-time.Minute), Nonce: "n1", AccessToken: "at", SessionID: "op-session"},
			wantAlg: "RS256", wantExp: 3600,
			want: map[string]any{"iss": "https://latchkey.example", "sub": "0d5c6a0e-1111-4222-8333-944445555666", "aud": "app",
				"auth_time": float64(now.Unix() - 60), "nonce": "n1", "at_hash": halfHash(sha256Sum("at")), "sid": "op-session"},
			wantNoKey: []string{"name", "email", "groups", "preferred_username", "azp"},
		},
		{
			name:    "an EdDSA token hashes at_hash with SHA-512 and releases the asked claims",
			client:  registry.Client{ID: "ed", SigningAlgorithm: keys.EdDSA, IDTokenLifetime: 5 * time.Minute},
			req:     IDTokenRequest{AccessToken: "at", Release: ClaimName | ClaimEmail | ClaimEmailVerified | ClaimGroups},
			wantAlg: "EdDSA", wantExp: 300,
			want: map[string]any{"at_hash": halfHash(sha512Sum("at")), "name": "Alice \"A\" L.",
				"email": "a@example.com", "email_verified": true, "groups": []any{"admins"}},
			wantNoKey: []string{"nonce", "auth_time", "preferred_username", "sid"},
		},
		{
			name:    "an ES256 token without an access token has no at_hash; the request's lifetime applies",
			client:  registry.Client{ID: "es", SigningAlgorithm: keys.ES256},
			req:     IDTokenRequest{Release: ClaimPreferredUsername | ClaimEmailVerified, Lifetime: 10 * time.Minute},
			wantAlg: "ES256", wantExp: 600,
			want:      map[string]any{"preferred_username": "alice"},
			wantNoKey: []string{"at_hash", "email_verified"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Client, tt.req.User = &tt.client, alice
			tok, err := iss.IssueIDToken(tt.req)
			require.NoError(t, err)
			h, claims := verify(t, kr, tok)
			assert.Equal(t, tt.wantAlg, h.Algorithm)
			assert.Equal(t, keys.TypeJWT, h.ExtraHeaders[jose.HeaderType])
			assert.InDelta(t, float64(now.Unix()), claims["iat"], 0)
			assert.InDelta(t, float64(now.Unix()+tt.wantExp), claims["exp"], 0)
			for k, v := range tt.want {
				assert.Equal(t, v, claims[k], k)
			}
			for _, k := range tt.wantNoKey {
				assert.NotContains(t, claims, k)
			}
		})
	}
	t.Run("no user is an error", func(t *testing.T) {
		_, err := iss.IssueIDToken(IDTokenRequest{Client: &registry.Client{ID: "x"}})
		require.Error(t, err)
	})
	t.Run("a user without a subject is an error, never a token whose sub is the username", func(t *testing.T) {
		_, err := iss.IssueIDToken(IDTokenRequest{Client: &registry.Client{ID: "x"}, User: &registry.User{Username: "alice"}})
		require.Error(t, err)
	})
}

func sha256Sum(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
func sha512Sum(s string) []byte { h := sha512.Sum512([]byte(s)); return h[:] }
func halfHash(sum []byte) string {
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

func TestAccessTokenHashRefusesUnknownAlgorithms(t *testing.T) {
	_, err := AccessTokenHash("HS256", "x")
	require.Error(t, err)
}

func TestClaimNamesRoundTrip(t *testing.T) {
	for _, name := range ClaimNames() {
		assert.NotZero(t, ClaimByName(name), name)
	}
	assert.Zero(t, ClaimByName("phone_number"))
}
