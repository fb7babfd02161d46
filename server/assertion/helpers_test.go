package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

// testNow is the time of the tests.
func testNow() time.Time { return time.Unix(1_760_000_000, 0) }

const (
	testIssuer   = "https://issuer.example"
	testAudience = "https://latchkey.example/token"
)

// testKey is a private key and its public JWK.
type testKey struct {
	alg     string
	private crypto.Signer
	public  jose.JSONWebKey
}

func newTestKey(t testing.TB, alg, kid string) testKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ES384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case ES512:
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	require.NoError(t, err)
	return testKey{alg: alg, private: priv, public: jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}}
}

// sign signs claims with k under header kid (k's own when kid is nil).
func (k testKey) sign(t testing.TB, claims map[string]any, headers map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.public.KeyID != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), k.public.KeyID)
	}
	for name, v := range headers {
		opts = opts.WithHeader(name, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.alg), Key: k.private}, opts)
	require.NoError(t, err)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	jws, err := signer.Sign(payload)
	require.NoError(t, err)
	s, err := jws.CompactSerialize()
	require.NoError(t, err)
	return s
}

// validClaims are claims every default test Policy accepts at testNow.
func validClaims() map[string]any {
	return map[string]any{
		"iss": testIssuer,
		"sub": "system:serviceaccount:ns:sa",
		"aud": []string{testAudience},
		"exp": testNow().Add(5 * time.Minute).Unix(),
		"iat": testNow().Unix(),
		"nbf": testNow().Unix(),
		"jti": "jti-1",
	}
}

func withClaims(edit func(map[string]any)) map[string]any {
	c := validClaims()
	edit(c)
	return c
}

//nolint:unused // for the verifier tests of the work in progress on server/assertion
func testPolicy() Policy {
	return Policy{Issuer: testIssuer, Audiences: []string{testAudience}, Now: testNow}
}

// rawToken assembles a compact JWS from JSON parts (unsigned: the signature is arbitrary).
func rawToken(header, payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc([]byte("signature"))
}

//nolint:unused // for the verifier tests of the work in progress on server/assertion
func staticKeys(t testing.TB, keys ...testKey) *StaticKeys {
	t.Helper()
	pub := make([]jose.JSONWebKey, 0, len(keys))
	for _, k := range keys {
		pub = append(pub, k.public)
	}
	s, err := NewStaticKeys(pub)
	require.NoError(t, err)
	return s
}
