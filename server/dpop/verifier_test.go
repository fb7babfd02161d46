package dpop_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/server/dpop"
	"github.com/latchkey-dev/latchkey/server/store/memory"
)

const tokenURI = "https://id.example.com/oauth2/token"

// proofSpec describes one proof; zero fields get valid defaults.
type proofSpec struct {
	key     any // private key; a fresh P-256 key when nil
	alg     jose.SignatureAlgorithm
	typ     string
	jwk     *jose.JSONWebKey // header jwk; the public half of key when nil
	claims  map[string]any
	drop    []string
	noJWK   bool
	rawBody []byte
}

var testNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func newP256(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func publicOf(key any) any {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return k.Public()
	case ed25519.PrivateKey:
		return k.Public()
	case *rsa.PrivateKey:
		return k.Public()
	}
	return nil
}

func makeProof(t testing.TB, s proofSpec) string {
	t.Helper()
	if s.key == nil {
		s.key = newP256(t)
	}
	if s.alg == "" {
		s.alg = jose.ES256
	}
	if s.typ == "" {
		s.typ = "dpop+jwt"
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(s.typ))
	if !s.noJWK {
		jwk := s.jwk
		if jwk == nil {
			jwk = &jose.JSONWebKey{Key: publicOf(s.key)}
		}
		opts = opts.WithHeader("jwk", jwk)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, opts)
	require.NoError(t, err)
	c := map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(randBytes(t, 12)),
		"htm": http.MethodPost,
		"htu": tokenURI,
		"iat": testNow.Unix(),
	}
	for k, v := range s.claims {
		c[k] = v
	}
	for _, k := range s.drop {
		delete(c, k)
	}
	body := s.rawBody
	if body == nil {
		body, err = json.Marshal(c)
		require.NoError(t, err)
	}
	jws, err := signer.Sign(body)
	require.NoError(t, err)
	out, err := jws.CompactSerialize()
	require.NoError(t, err)
	return out
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func newVerifier(t testing.TB, nonces *dpop.Nonces) *dpop.Verifier {
	v, err := dpop.NewVerifier(dpop.Config{
		Replay: memory.New(),
		Nonces: nonces,
		Now:    func() time.Time { return testNow },
	})
	require.NoError(t, err)
	return v
}

func newNonces(t testing.TB) *dpop.Nonces {
	key, err := dpop.NonceKey([]byte("the signing key set every replica loads"))
	require.NoError(t, err)
	n, err := dpop.NewNonces(key, time.Minute)
	require.NoError(t, err)
	return n
}

func TestVerifyAcceptsValidProofs(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	tests := []struct {
		name string
		spec proofSpec
		uri  string
	}{
		{"an ES256 proof is accepted", proofSpec{}, tokenURI},
		{"an EdDSA proof is accepted", proofSpec{key: edKey, alg: jose.EdDSA}, tokenURI},
		{"an RS256 proof is accepted", proofSpec{key: rsaKey, alg: jose.RS256}, tokenURI},
		{"a PS256 proof is accepted", proofSpec{key: rsaKey, alg: jose.PS256}, tokenURI},
		{"an htu differing in case of scheme and host and default port is accepted",
			proofSpec{claims: map[string]any{"htu": "HTTPS://ID.Example.COM:443/oauth2/token"}}, tokenURI},
		{"the request URI's query is ignored", proofSpec{}, tokenURI + "?x=1#f"},
		{"an iat 59 seconds old is accepted",
			proofSpec{claims: map[string]any{"iat": testNow.Add(-59 * time.Second).Unix()}}, tokenURI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, nil)
			key := tt.spec.key
			if key == nil {
				key = newP256(t)
				tt.spec.key = key
			}
			p, err := v.Verify(context.Background(), dpop.Request{
				Proof: makeProof(t, tt.spec), Method: http.MethodPost, URI: tt.uri})
			require.NoError(t, err)
			jwk := jose.JSONWebKey{Key: publicOf(key)}
			tp, err := jwk.Thumbprint(crypto.SHA256)
			require.NoError(t, err)
			assert.Equal(t, base64.RawURLEncoding.EncodeToString(tp), p.Thumbprint)
		})
	}
}

