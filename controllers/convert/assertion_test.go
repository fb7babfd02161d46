package convert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func publicJWK(t *testing.T, kid string) jose.JSONWebKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}
}

func jwksJSON(t *testing.T, keys ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	require.NoError(t, err)
	return string(b)
}

func serviceAccountClient(oc *v1alpha1.OAuthClient) {
	oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodServiceAccountToken
	oc.Spec.ServiceAccount = &v1alpha1.ServiceAccountRef{Name: "billing"}
}

func TestAssertionClientsConvert(t *testing.T) {
	k1 := publicJWK(t, "k1")
	var inline v1alpha1.JSONWebKeySet
	require.NoError(t, json.Unmarshal([]byte(jwksJSON(t, k1)), &inline))

	t.Run("a ServiceAccount client is served without any Secret, bound to its namespace's ServiceAccount", func(t *testing.T) {
		c, err := ClientWith(oauthClient(serviceAccountClient), ClientInputs{})
		require.NoError(t, err)
		assert.Equal(t, registry.AuthMethodServiceAccountToken, c.AuthMethod)
		assert.Equal(t, "billing", c.ServiceAccount)
		assert.Zero(t, c.MaxAssertionLifetime, "the server default applies")
		assert.False(t, c.HasSecret)
		iss, sub, ok := c.WorkloadSubjectKey()
		assert.True(t, ok)
		assert.Equal(t, registry.LocalIssuer, iss)
		assert.Equal(t, "system:serviceaccount:payments:billing", sub)
		assert.Empty(t, SecretNames(oauthClient(serviceAccountClient)), "it reads no Secret")
	})
	t.Run("a workload identity client is bound to the issuer's subject with its lifetime bound", func(t *testing.T) {
		c, err := ClientWith(oauthClient(func(oc *v1alpha1.OAuthClient) {
			oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodServiceAccountToken
			oc.Spec.WorkloadIdentity = &v1alpha1.WorkloadIdentity{IssuerRef: v1alpha1.WorkloadIssuerRef{Name: "ci"}, Subject: "repo:example/app"}
			oc.Spec.MaxAssertionLifetime = &metav1.Duration{Duration: 5 * time.Minute}
			oc.Spec.Lifetimes = &v1alpha1.TokenLifetimes{AccessTokenOutlivesAssertion: true}
		}), ClientInputs{})
		require.NoError(t, err)
		assert.Equal(t, "ci", c.WorkloadIssuer)
		assert.Equal(t, "repo:example/app", c.WorkloadSubject)
		assert.Equal(t, 5*time.Minute, c.MaxAssertionLifetime)
		assert.True(t, c.AccessTokenOutlivesAssertion)
	})
	t.Run("inline keys are served as public keys", func(t *testing.T) {
		c, err := ClientWith(oauthClient(func(oc *v1alpha1.OAuthClient) {
			oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodPrivateKeyJWT
			oc.Spec.JWKS = &inline
		}), ClientInputs{})
		require.NoError(t, err)
		require.Len(t, c.PublicKeys, 1)
		assert.Equal(t, "k1", c.PublicKeys[0].KeyID)
	})
	t.Run("a jwksURI is served as is", func(t *testing.T) {
		c, err := ClientWith(oauthClient(func(oc *v1alpha1.OAuthClient) {
			oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodPrivateKeyJWT
			oc.Spec.JWKSURI = "https://keys.example/jwks.json"
		}), ClientInputs{})
		require.NoError(t, err)
		assert.Equal(t, "https://keys.example/jwks.json", c.JWKSURI)
	})
	keysFromSecret := func(oc *v1alpha1.OAuthClient) {
		oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodPrivateKeyJWT
		oc.Spec.JWKSSecretRef = &v1alpha1.LocalSecretKeyRef{Name: "billing-keys"}
	}
	t.Run("keys from a Secret are read from its jwks.json", func(t *testing.T) {
		oc := oauthClient(keysFromSecret)
		assert.Equal(t, []string{"billing-keys"}, SecretNames(oc))
		c, err := ClientWith(oc, ClientInputs{Keys: secret("payments", "billing-keys", map[string]string{JWKSKey: jwksJSON(t, k1)})})
		require.NoError(t, err)
		require.Len(t, c.PublicKeys, 1)
	})
	t.Run("a missing key Secret serves the client without keys (SecretNotFound)", func(t *testing.T) {
		c, err := ClientWith(oauthClient(keysFromSecret), ClientInputs{})
		require.ErrorIs(t, err, ErrSecretNotFound)
		assert.Empty(t, c.PublicKeys)
		assert.Equal(t, "billing.payments", c.ID, "it keeps its client ID")
	})
	t.Run("a key Secret holding a private key is refused", func(t *testing.T) {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		_, err = ClientWith(oauthClient(keysFromSecret), ClientInputs{Keys: secret("payments", "billing-keys",
			map[string]string{JWKSKey: jwksJSON(t, jose.JSONWebKey{Key: priv, KeyID: "p", Algorithm: "ES256"})})})
		require.ErrorIs(t, err, ErrSecretNotFound)
	})
	t.Run("a generated key pair's previous key is dropped once its grace period is over", func(t *testing.T) {
		generated := func(oc *v1alpha1.OAuthClient) {
			oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodPrivateKeyJWT
			oc.Spec.KeyPolicy = v1alpha1.KeyPolicyGenerate
		}
		now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		keys := secret("payments", "billing"+KeySecretSuffix, map[string]string{
			JWKSKey: jwksJSON(t, publicJWK(t, "new"), publicJWK(t, "old")), KeyPreviousIDKey: "old",
			KeyPreviousUntilKey: now.Add(time.Minute).Format(time.RFC3339),
		})
		c, err := ClientWith(oauthClient(generated), ClientInputs{Keys: keys, Now: now})
		require.NoError(t, err)
		assert.Len(t, c.PublicKeys, 2, "inside the grace period both keys verify")
		c, err = ClientWith(oauthClient(generated), ClientInputs{Keys: keys, Now: now.Add(2 * time.Minute)})
		require.NoError(t, err)
		require.Len(t, c.PublicKeys, 1)
		assert.Equal(t, "new", c.PublicKeys[0].KeyID)
		assert.Equal(t, now.Add(time.Minute), PreviousKeyUntil(keys))
	})
}

