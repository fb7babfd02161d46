package oidcissuer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"
)

// Paths the Issuer serves.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/jwks"
)

// Key is a P-256 signing key of an Issuer, with its key ID.
type Key struct {
	KID     string
	private *ecdsa.PrivateKey
}

// NewKey returns a new P-256 key with the key ID.
func NewKey(t testing.TB, kid string) *Key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return &Key{KID: kid, private: k}
}

// Public is the key's public JWK.
func (k *Key) Public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.private.PublicKey, KeyID: k.KID, Algorithm: string(jose.ES256), Use: "sig"}
}

// Sign signs the claims as a JWT (ES256, with the key ID).
func (k *Key) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.private},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), k.KID))
	require.NoError(t, err)
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	require.NoError(t, err)
	return s
}

// JWKS is the JWK set of the keys' public keys, as a Secret or a JWKS endpoint holds it.
func JWKS(t testing.TB, keys ...*Key) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.Public())
	}
	data, err := json.Marshal(set)
	require.NoError(t, err)
	return data
}

// Issuer is an OIDC issuer over TLS: discovery at DiscoveryPath, its JWK set at JWKSPath. It is
// safe for concurrent use.
type Issuer struct {
	srv *httptest.Server

	mu              sync.Mutex
	published       []*Key
	discoveryIssuer string // the issuer the discovery document names; "" is URL()
	discoveryStatus int    // 0 is 200
	jwksStatus      int    // 0 is 200
	jwksFetches     int
	lastJWKSFetch   time.Time
}

// Start starts an Issuer publishing keys; it stops at the test's end.
func Start(t testing.TB, keys ...*Key) *Issuer {
	t.Helper()
	i := &Issuer{published: keys}
	i.srv = httptest.NewTLSServer(http.HandlerFunc(i.serve))
	t.Cleanup(i.srv.Close)
	return i
}

// URL is the issuer URL (https://127.0.0.1:port), the iss of its tokens.
func (i *Issuer) URL() string { return i.srv.URL }

// CABundle is the PEM certificate that verifies the server's certificate.
func (i *Issuer) CABundle() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: i.srv.Certificate().Raw}))
}

// Publish replaces the published keys.
func (i *Issuer) Publish(keys ...*Key) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.published = keys
}

// SetDiscoveryIssuer makes the discovery document name another issuer ("": its own URL).
func (i *Issuer) SetDiscoveryIssuer(issuer string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.discoveryIssuer = issuer
}

// FailDiscovery makes discovery answer status (0: succeed again).
func (i *Issuer) FailDiscovery(status int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.discoveryStatus = status
}

// FailJWKS makes the JWK set answer status (0: succeed again).
func (i *Issuer) FailJWKS(status int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.jwksStatus = status
}

// JWKSFetches is how many times the JWK set was asked for, and when last.
func (i *Issuer) JWKSFetches() (int, time.Time) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.jwksFetches, i.lastJWKSFetch
}

// Token signs a token of the issuer for sub and aud with k: iss, sub, aud, iat and nbf now, exp
// in ten minutes, a random jti, plus extra (which may override any of them).
func (i *Issuer) Token(t testing.TB, k *Key, sub string, aud []string, extra map[string]any) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": i.URL(), "sub": sub, "aud": aud, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(), "jti": rand.Text(),
	}
	maps.Copy(claims, extra)
	return k.Sign(t, claims)
}

func (i *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	defer i.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case DiscoveryPath:
		if i.discoveryStatus != 0 {
			w.WriteHeader(i.discoveryStatus)
			return
		}
		issuer := i.discoveryIssuer
		if issuer == "" {
			issuer = i.srv.URL
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": i.srv.URL + JWKSPath})
	case JWKSPath:
		i.jwksFetches++
		i.lastJWKSFetch = time.Now()
		if i.jwksStatus != 0 {
			w.WriteHeader(i.jwksStatus)
			return
		}
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
		for _, k := range i.published {
			set.Keys = append(set.Keys, k.Public())
		}
		_ = json.NewEncoder(w).Encode(set)
	default:
		http.NotFound(w, r)
	}
}

// UnrelatedCABundle is the PEM certificate of a new CA that vouches for no server (every
// httptest TLS server shares one certificate, so another Issuer's bundle would vouch for it).
func UnrelatedCABundle(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unrelated test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
