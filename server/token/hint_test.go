package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestVerifyIDTokenHint(t *testing.T) {
	now := time.Unix(1_760_000_000, 0)
	iss, kr := newTestIssuer(t, Config{Now: func() time.Time { return now }})
	alice := &registry.User{Subject: "sub-alice", Username: "alice"}
	app := &registry.Client{ID: "app"}
	idt, err := iss.IssueIDToken(IDTokenRequest{Client: app, User: alice, SessionID: "op-1"})
	require.NoError(t, err)
	noSID, err := iss.IssueIDToken(IDTokenRequest{Client: &registry.Client{ID: "es", SigningAlgorithm: keys.ES256}, User: alice})
	require.NoError(t, err)

	t.Run("a fresh hint names the user, the client and the session", func(t *testing.T) {
		got, err := NewVerifier("https://latchkey.example", kr, func() time.Time { return now }).VerifyIDTokenHint(idt)
		require.NoError(t, err)
		assert.Equal(t, &IDTokenHint{Subject: "sub-alice", ClientID: "app", SessionID: "op-1"}, got)
	})
	t.Run("an expired hint is accepted for identification and says it expired", func(t *testing.T) {
		later := now.Add(30 * 24 * time.Hour)
		got, err := NewVerifier("https://latchkey.example", kr, func() time.Time { return later }).VerifyIDTokenHint(idt)
		require.NoError(t, err)
		assert.True(t, got.Expired)
		assert.Equal(t, "app", got.ClientID)
	})
	t.Run("a hint without sid has an empty session", func(t *testing.T) {
		got, err := NewVerifier("https://latchkey.example", kr, func() time.Time { return now }).VerifyIDTokenHint(noSID)
		require.NoError(t, err)
		assert.Empty(t, got.SessionID)
		assert.Equal(t, "es", got.ClientID)
	})

	parts := strings.Split(idt, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	kid := between(string(header), `"kid":"`, `"`)
	foreignKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: foreignKey},
		(&jose.SignerOptions{}).WithType(keys.TypeJWT).WithHeader("kid", kid))
	require.NoError(t, err)
	forged, err := signer.Sign(payload)
	require.NoError(t, err)
	forgedToken, err := forged.CompactSerialize()
	require.NoError(t, err)
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"`+kid+`"}`)) + "." + parts[1] + "."
	at, err := iss.IssueAccessToken(AccessTokenRequest{Client: app, Subject: "sub-alice", FamilyID: "fam"})
	require.NoError(t, err)

	tests := []struct {
		name, token, issuer string
	}{
		{name: "a hint from another issuer is refused", token: idt, issuer: "https://other.example"},
		{name: "a hint signed by an unpublished key is refused", token: forgedToken},
		{name: "a hint with alg none is refused", token: none},
		{name: "an access token is no hint", token: at.Token},
		{name: "a hint with changed claims is refused", token: parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://latchkey.example","sub":"mallory","aud":"app"}`)) + "." + parts[2]},
		{name: "something that is not a compact JWS is refused", token: parts[0] + "." + parts[1]},
		{name: "an oversized hint is refused", token: idt + strings.Repeat("A", MaxTokenBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer := "https://latchkey.example"
			if tt.issuer != "" {
				issuer = tt.issuer
			}
			got, err := NewVerifier(issuer, kr, func() time.Time { return now }).VerifyIDTokenHint(tt.token)
			require.ErrorIs(t, err, ErrInvalidHint)
			assert.Nil(t, got)
		})
	}
}

// between returns the text of s between the first before and the next after.
func between(s, before, after string) string {
	_, rest, _ := strings.Cut(s, before)
	v, _, _ := strings.Cut(rest, after)
	return v
}