func TestSecretRotationStateConverts(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	rotating := func(oc *v1alpha1.OAuthClient) {
		oc.Spec.SecretRotation = &v1alpha1.SecretRotation{GracePeriod: &metav1.Duration{Duration: time.Hour}}
	}
	current := secret("payments", "billing-oauth-client", map[string]string{"client-secret": "new"})
	state := func(st RotationState) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "billing" + RotationSecretSuffix}, Data: st.Data()}
	}
	tests := []struct {
		name      string
		state     RotationState
		wantUntil time.Time // zero: no previous secret
	}{
		{"the recorded previous secret is accepted until its time",
			RotationState{Current: registry.HashSecret([]byte("new")), HasCurrent: true, CurrentSince: now,
				Previous: registry.HashSecret([]byte("old")), HasPrevious: true, PreviousUntil: now.Add(30 * time.Minute)},
			now.Add(30 * time.Minute)},
		{"an expired previous secret is not accepted",
			RotationState{Current: registry.HashSecret([]byte("new")), HasCurrent: true, CurrentSince: now,
				Previous: registry.HashSecret([]byte("old")), HasPrevious: true, PreviousUntil: now.Add(-time.Second)},
			time.Time{}},
		{"a change the leader has not recorded yet keeps the recorded secret for a grace period from now",
			RotationState{Current: registry.HashSecret([]byte("old")), HasCurrent: true, CurrentSince: now.Add(-time.Hour)},
			now.Add(time.Hour)},
		{"a state that records the current secret adds nothing",
			RotationState{Current: registry.HashSecret([]byte("new")), HasCurrent: true, CurrentSince: now},
			time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ClientWith(oauthClient(rotating), ClientInputs{Secret: current, Rotation: state(tt.state), Now: now})
			require.NoError(t, err)
			assert.Equal(t, tt.wantUntil, c.PreviousSecretUntil)
			if tt.wantUntil.IsZero() {
				return
			}
			assert.Equal(t, registry.PreviousSecret, c.MatchSecret("old", now))
			assert.Equal(t, registry.NoSecret, c.MatchSecret("old", tt.wantUntil), "not at its end")
			assert.Equal(t, registry.CurrentSecret, c.MatchSecret("new", now))
		})
	}
	t.Run("the state round-trips through its Secret data", func(t *testing.T) {
		st := RotationState{Current: registry.HashSecret([]byte("a")), HasCurrent: true, CurrentSince: now,
			Previous: registry.HashSecret([]byte("b")), HasPrevious: true, PreviousUntil: now.Add(time.Hour)}
		assert.Equal(t, st, ParseRotationState(st.Data()))
	})
}