func TestVerifyRefusesBadProofs(t *testing.T) {
	hmacProof := func(t testing.TB) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: randBytes(t, 32)},
			(&jose.SignerOptions{}).WithType("dpop+jwt"))
		require.NoError(t, err)
		jws, err := s.Sign([]byte(`{"jti":"a","htm":"POST","htu":"` + tokenURI + `","iat":` +
			jsonNum(testNow.Unix()) + `}`))
		require.NoError(t, err)
		out, err := jws.CompactSerialize()
		require.NoError(t, err)
		return out
	}
	noneProof := func(t testing.TB) string {
		enc := base64.RawURLEncoding.EncodeToString
		key := newP256(t)
		jwk, err := json.Marshal(jose.JSONWebKey{Key: key.Public()})
		require.NoError(t, err)
		h := enc([]byte(`{"alg":"none","typ":"dpop+jwt","jwk":` + string(jwk) + `}`))
		b := enc([]byte(`{"jti":"a","htm":"POST","htu":"` + tokenURI + `","iat":` + jsonNum(testNow.Unix()) + `}`))
		return h + "." + b + "."
	}
	other := newP256(t)
	priv := newP256(t)
	tests := []struct {
		name   string
		proof  func(t testing.TB) string
		method string
		token  string
	}{
		{"a proof with the wrong htu is refused", spec(proofSpec{claims: map[string]any{"htu": "https://id.example.com/oauth2/userinfo"}}), "", ""},
		{"a proof for another host is refused", spec(proofSpec{claims: map[string]any{"htu": "https://evil.example.com/oauth2/token"}}), "", ""},
		{"a proof with the wrong htm is refused", spec(proofSpec{claims: map[string]any{"htm": "GET"}}), "", ""},
		{"a proof whose htm differs in case is refused", spec(proofSpec{claims: map[string]any{"htm": "post"}}), "", ""},
		{"a stale iat is refused", spec(proofSpec{claims: map[string]any{"iat": testNow.Add(-61 * time.Second).Unix()}}), "", ""},
		{"an iat in the future is refused", spec(proofSpec{claims: map[string]any{"iat": testNow.Add(61 * time.Second).Unix()}}), "", ""},
		{"a proof without jti is refused", spec(proofSpec{drop: []string{"jti"}}), "", ""},
		{"a proof without iat is refused", spec(proofSpec{drop: []string{"iat"}}), "", ""},
		{"a string iat is refused", spec(proofSpec{claims: map[string]any{"iat": "now"}}), "", ""},
		{"a proof of typ JWT is refused", spec(proofSpec{typ: "JWT"}), "", ""},
		{"a proof without a jwk is refused", spec(proofSpec{noJWK: true}), "", ""},
		{"a proof with a private key in the jwk is refused", spec(proofSpec{key: priv, jwk: &jose.JSONWebKey{Key: priv}}), "", ""},
		{"a proof signed by a key other than its jwk is refused", spec(proofSpec{jwk: &jose.JSONWebKey{Key: other.Public()}}), "", ""},
		{"a proof with alg none is refused", noneProof, "", ""},
		{"a proof with an HMAC alg is refused", hmacProof, "", ""},
		{"a body that is not JSON is refused", spec(proofSpec{rawBody: []byte("not json")}), "", ""},
		{"an empty proof is refused", func(testing.TB) string { return "" }, "", ""},
		{"an oversized proof is refused", func(testing.TB) string { return strings.Repeat("a", dpop.MaxProofSize+1) }, "", ""},
		{"a resource proof without ath is refused", spec(proofSpec{}), "", "token-1"},
		{"a resource proof with the ath of another token is refused", spec(proofSpec{claims: map[string]any{"ath": ath("token-2")}}), "", "token-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, nil)
			_, err := v.Verify(context.Background(), dpop.Request{
				Proof: tt.proof(t), Method: http.MethodPost, URI: tokenURI, AccessToken: tt.token})
			require.ErrorIs(t, err, dpop.ErrInvalidProof)
		})
	}
}

func TestVerifyChecksAth(t *testing.T) {
	v := newVerifier(t, nil)
	_, err := v.Verify(context.Background(), dpop.Request{
		Proof:  makeProof(t, proofSpec{claims: map[string]any{"ath": ath("token-1"), "htm": "GET"}}),
		Method: http.MethodGet, URI: tokenURI, AccessToken: "token-1"})
	require.NoError(t, err)
}

func TestVerifyRefusesAReplayedJTI(t *testing.T) {
	v := newVerifier(t, nil)
	proof := makeProof(t, proofSpec{})
	req := dpop.Request{Proof: proof, Method: http.MethodPost, URI: tokenURI}
	_, err := v.Verify(context.Background(), req)
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), req)
	require.ErrorIs(t, err, dpop.ErrInvalidProof)
}

