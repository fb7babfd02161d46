package controllers

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// keyPairClient is a client_credentials client authenticating with private_key_jwt whose key
// pair the controller generates.
func keyPairClient(ns, name string) *v1alpha1.OAuthClient {
	oc := confidentialClient(ns, name)
	oc.Spec.TokenEndpointAuthMethod = v1alpha1.AuthMethodPrivateKeyJWT
	oc.Spec.KeyPolicy = v1alpha1.KeyPolicyGenerate
	return oc
}

// generatedKeys is what a generated key Secret holds, read with the standard library and
// go-jose rather than the controller's own functions.
type generatedKeys struct {
	secret  *corev1.Secret
	private *ecdsa.PrivateKey
	jwks    jose.JSONWebKeySet
}

// kids are the key IDs of the JWK set, in order.
func (g generatedKeys) kids() []string {
	out := make([]string, 0, len(g.jwks.Keys))
	for _, k := range g.jwks.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// readKeySecret reads and parses the generated key Secret ns/name.
func readKeySecret(t assert.TestingT, ns, name string) (generatedKeys, bool) {
	var s corev1.Secret
	if !assert.NoError(t, suite.client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &s)) {
		return generatedKeys{}, false
	}
	g := generatedKeys{secret: &s}
	block, _ := pem.Decode(s.Data["private-key.pem"])
	if !assert.NotNil(t, block, "private-key.pem is PEM") || !assert.Equal(t, "PRIVATE KEY", block.Type) {
		return g, false
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if !assert.NoError(t, err, "private-key.pem is PKCS#8") {
		return g, false
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !assert.True(t, ok, "an EC key") || !assert.Equal(t, elliptic.P256(), priv.Curve) {
		return g, false
	}
	g.private = priv
	if !assert.NoError(t, json.Unmarshal(s.Data["jwks.json"], &g.jwks), "jwks.json is a JWK set") {
		return g, false
	}
	return g, true
}

// thumbprint is the RFC 7638 key ID of the public key.
func thumbprint(t assert.TestingT, pub crypto.PublicKey) string {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	assert.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(tp)
}

// assertCurrentKey asserts that the Secret's private key is its current key: kid is its
// thumbprint and the JWK set starts with its public key, for ES256 signatures.
func assertCurrentKey(t assert.TestingT, g generatedKeys) {
	kid := thumbprint(t, g.private.Public())
	assert.Equal(t, kid, string(g.secret.Data["kid"]))
	if !assert.NotEmpty(t, g.jwks.Keys) {
		return
	}
	first := g.jwks.Keys[0]
	assert.Equal(t, kid, first.KeyID)
	assert.Equal(t, "sig", first.Use)
	assert.Equal(t, "ES256", first.Algorithm)
	assert.True(t, first.IsPublic(), "the JWK set holds public keys only")
	assert.True(t, g.private.PublicKey.Equal(first.Key), "the JWK set's first key is the private key's")
	for _, k := range g.jwks.Keys {
		assert.True(t, k.IsPublic())
		assert.Equal(t, "sig", k.Use)
		assert.Equal(t, "ES256", k.Algorithm)
	}
}

// servedKeyIDs are the key IDs of a served client's public keys, in order.
func servedKeyIDs(cl *registry.Client) []string {
	out := make([]string, 0, len(cl.PublicKeys))
	for _, k := range cl.PublicKeys {
		out = append(out, k.KeyID)
	}
	return out
}

// rotateKeys sets the rotate annotation of the OAuthClient to value.
func rotateKeys(t *testing.T, key types.NamespacedName, value string) {
	t.Helper()
	updateClient(t, key, func(oc *v1alpha1.OAuthClient) {
		if oc.Annotations == nil {
			oc.Annotations = map[string]string{}
		}
		oc.Annotations[v1alpha1.AnnotationRotate] = value
	})
}

func TestGeneratedKeyPairIsServed(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	oc := keyPairClient(ns, "signer")
	// A value present when the Secret is first generated asks for no rotation.
	oc.Annotations = map[string]string{v1alpha1.AnnotationRotate: "before-the-first-key"}
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)

	got := waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	assert.Empty(t, got.Status.SecretName, "no client secret")
	g, ok := readKeySecret(t, ns, "signer-oauth-client-key")
	require.True(t, ok)
	assert.ElementsMatch(t, []string{"client-id", "token-url", "private-key.pem", "kid", "current-since", "jwks.json"}, mapKeys(g.secret.Data))
	assert.Equal(t, "signer."+ns, string(g.secret.Data["client-id"]))
	assert.Equal(t, testTokenURL, string(g.secret.Data["token-url"]))
	assertCurrentKey(t, g)
	assert.Len(t, g.jwks.Keys, 1)
	kid := string(g.secret.Data["kid"])
	assert.Equal(t, "before-the-first-key", g.secret.Annotations[v1alpha1.AnnotationRotatedFor])
	assert.Equal(t, managedBy, g.secret.Labels[labelManagedBy])

	// Owned by the client, so the garbage collector deletes it with the client (envtest runs
	// none: the ownerReference is what there is to check).
	require.Len(t, g.secret.OwnerReferences, 1)
	owner := g.secret.OwnerReferences[0]
	assert.Equal(t, "OAuthClient", owner.Kind)
	assert.Equal(t, "signer", owner.Name)
	assert.Equal(t, got.UID, owner.UID)
	assert.True(t, ptrTrue(owner.Controller))
	assert.True(t, ptrTrue(owner.BlockOwnerDeletion))

	require.NotNil(t, got.Status.Credentials)
	require.NotNil(t, got.Status.Credentials.CurrentSince)
	assert.WithinDuration(t, time.Now(), got.Status.Credentials.CurrentSince.Time, time.Minute)
	assert.Equal(t, string(g.secret.Data["current-since"]), got.Status.Credentials.CurrentSince.UTC().Format(time.RFC3339))
	assert.Nil(t, got.Status.Credentials.PreviousAcceptedUntil)

	waitServed(t, "signer."+ns, ns+"/signer", func(c *assert.CollectT, cl *registry.Client) {
		assert.Equal(c, "private_key_jwt", cl.AuthMethod)
		assert.False(c, cl.HasSecret)
		if assert.Len(c, cl.PublicKeys, 1) {
			assert.Equal(c, kid, cl.PublicKeys[0].KeyID)
			assert.True(c, g.private.PublicKey.Equal(cl.PublicKeys[0].Key), "the registry verifies with the generated key")
		}
	})
	waitEvent(t, ns, "signer", EventSecretGenerated)
}

func TestGeneratedKeyPairRotation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rotation *v1alpha1.SecretRotation
		grace    time.Duration
	}{
		{name: "Without secretRotation the old key stops being accepted at once"},
		{name: "A grace period of 0 stops accepting the old key at once",
			rotation: &v1alpha1.SecretRotation{GracePeriod: &metav1.Duration{}}},
		{name: "A grace period keeps the old key accepted until it is over, then drops it",
			rotation: &v1alpha1.SecretRotation{GracePeriod: &metav1.Duration{Duration: 6 * time.Second}}, grace: 6 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			ns := newNamespace(t)
			oc := keyPairClient(ns, "rotating")
			oc.Spec.SecretRotation = tc.rotation
			require.NoError(t, suite.client.Create(ctx, oc))
			key := client.ObjectKeyFromObject(oc)
			id, source := "rotating."+ns, ns+"/rotating"
			waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
			first, ok := readKeySecret(t, ns, "rotating-oauth-client-key")
			require.True(t, ok)
			oldKid := string(first.secret.Data["kid"])
			waitServed(t, id, source, func(c *assert.CollectT, cl *registry.Client) {
				assert.Equal(c, []string{oldKid}, servedKeyIDs(cl))
			})

			rotateKeys(t, key, "1")
			var rotated generatedKeys
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				g, ok := readKeySecret(c, ns, "rotating-oauth-client-key")
				if !ok || !assert.NotEqual(c, oldKid, string(g.secret.Data["kid"]), "a new key") {
					return
				}
				rotated = g
			}, waitFor, tick)
			assertCurrentKey(t, rotated)
			newKid := string(rotated.secret.Data["kid"])
			assert.Equal(t, "1", rotated.secret.Annotations[v1alpha1.AnnotationRotatedFor])
			assert.False(t, first.private.Equal(rotated.private), "a new private key")
			waitEvent(t, ns, "rotating", EventKeyRotated)

			if tc.grace == 0 {
				assert.Equal(t, []string{newKid}, rotated.kids())
				assert.NotContains(t, rotated.secret.Data, "previous-kid")
				assert.NotContains(t, rotated.secret.Data, "previous-until")
				waitServed(t, id, source, func(c *assert.CollectT, cl *registry.Client) {
					assert.Equal(c, []string{newKid}, servedKeyIDs(cl))
				})
				got := waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
				require.NotNil(t, got.Status.Credentials)
				assert.Nil(t, got.Status.Credentials.PreviousAcceptedUntil)
				return
			}

			// Both keys, the new one first, until the grace period is over.
			assert.Equal(t, []string{newKid, oldKid}, rotated.kids())
			assert.Equal(t, oldKid, string(rotated.secret.Data["previous-kid"]))
			until, err := time.Parse(time.RFC3339, string(rotated.secret.Data["previous-until"]))
			require.NoError(t, err)
			since, err := time.Parse(time.RFC3339, string(rotated.secret.Data["current-since"]))
			require.NoError(t, err)
			assert.Equal(t, tc.grace, until.Sub(since))
			assert.True(t, first.private.PublicKey.Equal(rotated.jwks.Keys[1].Key), "the previous key is the old public key")
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				oc, _ := getClient(c, key)
				if assert.NotNil(c, oc) && assert.NotNil(c, oc.Status.Credentials) && assert.NotNil(c, oc.Status.Credentials.PreviousAcceptedUntil) {
					assert.True(c, until.Equal(oc.Status.Credentials.PreviousAcceptedUntil.Time))
					assert.True(c, since.Equal(oc.Status.Credentials.CurrentSince.Time))
				}
			}, waitFor, tick)
			waitServed(t, id, source, func(c *assert.CollectT, cl *registry.Client) {
				if time.Now().Before(until) { // a loaded machine may only look after the period
					assert.Equal(c, []string{newKid, oldKid}, servedKeyIDs(cl), "both keys during the grace period")
				}
			})

			// Then the new one only, in the registries and in the Secret.
			waitServed(t, id, source, func(c *assert.CollectT, cl *registry.Client) {
				assert.Equal(c, []string{newKid}, servedKeyIDs(cl))
			})
			assert.False(t, time.Now().Before(until), "the old key was accepted until %s", until)
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				g, ok := readKeySecret(c, ns, "rotating-oauth-client-key")
				if !ok {
					return
				}
				assert.Equal(c, []string{newKid}, g.kids())
				assert.NotContains(c, g.secret.Data, "previous-kid")
				assert.NotContains(c, g.secret.Data, "previous-until")
				assert.Equal(c, newKid, string(g.secret.Data["kid"]), "the current key stays")
			}, waitFor, tick)
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				oc, _ := getClient(c, key)
				if assert.NotNil(c, oc) && assert.NotNil(c, oc.Status.Credentials) {
					assert.Nil(c, oc.Status.Credentials.PreviousAcceptedUntil)
				}
			}, waitFor, tick)
		})
	}
}