func TestAssertionSpecsTheCRDRefusesAreRefusedOnDisk(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.OAuthClient)
		want   string
	}{
		{"service_account_token without a binding", func(oc *v1alpha1.OAuthClient) {
			oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodServiceAccountToken
		}, "exactly one of serviceAccount and workloadIdentity"},
		{"a ServiceAccount without the method", func(oc *v1alpha1.OAuthClient) {
			oc.Spec.ServiceAccount = &v1alpha1.ServiceAccountRef{Name: "billing"}
		}, "need tokenEndpointAuthMethod service_account_token"},
		{"a ServiceAccount client with a secretRef", func(oc *v1alpha1.OAuthClient) {
			serviceAccountClient(oc)
			oc.Spec.SecretRef = &v1alpha1.LocalSecretKeyRef{Name: "x"}
		}, "has no client secret"},
		{"a ServiceAccount name that is not one", func(oc *v1alpha1.OAuthClient) {
			serviceAccountClient(oc)
			oc.Spec.ServiceAccount.Name = "Billing_1"
		}, "is not a ServiceAccount name"},
		{"private_key_jwt without keys", func(oc *v1alpha1.OAuthClient) {
			oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodPrivateKeyJWT
		}, "exactly one source of public keys"},
		{"an http jwksURI", func(oc *v1alpha1.OAuthClient) {
			oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodPrivateKeyJWT
			oc.Spec.JWKSURI = "http://keys.example/jwks"
		}, "must be an https URL"},
		{"inline keys that are not keys", func(oc *v1alpha1.OAuthClient) {
			oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodPrivateKeyJWT
			oc.Spec.JWKS = &v1alpha1.JSONWebKeySet{Keys: []v1alpha1.JSONWebKey{{Kty: "EC", Crv: "P-256", X: "AA", Y: "AA"}}}
		}, "jwks:"},
		{"a grace period over 30 days", func(oc *v1alpha1.OAuthClient) {
			oc.Spec.SecretRotation = &v1alpha1.SecretRotation{GracePeriod: &metav1.Duration{Duration: 800 * time.Hour}}
		}, "gracePeriod must be between 0s and 720h"},
		{"secretRotation on a ServiceAccount client", func(oc *v1alpha1.OAuthClient) {
			serviceAccountClient(oc)
			oc.Spec.SecretRotation = &v1alpha1.SecretRotation{}
		}, "secretRotation is for client secrets"},
		{"maxAssertionLifetime over 24h", func(oc *v1alpha1.OAuthClient) {
			serviceAccountClient(oc)
			oc.Spec.MaxAssertionLifetime = &metav1.Duration{Duration: 25 * time.Hour}
		}, "at most 24h"},
		{"maxAssertionLifetime on a secret client", func(oc *v1alpha1.OAuthClient) {
			oc.Spec.MaxAssertionLifetime = &metav1.Duration{Duration: time.Minute}
		}, "maxAssertionLifetime is for the assertion methods"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is InvalidSpec", func(t *testing.T) {
			_, err := ClientWith(oauthClient(tt.mutate), ClientInputs{})
			require.ErrorIs(t, err, ErrInvalidSpec)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