func TestVerifyRefusesAProofBeforeRecordingItsJTI(t *testing.T) {
	v := newVerifier(t, nil)
	key := newP256(t)
	wrong := makeProof(t, proofSpec{key: key, claims: map[string]any{"jti": "j1", "htm": "GET"}})
	_, err := v.Verify(context.Background(), dpop.Request{Proof: wrong, Method: http.MethodPost, URI: tokenURI})
	require.ErrorIs(t, err, dpop.ErrInvalidProof)
	right := makeProof(t, proofSpec{key: key, claims: map[string]any{"jti": "j1"}})
	_, err = v.Verify(context.Background(), dpop.Request{Proof: right, Method: http.MethodPost, URI: tokenURI})
	require.NoError(t, err, "a refused proof must not burn its jti")
}

func TestVerifyNonces(t *testing.T) {
	nonces := newNonces(t)
	v := newVerifier(t, nonces)
	ctx := context.Background()

	_, err := v.Verify(ctx, dpop.Request{Proof: makeProof(t, proofSpec{}), Method: http.MethodPost, URI: tokenURI, RequireNonce: true})
	require.ErrorIs(t, err, dpop.ErrUseNonce, "a proof without a nonce when one is required")
	require.NotEmpty(t, v.Nonce())

	_, err = v.Verify(ctx, dpop.Request{Proof: makeProof(t, proofSpec{claims: map[string]any{"nonce": v.Nonce()}}),
		Method: http.MethodPost, URI: tokenURI, RequireNonce: true})
	require.NoError(t, err, "a proof with the current nonce")

	_, err = v.Verify(ctx, dpop.Request{Proof: makeProof(t, proofSpec{claims: map[string]any{"nonce": "bm9wZQ"}}),
		Method: http.MethodPost, URI: tokenURI})
	require.ErrorIs(t, err, dpop.ErrUseNonce, "a forged nonce is refused even when none is required")
}

func TestNoncesRotate(t *testing.T) {
	n := newNonces(t)
	cur := n.Current(testNow)
	assert.True(t, n.Valid(cur, testNow), "the current window's nonce is valid")
	assert.True(t, n.Valid(cur, testNow.Add(time.Minute)), "the previous window's nonce is valid")
	assert.False(t, n.Valid(cur, testNow.Add(2*time.Minute)), "a nonce two windows old is refused")
	assert.False(t, n.Valid(cur, testNow.Add(-time.Minute)), "a nonce of a future window is refused")
	assert.NotEqual(t, cur, n.Current(testNow.Add(time.Minute)), "the nonce changes with the window")

	other := newNonces(t)
	assert.True(t, other.Valid(cur, testNow), "a replica with the same shared secret accepts it")
	key, err := dpop.NonceKey([]byte("another deployment's key set"))
	require.NoError(t, err)
	stranger, err := dpop.NewNonces(key, time.Minute)
	require.NoError(t, err)
	assert.False(t, stranger.Valid(cur, testNow), "a server with another secret refuses it")
	raw, _ := base64.RawURLEncoding.DecodeString(cur)
	raw[len(raw)-1] ^= 1
	assert.False(t, n.Valid(base64.RawURLEncoding.EncodeToString(raw), testNow), "a tampered nonce is refused")
}

func TestFromHeader(t *testing.T) {
	h := http.Header{}
	_, ok, err := dpop.FromHeader(h)
	assert.False(t, ok)
	require.NoError(t, err)
	h.Add("DPoP", "a")
	p, ok, err := dpop.FromHeader(h)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "a", p)
	h.Add("DPoP", "b")
	_, _, err = dpop.FromHeader(h)
	require.ErrorIs(t, err, dpop.ErrInvalidProof, "two DPoP headers are refused")
}

func TestNormalizeURI(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"scheme and host are lowercased", "HTTPS://Id.Example.com/a", "https://id.example.com/a"},
		{"the default https port is dropped", "https://id.example.com:443/a", "https://id.example.com/a"},
		{"the default http port is dropped", "http://id.example.com:80/a", "http://id.example.com/a"},
		{"another port is kept", "https://id.example.com:8443/a", "https://id.example.com:8443/a"},
		{"an empty path becomes a slash", "https://id.example.com", "https://id.example.com/"},
		{"query and fragment are dropped", "https://id.example.com/a?b=c#d", "https://id.example.com/a"},
		{"an encoded unreserved character is decoded", "https://id.example.com/%61", "https://id.example.com/a"},
		{"a reserved character stays encoded with uppercase hex", "https://id.example.com/a%2fb", "https://id.example.com/a%2Fb"},
		{"path case is kept", "https://id.example.com/A", "https://id.example.com/A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dpop.NormalizeURI(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	for _, bad := range []string{"", "/oauth2/token", "ftp://x/y", "https://user@x/y", "mailto:a@b"} {
		_, err := dpop.NormalizeURI(bad)
		assert.Error(t, err, bad)
	}
}

func spec(s proofSpec) func(t testing.TB) string {
	return func(t testing.TB) string { return makeProof(t, s) }
}

func ath(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }
