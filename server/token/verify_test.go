package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestVerifierAcceptsWhatTheIssuerSigned(t *testing.T) {
	now := time.Unix(1_760_000_000, 0)
	iss, kr := newTestIssuer(t, Config{Now: func() time.Time { return now }})
	v := NewVerifier("https://latchkey.example", kr, func() time.Time { return now })
	for _, alg := range keys.SupportedAlgorithms() {
		t.Run("an "+alg+" access token verifies with every claim read back", func(t *testing.T) {
			c := &registry.Client{ID: "svc", SigningAlgorithm: alg, Audiences: []string{"https://a.example", "https://b.example"}}
			at, err := iss.IssueAccessToken(AccessTokenRequest{Client: c, Subject: "sub-1", Scopes: []string{"read", "write"}, FamilyID: "fam", SessionID: "op"})
			require.NoError(t, err)
			got, err := v.Verify(at.Token)
			require.NoError(t, err)
			assert.Equal(t, AccessTokenClaims{
				Issuer: "https://latchkey.example", Subject: "sub-1", Audience: Audience{"https://a.example", "https://b.example"},
				Expiry: now.Add(time.Hour).Unix(), IssuedAt: now.Unix(), ID: at.ID, ClientID: "svc", Scope: "read write", FamilyID: "fam", SessionID: "op",
			}, *got)
			assert.True(t, got.ForUser())
		})
	}
	t.Run("a single audience reads back as one value", func(t *testing.T) {
		at, err := iss.IssueAccessToken(AccessTokenRequest{Client: &registry.Client{ID: "svc"}, Subject: "svc"})
		require.NoError(t, err)
		got, err := v.Verify(at.Token)
		require.NoError(t, err)
		assert.Equal(t, Audience{"svc"}, got.Audience)
		assert.False(t, got.ForUser(), "a token without a family acts for no user")
	})
}

func TestVerifierRefusesWhatItDidNotIssue(t *testing.T) {
	now := time.Unix(1_760_000_000, 0)
	clock := now
	iss, kr := newTestIssuer(t, Config{Now: func() time.Time { return clock }})
	c := &registry.Client{ID: "svc", SigningAlgorithm: keys.ES256}
	at, err := iss.IssueAccessToken(AccessTokenRequest{Client: c, Subject: "svc"})
	require.NoError(t, err)
	idt, err := iss.IssueIDToken(IDTokenRequest{Client: c, User: &registry.User{Subject: "u", Username: "u"}})
	require.NoError(t, err)
	parts := strings.Split(at.Token, ".")

	// A token signed by a key of its own, published nowhere, with a header naming a real kid.
	foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: foreign},
		(&jose.SignerOptions{}).WithType(keys.TypeAccessToken).WithHeader("kid", at.KeyID))
	require.NoError(t, err)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	forged, err := signer.Sign(payload)
	require.NoError(t, err)
	forgedToken, err := forged.CompactSerialize()
	require.NoError(t, err)

	alterClaims := func(change func(m map[string]any)) string {
		var m map[string]any
		require.NoError(t, json.Unmarshal(payload, &m))
		change(m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	}
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"`+at.KeyID+`"}`)) + "." + parts[1] + "."
	hs := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"at+jwt","kid":"`+at.KeyID+`"}`)) + "." + parts[1] + "." + parts[2]

	tests := []struct {
		name, token string
		issuer      string
		at          time.Time
	}{
		{name: "an ID token (typ JWT) is refused", token: idt},
		{name: "a token from another issuer is refused", token: at.Token, issuer: "https://other.example"},
		{name: "an expired token is refused", token: at.Token, at: now.Add(time.Hour)},
		{name: "a token issued beyond the clock skew in the future is refused", token: at.Token, at: now.Add(-keys.ClockSkew - time.Minute)},
		{name: "a signature by an unpublished key is refused", token: forgedToken},
		{name: "changed claims break the signature", token: alterClaims(func(m map[string]any) { m["scope"] = "admin" })},
		{name: "alg none is refused", token: none},
		{name: "HS256 keyed with a public key is refused", token: hs},
		{name: "a token that is not a compact JWS is refused", token: parts[0] + "." + parts[1]},
		{name: "an oversized token is refused", token: at.Token + strings.Repeat("A", MaxTokenBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer := "https://latchkey.example"
			if tt.issuer != "" {
				issuer = tt.issuer
			}
			clock = now
			if !tt.at.IsZero() {
				clock = tt.at
			}
			defer func() { clock = now }()
			got, err := NewVerifier(issuer, kr, func() time.Time { return clock }).Verify(tt.token)
			require.ErrorIs(t, err, ErrInvalid)
			assert.Nil(t, got)
		})
	}
}

func FuzzVerify(f *testing.F) {
	kr, err := testKeyring()
	require.NoError(f, err)
	iss, err := NewIssuer(Config{Issuer: "https://latchkey.example", Keys: kr})
	require.NoError(f, err)
	at, err := iss.IssueAccessToken(AccessTokenRequest{Client: &registry.Client{ID: "svc"}, Subject: "svc"})
	require.NoError(f, err)
	f.Add(at.Token)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	v := NewVerifier("https://latchkey.example", kr, nil)
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			require.Nil(t, c)
			return
		}
		require.NotEmpty(t, c.ID)
		require.NotEmpty(t, c.ClientID)
		require.Equal(t, "https://latchkey.example", c.Issuer)
	})
}
