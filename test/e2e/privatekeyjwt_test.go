package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const keysNamespace = "signers"

// secretEntry reads one entry of a Secret, as a workload mounting it would.
func (s *suite) secretEntry(t *testing.T, ns, name, key string) string {
	t.Helper()
	enc := s.cp.MustKubectl(t, nil, "get", "-n", ns, "secret", name, "-o", "jsonpath={.data."+strings.ReplaceAll(key, ".", `\.`)+"}")
	raw, err := base64.StdEncoding.DecodeString(enc)
	require.NoError(t, err)
	return string(raw)
}

// clientAssertion signs a private_key_jwt assertion (RFC 7523 3) for the client with key.
func clientAssertion(t *testing.T, key crypto.Signer, kid, clientID, audience string, lifetime time.Duration) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	require.NoError(t, err)
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: clientID, Subject: clientID, Audience: jwt.Audience{audience}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(lifetime)),
	}).Serialize()
	require.NoError(t, err)
	return tok
}

// generatedKey reads the current private key and its kid from a generated key Secret.
func (s *suite) generatedKey(t *testing.T, secret string) (crypto.Signer, string) {
	t.Helper()
	block, _ := pem.Decode([]byte(s.secretEntry(t, keysNamespace, secret, "private-key.pem")))
	require.NotNil(t, block, "private-key.pem is PEM")
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	signer, ok := k.(crypto.Signer)
	require.True(t, ok)
	return signer, s.secretEntry(t, keysNamespace, secret, "kid")
}

func TestPrivateKeyJWTClients(t *testing.T) {
	s := env
	own, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ownJWK, err := json.Marshal(jose.JSONWebKey{Key: &own.PublicKey, KeyID: "own-1", Algorithm: "ES256", Use: "sig"})
	require.NoError(t, err)
	s.cp.MustKubectl(t, []byte(`apiVersion: v1
kind: Namespace
metadata: {name: signers}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: generated, namespace: signers}
spec:
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: private_key_jwt
  keyPolicy: Generate
  secretRotation: {gracePeriod: 1h}
---
apiVersion: oauth.latchkey.dev/v1alpha1
kind: OAuthClient
metadata: {name: own, namespace: signers}
spec:
  grantTypes: [client_credentials]
  tokenEndpointAuthMethod: private_key_jwt
  jwks: {keys: [`+string(ownJWK)+`]}
`), "apply", "-f", "-")
	s.waitReady(t, keysNamespace, "generated")
	s.waitReady(t, keysNamespace, "own")
	tokenURL := s.issuer + "/oauth2/token"
	const generatedID, ownID = "generated." + keysNamespace, "own." + keysNamespace

	t.Run("a client with its own keys gets a token with an assertion signed by them (golang.org/x/oauth2)", func(t *testing.T) {
		cfg := clientcredentials.Config{ClientID: ownID, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams,
			EndpointParams: url.Values{"client_assertion_type": {jwtBearer}, "client_assertion": {clientAssertion(t, own, "own-1", ownID, s.issuer, time.Minute)}}}
		tok, err := cfg.Token(t.Context())
		require.NoError(t, err)
		assert.Equal(t, ownID, s.verify(t, tok.AccessToken)["sub"])
	})

	t.Run("the token endpoint URL is accepted as the audience", func(t *testing.T) {
		status, body := assertionToken(t, "127.0.20.1", tokenURL, ownID, clientAssertion(t, own, "own-1", ownID, tokenURL, time.Minute), jwtBearer)
		assert.Equal(t, http.StatusOK, status, "%v", body)
	})

	t.Run("an assertion works once", func(t *testing.T) {
		a := clientAssertion(t, own, "own-1", ownID, s.issuer, time.Minute)
		status, body := assertionToken(t, "127.0.21.1", tokenURL, ownID, a, jwtBearer)
		require.Equal(t, http.StatusOK, status, "%v", body)
		status, body = assertionToken(t, "127.0.21.1", tokenURL, ownID, a, jwtBearer)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_client", body["error"])
		assert.Contains(t, body["error_description"], "already used")
	})

	t.Run("without client_id the client is the assertion's sub", func(t *testing.T) {
		status, body := assertionToken(t, "127.0.22.1", tokenURL, "", clientAssertion(t, own, "own-1", ownID, s.issuer, time.Minute), jwtBearer)
		assert.Equal(t, http.StatusOK, status, "%v", body)
	})

	stranger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	refusals := []struct{ name, assertion string }{
		{"an assertion signed by another key is refused", clientAssertion(t, stranger, "own-1", ownID, s.issuer, time.Minute)},
		{"an assertion for another audience is refused", clientAssertion(t, own, "own-1", ownID, "https://elsewhere.example", time.Minute)},
		{"an assertion naming another client is refused", clientAssertion(t, own, "own-1", generatedID, s.issuer, time.Minute)},
		{"an assertion living longer than an hour is refused", clientAssertion(t, own, "own-1", ownID, s.issuer, 2*time.Hour)},
	}
	for i, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			status, body := assertionToken(t, fmt.Sprintf("127.0.23.%d", i+1), tokenURL, ownID, tt.assertion, jwtBearer)
			assert.Equal(t, http.StatusBadRequest, status, "%v", body)
			assert.Equal(t, "invalid_client", body["error"])
		})
	}

	secret := "generated-oauth-client-key"
	oldKey, oldKid := s.generatedKey(t, secret)
	t.Run("the generated key pair's private key, mounted from its Secret, signs assertions that work", func(t *testing.T) {
		assert.Equal(t, generatedID, s.secretEntry(t, keysNamespace, secret, "client-id"))
		status, body := assertionToken(t, "127.0.24.1", tokenURL, generatedID, clientAssertion(t, oldKey, oldKid, generatedID, s.issuer, time.Minute), jwtBearer)
		assert.Equal(t, http.StatusOK, status, "%v", body)
	})

	t.Run("after a rotation both keys work inside the grace period", func(t *testing.T) {
		s.cp.MustKubectl(t, nil, "annotate", "-n", keysNamespace, "oauthclient", "generated", "oauth.latchkey.dev/rotate=first", "--overwrite")
		var newKey crypto.Signer
		var newKid string
		require.Eventually(t, func() bool {
			newKey, newKid = s.generatedKey(t, secret)
			return newKid != oldKid
		}, 30*time.Second, 200*time.Millisecond, "the key pair is rotated")
		require.Eventually(t, func() bool {
			status, _ := assertionToken(t, "127.0.25.1", tokenURL, generatedID, clientAssertion(t, newKey, newKid, generatedID, s.issuer, time.Minute), jwtBearer)
			return status == http.StatusOK
		}, 30*time.Second, 200*time.Millisecond, "every replica serves the new key")
		status, body := assertionToken(t, "127.0.25.2", tokenURL, generatedID, clientAssertion(t, oldKey, oldKid, generatedID, s.issuer, time.Minute), jwtBearer)
		assert.Equal(t, http.StatusOK, status, "the previous key still works: %v", body)
		require.Eventually(t, func() bool {
			until := s.cp.MustKubectl(t, nil, "get", "-n", keysNamespace, "oauthclient", "generated", "-o", "jsonpath={.status.credentials.previousAcceptedUntil}")
			at, err := time.Parse(time.RFC3339, until)
			return err == nil && at.After(time.Now().Add(50*time.Minute))
		}, 30*time.Second, 200*time.Millisecond, "the status says until when the previous key is accepted")
	})
}
