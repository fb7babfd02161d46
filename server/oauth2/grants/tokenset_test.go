package grants

import (
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/store"
	"github.com/latchkey-dev/latchkey/server/store/memory"
	"github.com/latchkey-dev/latchkey/server/token"
)

func TestIssueKeepsAGivenFamily(t *testing.T) {
	const issuer = "https://latchkey.example"
	now := time.Unix(1_760_000_000, 0)
	clock := func() time.Time { return now }
	set, err := keys.Generate([]string{keys.ES256}, now.Add(-time.Minute))
	require.NoError(t, err)
	kr := keys.NewKeyring()
	require.NoError(t, kr.Load(set))
	signer, err := token.NewIssuer(token.Config{Issuer: issuer, DefaultAlgorithm: keys.ES256, Keys: kr, Now: clock})
	require.NoError(t, err)
	st := memory.New(memory.WithClock(clock))
	lifetimes, err := oauth2.Lifetimes{}.WithDefaults()
	require.NoError(t, err)
	tokens := NewTokenSet(signer, st, lifetimes, clock)

	reg := registry.New()
	reg.PutClient(registry.Client{Source: "apps/web-app", ID: "web-app", Type: registry.Confidential,
		GrantTypes: []string{oauth2.GrantAuthorizationCode, oauth2.GrantRefreshToken}, Scopes: []string{"openid"}})
	reg.PutUser(registry.User{Source: "alice", Subject: "sub-alice", Username: "alice"})
	snap := reg.Snapshot()
	client, _ := snap.Client("web-app")
	user, _ := snap.User("alice")

	fam, err := token.NewFamilyID()
	require.NoError(t, err)
	authTime := now.Add(-time.Minute)
	resp, err := tokens.Issue(t.Context(), UserGrant{
		Client: client, User: user, Snapshot: snap, Scopes: []string{"openid"}, AuthTime: authTime,
		Nonce: "n-0S6_WzA2Mj", FamilyID: fam, SessionID: "op-session",
	})
	require.NoError(t, err)

	v := token.NewVerifier(issuer, kr, clock)
	at, err := v.Verify(resp.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, fam, at.FamilyID, "the access token carries the family as latchkey_family")
	assert.Equal(t, "op-session", at.SessionID, "the access token carries the OP session as sid")
	assert.Equal(t, "sub-alice", at.Subject)
	assert.Equal(t, fam, token.RefreshFamily(resp.RefreshToken), "the refresh token is of the family")
	rec, err := st.GetRefresh(t.Context(), store.HashOf(resp.RefreshToken))
	require.NoError(t, err)
	assert.Equal(t, fam, rec.FamilyID)
	assert.Equal(t, "op-session", rec.SessionID, "the refresh token remembers the OP session")
	assert.True(t, now.Add(oauth2.DefaultRefreshTokenLifetime).Equal(rec.ExpiresAt), "expires %v", rec.ExpiresAt)
	assert.Equal(t, authTime.Unix(), rec.AuthTime.Unix())

	parsed, err := jwt.ParseSigned(resp.IDToken, []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(t, err)
	pub := kr.PublicKeys()
	k := pub.Key(parsed.Headers[0].KeyID)
	require.Len(t, k, 1)
	idc := map[string]any{}
	require.NoError(t, parsed.Claims(k[0].Key, &idc), "the ID token verifies")
	assert.Equal(t, "n-0S6_WzA2Mj", idc["nonce"])
	assert.InDelta(t, float64(authTime.Unix()), idc["auth_time"], 0)
	assert.Equal(t, int64(3600), resp.ExpiresIn)
}
