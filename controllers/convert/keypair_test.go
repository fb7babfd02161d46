package convert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

// generatedKeyClient is a private_key_jwt client whose key pair the controller generates.
func generatedKeyClient(ref *v1alpha1.LocalSecretKeyRef) *v1alpha1.OAuthClient {
	return oauthClient(func(oc *v1alpha1.OAuthClient) {
		oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodPrivateKeyJWT
		oc.Spec.KeyPolicy = v1alpha1.KeyPolicyGenerate
		oc.Spec.JWKSSecretRef = ref
	})
}

func TestGeneratedKeySecretKeepsItsJWKSApartFromItsOtherEntries(t *testing.T) {
	for _, key := range []string{"private-key.pem", "kid", "current-since", "previous-kid", "previous-until", "client-id", "token-url"} {
		t.Run("jwksSecretRef.key "+key+" is refused with keyPolicy Generate", func(t *testing.T) {
			_, err := ClientWith(generatedKeyClient(&v1alpha1.LocalSecretKeyRef{Name: "keys", Key: key}), ClientInputs{})
			require.ErrorIs(t, err, ErrInvalidSpec)
			assert.Contains(t, err.Error(), "jwksSecretRef.key \""+key+"\" is an entry of the generated key Secret")
		})
	}

	t.Run("Another key holds the JWK set of the generated Secret", func(t *testing.T) {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: "k1", Use: "sig", Algorithm: "ES256"}}})
		require.NoError(t, err)
		oc := generatedKeyClient(&v1alpha1.LocalSecretKeyRef{Name: "keys", Key: "public.json"})
		name, key, ok := KeySecretRef(oc)
		require.True(t, ok)
		assert.Equal(t, []string{"keys", "public.json"}, []string{name, key})
		s := secret("payments", "keys", map[string]string{"public.json": string(jwks)})
		c, err := ClientWith(oc, ClientInputs{Keys: s})
		require.NoError(t, err)
		require.Len(t, c.PublicKeys, 1)
		assert.Equal(t, "k1", c.PublicKeys[0].KeyID)
	})

	t.Run("An External Secret may use any key", func(t *testing.T) {
		oc := generatedKeyClient(&v1alpha1.LocalSecretKeyRef{Name: "keys", Key: "kid"})
		oc.Spec.KeyPolicy = v1alpha1.KeyPolicyExternal
		_, err := ClientWith(oc, ClientInputs{})
		require.ErrorIs(t, err, ErrSecretNotFound, "valid, waiting for its Secret")
	})
}