func TestGeneratedKeyPairRotatesOncePerAnnotationValue(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	oc := keyPairClient(ns, "once")
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)

	rotateKeys(t, key, "a")
	var kid string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		g, ok := readKeySecret(c, ns, "once-oauth-client-key")
		if ok && assert.Equal(c, "a", g.secret.Annotations[v1alpha1.AnnotationRotatedFor]) {
			kid = string(g.secret.Data["kid"])
		}
	}, waitFor, tick)

	// A change of the spec reconciles the client again; the handled value rotates nothing.
	updateClient(t, key, func(oc *v1alpha1.OAuthClient) { oc.Spec.Scopes = []string{"more"} })
	got := waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	assert.Equal(t, int64(2), got.Status.ObservedGeneration)
	g, ok := readKeySecret(t, ns, "once-oauth-client-key")
	require.True(t, ok)
	assert.Equal(t, kid, string(g.secret.Data["kid"]), "the same value rotates once")

	// A new value rotates again.
	rotateKeys(t, key, "b")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		g, ok := readKeySecret(c, ns, "once-oauth-client-key")
		if ok && assert.Equal(c, "b", g.secret.Annotations[v1alpha1.AnnotationRotatedFor]) {
			assert.NotEqual(c, kid, string(g.secret.Data["kid"]))
		}
	}, waitFor, tick)
}