func FuzzVerifyIDTokenHint(f *testing.F) {
	kr, err := testKeyring()
	require.NoError(f, err)
	iss, err := NewIssuer(Config{Issuer: "https://latchkey.example", Keys: kr})
	require.NoError(f, err)
	idt, err := iss.IssueIDToken(IDTokenRequest{Client: &registry.Client{ID: "app"}, User: &registry.User{Subject: "s"}, SessionID: "op"})
	require.NoError(f, err)
	f.Add(idt)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	v := NewVerifier("https://latchkey.example", kr, nil)
	f.Fuzz(func(t *testing.T, tok string) {
		h, err := v.VerifyIDTokenHint(tok)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidHint)
			require.Nil(t, h)
			return
		}
		require.NotEmpty(t, h.Subject)
		require.NotEmpty(t, h.ClientID)
	})
}

func TestVerifyIDToken(t *testing.T) {
	now := time.Unix(1_760_000_000, 0)
	iss, kr := newTestIssuer(t, Config{Now: func() time.Time { return now }})
	idt, err := iss.IssueIDToken(IDTokenRequest{Client: &registry.Client{ID: "app"}, User: &registry.User{Subject: "sub-alice"},
		SessionID: "op-1", Lifetime: time.Hour})
	require.NoError(t, err)
	at, err := iss.IssueAccessToken(AccessTokenRequest{Client: &registry.Client{ID: "app"}, Subject: "sub-alice"})
	require.NoError(t, err)

	t.Run("a valid ID token names the user, the client, the session and the expiry", func(t *testing.T) {
		got, err := NewVerifier("https://latchkey.example", kr, func() time.Time { return now }).VerifyIDToken(idt)
		require.NoError(t, err)
		assert.Equal(t, &IDToken{Subject: "sub-alice", ClientID: "app", SessionID: "op-1", Expiry: now.Add(time.Hour)}, got)
	})
	t.Run("an expired ID token is refused, unlike a hint", func(t *testing.T) {
		_, err := NewVerifier("https://latchkey.example", kr, func() time.Time { return now.Add(time.Hour) }).VerifyIDToken(idt)
		require.ErrorIs(t, err, ErrInvalid)
	})
	t.Run("an access token is no ID token", func(t *testing.T) {
		_, err := NewVerifier("https://latchkey.example", kr, func() time.Time { return now }).VerifyIDToken(at.Token)
		require.ErrorIs(t, err, ErrInvalid)
	})
	t.Run("an ID token is no access token", func(t *testing.T) {
		_, err := NewVerifier("https://latchkey.example", kr, func() time.Time { return now }).Verify(idt)
		require.ErrorIs(t, err, ErrInvalid)
	})
}

func FuzzVerifyIDToken(f *testing.F) {
	kr, err := testKeyring()
	require.NoError(f, err)
	iss, err := NewIssuer(Config{Issuer: "https://latchkey.example", Keys: kr})
	require.NoError(f, err)
	idt, err := iss.IssueIDToken(IDTokenRequest{Client: &registry.Client{ID: "app"}, User: &registry.User{Subject: "s"}})
	require.NoError(f, err)
	f.Add(idt)
	f.Add("a.b.c")
	v := NewVerifier("https://latchkey.example", kr, nil)
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := v.VerifyIDToken(tok)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			require.Nil(t, got)
			return
		}
		require.NotEmpty(t, got.Subject)
		require.NotEmpty(t, got.ClientID)
		require.True(t, got.Expiry.After(time.Now()))
	})
}

func TestActClaimsRoundTrip(t *testing.T) {
	now := time.Unix(1_760_000_000, 0)
	iss, kr := newTestIssuer(t, Config{Now: func() time.Time { return now }})
	act := &Actor{Subject: "gateway", Actor: &Actor{Subject: "job", Issuer: "https://ci.example"}}
	at, err := iss.IssueAccessToken(AccessTokenRequest{Client: &registry.Client{ID: "app"}, Subject: "sub-alice", Actor: act})
	require.NoError(t, err)
	c, err := NewVerifier("https://latchkey.example", kr, func() time.Time { return now }).Verify(at.Token)
	require.NoError(t, err)
	assert.Equal(t, act, c.Actor)
	assert.Equal(t, 2, c.Actor.Depth())
	assert.Nil(t, c.MayAct)
}