func TestGeneratedKeySecretWithAnUnreadablePrivateKeyGetsANewKeyPair(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	oc := keyPairClient(ns, "damaged")
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	g, ok := readKeySecret(t, ns, "damaged-oauth-client-key")
	require.True(t, ok)
	oldKid := string(g.secret.Data["kid"])

	g.secret.Data["private-key.pem"] = []byte("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
	require.NoError(t, suite.client.Update(ctx, g.secret))

	var newKid string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		g, ok := readKeySecret(c, ns, "damaged-oauth-client-key")
		if ok && assert.NotEqual(c, oldKid, string(g.secret.Data["kid"])) {
			assertCurrentKey(c, g)
			assert.Len(c, g.jwks.Keys, 1, "the old public key is not kept for a key nobody can read")
			newKid = string(g.secret.Data["kid"])
		}
	}, waitFor, tick)
	waitServed(t, "damaged."+ns, ns+"/damaged", func(c *assert.CollectT, cl *registry.Client) {
		assert.Equal(c, []string{newKid}, servedKeyIDs(cl))
	})
	waitEvent(t, ns, "damaged", EventKeyRotated)
}

func TestGeneratedKeyPairNeverUsesASecretItDoesNotControl(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	// Someone who may create Secrets plants public keys of a key pair they hold.
	plantedJWKS := []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"planted","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)
	planted := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken-oauth-client-key"},
		Data:       map[string][]byte{"jwks.json": plantedJWKS},
	}
	require.NoError(t, suite.client.Create(ctx, planted))
	oc := keyPairClient(ns, "taken")
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)

	waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonSecretConflict)
	_, cond := getClient(t, key)
	assert.Contains(t, cond.Message, "taken-oauth-client-key")
	assert.Contains(t, cond.Message, "no controller")
	waitEvent(t, ns, "taken", v1alpha1.ReasonSecretConflict)
	waitServed(t, "taken."+ns, ns+"/taken", func(c *assert.CollectT, cl *registry.Client) {
		assert.Empty(c, cl.PublicKeys, "served without keys")
	})
	var s corev1.Secret
	require.NoError(t, suite.client.Get(ctx, client.ObjectKeyFromObject(planted), &s))
	assert.Empty(t, s.OwnerReferences, "not adopted")
	assert.Equal(t, map[string][]byte{"jwks.json": plantedJWKS}, s.Data, "not overwritten")
	assert.Empty(t, s.Annotations)

	// Asking for a rotation does not touch it either.
	rotateKeys(t, key, "now")
	waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonSecretConflict)
	require.NoError(t, suite.client.Get(ctx, client.ObjectKeyFromObject(planted), &s))
	assert.Equal(t, map[string][]byte{"jwks.json": plantedJWKS}, s.Data, "not overwritten")

	// Once it is gone, the client gets its own.
	require.NoError(t, suite.client.Delete(ctx, planted))
	got := waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	g, ok := readKeySecret(t, ns, "taken-oauth-client-key")
	require.True(t, ok)
	require.Len(t, g.secret.OwnerReferences, 1)
	assert.Equal(t, got.UID, g.secret.OwnerReferences[0].UID)
	assertCurrentKey(t, g)
	kid := string(g.secret.Data["kid"])
	waitServed(t, "taken."+ns, ns+"/taken", func(c *assert.CollectT, cl *registry.Client) {
		assert.Equal(c, []string{kid}, servedKeyIDs(cl))
	})
}

func TestGeneratedKeyPairOfADeletedClientIsNotReused(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	oc := keyPairClient(ns, "again")
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	old, ok := readKeySecret(t, ns, "again-oauth-client-key")
	require.True(t, ok)

	require.NoError(t, suite.client.Delete(ctx, oc))
	require.Eventually(t, func() bool {
		return apierrors.IsNotFound(suite.client.Get(ctx, key, &v1alpha1.OAuthClient{}))
	}, waitFor, tick)
	again := keyPairClient(ns, "again")
	require.NoError(t, suite.client.Create(ctx, again))

	// envtest runs no garbage collector: the predecessor's key Secret stays, and is neither
	// used nor adopted.
	waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonSecretConflict)
	_, cond := getClient(t, key)
	assert.Contains(t, cond.Message, "gone or being deleted")
	waitServed(t, "again."+ns, ns+"/again", func(c *assert.CollectT, cl *registry.Client) {
		assert.Empty(c, cl.PublicKeys)
	})

	// The garbage collector's part: the new client generates its own key pair.
	require.NoError(t, suite.client.Delete(ctx, old.secret))
	got := waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	g, ok := readKeySecret(t, ns, "again-oauth-client-key")
	require.True(t, ok)
	assert.Equal(t, got.UID, g.secret.OwnerReferences[0].UID)
	assert.NotEqual(t, string(old.secret.Data["kid"]), string(g.secret.Data["kid"]))
}
