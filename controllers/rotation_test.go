package controllers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/server/credentialuse"
	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// rotationGrace is the grace period of the tests that use the old secret inside the window and
// after it: long enough for every replica to take in a change on a loaded machine, short enough
// to wait for its end.
const rotationGrace = 8 * time.Second

// rotatingClient is a client_credentials client with spec.secretRotation.
func rotatingClient(ns, name string, grace time.Duration, external bool) *v1alpha1.OAuthClient {
	oc := confidentialClient(ns, name)
	oc.Spec.SecretRotation = &v1alpha1.SecretRotation{GracePeriod: &metav1.Duration{Duration: grace}}
	if external {
		oc.Spec.SecretPolicy = v1alpha1.SecretPolicyExternal
		oc.Spec.SecretRef = &v1alpha1.LocalSecretKeyRef{Name: name + "-creds", Key: "client-secret"}
	}
	return oc
}

func createExternalSecret(t *testing.T, ns, name, value string) {
	t.Helper()
	require.NoError(t, suite.client.Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data:       map[string][]byte{"client-secret": []byte(value)},
	}))
}

// setSecretValue writes a new client secret into a Secret, as its owner rotating it would.
func setSecretValue(t *testing.T, ns, name, value string) {
	t.Helper()
	var s corev1.Secret
	require.NoError(t, suite.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, &s))
	s.Data["client-secret"] = []byte(value)
	require.NoError(t, suite.client.Update(t.Context(), &s))
}

// rotationState returns the client's rotation state Secret (nil when there is none).
func rotationState(t assert.TestingT, ns, name string) *corev1.Secret {
	var s corev1.Secret
	err := suite.client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name + convert.RotationSecretSuffix}, &s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	assert.NoError(t, err)
	return &s
}

// waitCredentials waits until the client's status.credentials passes check, and returns them.
func waitCredentials(t *testing.T, key types.NamespacedName, check func(c *assert.CollectT, cs *v1alpha1.CredentialStatus)) *v1alpha1.CredentialStatus {
	t.Helper()
	var got *v1alpha1.CredentialStatus
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		oc, _ := getClient(c, key)
		if !assert.NotNil(c, oc) {
			return
		}
		check(c, oc.Status.Credentials)
		got = oc.Status.Credentials
	}, waitFor, tick)
	return got
}

// tokenServers starts a token server per replica whose client authentications are recorded
// (server/credentialuse) into the suite's leased store, as main.go wires them.
func tokenServers(t *testing.T) []*httptest.Server {
	t.Helper()
	out := make([]*httptest.Server, 0, len(suite.replicas))
	for _, r := range suite.replicas {
		rec := credentialuse.New(suite.uses, credentialuse.Options{Interval: 100 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rec.Start(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		var h http.Handler
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { h.ServeHTTP(w, req) }))
		t.Cleanup(srv.Close)
		var err error
		h, err = handler.New(handler.Config{Issuer: srv.URL, Registry: r.registry, Keys: r.keyring, CredentialUses: rec})
		require.NoError(t, err)
		require.Eventually(t, r.keyring.Loaded, waitFor, tick)
		out = append(out, srv)
	}
	return out
}

// assertTokens checks that every server gives (ok) or refuses (invalid_client) a token for the
// secret.
func assertTokens(t *testing.T, servers []*httptest.Server, id, secret string, ok bool, msg string) {
	t.Helper()
	for i, srv := range servers {
		_, err := requestToken(t.Context(), srv, id, secret)
		if ok {
			require.NoError(t, err, "replica %d: %s", i, msg)
		} else {
			assertOAuthError(t, err, "invalid_client")
		}
	}
}

// assertHashesOnly checks that a rotation state holds none of the secrets, only their hashes.
func assertHashesOnly(t *testing.T, state *corev1.Secret, secrets ...string) {
	t.Helper()
	for k, v := range state.Data {
		for _, s := range secrets {
			assert.NotContains(t, string(v), s, "key %s holds a secret", k)
		}
	}
}

func TestAnExternalSecretChangeKeepsThePreviousSecretWorkingForTheGracePeriod(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	const first, second = "first-secret-value-0123456789", "second-secret-value-0123456789"
	createExternalSecret(t, ns, "ext-creds", first)
	oc := rotatingClient(ns, "ext", rotationGrace, true)
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	got := waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	id := "ext." + ns
	servers := tokenServers(t)

	// The leader records the first secret: a state Secret it controls, hashes only.
	before := waitCredentials(t, key, func(c *assert.CollectT, cs *v1alpha1.CredentialStatus) {
		if assert.NotNil(c, cs) {
			assert.NotNil(c, cs.CurrentSince)
			assert.Nil(c, cs.PreviousAcceptedUntil)
		}
	})
	state := rotationState(t, ns, "ext")
	require.NotNil(t, state)
	assert.True(t, metav1.IsControlledBy(state, got), "the state Secret is controlled by the OAuthClient")
	assertHashesOnly(t, state, first)
	assertTokens(t, servers, id, first, true, "the first secret")

	setSecretValue(t, ns, "ext-creds", second)
	waitServed(t, id, ns+"/ext", func(c *assert.CollectT, cl *registry.Client) {
		assert.Equal(c, registry.CurrentSecret, cl.MatchSecret(second, time.Now()), "the new secret is current")
	})
	after := waitCredentials(t, key, func(c *assert.CollectT, cs *v1alpha1.CredentialStatus) {
		if assert.NotNil(c, cs) && assert.NotNil(c, cs.PreviousAcceptedUntil) && assert.NotNil(c, cs.CurrentSince) {
			assert.True(c, cs.CurrentSince.After(before.CurrentSince.Time) || cs.CurrentSince.Equal(before.CurrentSince))
			assert.Equal(c, cs.CurrentSince.Add(rotationGrace), cs.PreviousAcceptedUntil.Time, "accepted for the grace period")
		}
	})
	until := after.PreviousAcceptedUntil.Time
	waitEvent(t, ns, "ext", EventSecretRotated)
	assertHashesOnly(t, rotationState(t, ns, "ext"), first, second)

	// Inside the window both secrets get tokens at every replica.
	require.Less(t, time.Until(until), rotationGrace+time.Second)
	require.Greater(t, time.Until(until), time.Second, "the window must still be open to check it")
	assertTokens(t, servers, id, second, true, "the new secret")
	assertTokens(t, servers, id, first, true, "the previous secret inside the grace period")

	// After it the previous secret is refused everywhere, and the status forgets it.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, srv := range servers {
			_, err := requestToken(ctx, srv, id, first)
			assert.Error(c, err)
		}
	}, rotationGrace+waitFor, tick)
	assert.False(t, time.Now().Before(until), "the previous secret is accepted until %s, not less", until)
	assertTokens(t, servers, id, first, false, "")
	assertTokens(t, servers, id, second, true, "the new secret after the grace period")
	waitCredentials(t, key, func(c *assert.CollectT, cs *v1alpha1.CredentialStatus) {
		if assert.NotNil(c, cs) {
			assert.Nil(c, cs.PreviousAcceptedUntil, "no previous secret is accepted any more")
			assert.Equal(c, after.CurrentSince, cs.CurrentSince)
		}
	})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st := rotationState(c, ns, "ext")
		if assert.NotNil(c, st) {
			assert.NotContains(c, st.Data, convert.RotationPreviousHashKey, "the leader drops the expired previous hash")
		}
	}, waitFor, tick)
}

func TestAGracePeriodOfZeroCutsOverAtOnce(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	const first, second = "first-secret-value-0123456789", "second-secret-value-0123456789"
	createExternalSecret(t, ns, "cut-creds", first)
	oc := rotatingClient(ns, "cut", 0, true)
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	before := waitCredentials(t, key, func(c *assert.CollectT, cs *v1alpha1.CredentialStatus) {
		assert.True(c, cs != nil && cs.CurrentSince != nil)
	})
	servers := tokenServers(t)

	setSecretValue(t, ns, "cut-creds", second)
	waitServed(t, "cut."+ns, ns+"/cut", func(c *assert.CollectT, cl *registry.Client) {
		assert.Equal(c, registry.CurrentSecret, cl.MatchSecret(second, time.Now()))
		assert.Equal(c, registry.NoSecret, cl.MatchSecret(first, time.Now()), "the old secret stops working with the change")
	})
	assertTokens(t, servers, "cut."+ns, first, false, "")
	assertTokens(t, servers, "cut."+ns, second, true, "the new secret")
	waitCredentials(t, key, func(c *assert.CollectT, cs *v1alpha1.CredentialStatus) {
		if assert.NotNil(c, cs) && assert.NotNil(c, cs.CurrentSince) {
			assert.False(c, cs.CurrentSince.Before(before.CurrentSince), "currentSince moves to the change")
			assert.Nil(c, cs.PreviousAcceptedUntil)
		}
	})
	waitEvent(t, ns, "cut", EventSecretRotated)
}

func TestTheRotateAnnotationRegeneratesAGeneratedSecret(t *testing.T) {
	tests := []struct {
		name        string
		rotation    *v1alpha1.SecretRotation
		oldAccepted bool
	}{
		{name: "with a grace period the old secret keeps working", rotation: &v1alpha1.SecretRotation{GracePeriod: &metav1.Duration{Duration: time.Hour}}, oldAccepted: true},
		{name: "without secretRotation the old secret stops working at once"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			ns := newNamespace(t)
			name := []string{"regen-grace", "regen-now"}[i]
			oc := confidentialClient(ns, name)
			oc.Spec.SecretRotation = tc.rotation
			oc.Annotations = map[string]string{v1alpha1.AnnotationRotate: "created"}
			require.NoError(t, suite.client.Create(ctx, oc))
			key := client.ObjectKeyFromObject(oc)
			waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
			id := name + "." + ns
			secretName := name + "-oauth-client"
			old := secretValue(t, ns, secretName, "client-secret")
			var s corev1.Secret
			require.NoError(t, suite.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: secretName}, &s))
			assert.Equal(t, "created", s.Annotations[v1alpha1.AnnotationRotatedFor], "a Secret generated for an annotated client records its value")
			waitServed(t, id, ns+"/"+name, func(c *assert.CollectT, cl *registry.Client) { assert.True(c, cl.CheckSecret(old)) })

			updateClient(t, key, func(oc *v1alpha1.OAuthClient) { oc.Annotations[v1alpha1.AnnotationRotate] = "2026-05-01" })
			var fresh string
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				var s corev1.Secret
				if assert.NoError(c, suite.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: secretName}, &s)) {
					assert.Equal(c, "2026-05-01", s.Annotations[v1alpha1.AnnotationRotatedFor])
					fresh = string(s.Data["client-secret"])
					assert.NotEqual(c, old, fresh, "a new secret")
				}
			}, waitFor, tick)
			assert.Len(t, fresh, 43, "32 random bytes in unpadded base64url")
			waitEvent(t, ns, name, EventSecretRotated)
			want := registry.NoSecret
			if tc.oldAccepted {
				want = registry.PreviousSecret
			}
			waitServed(t, id, ns+"/"+name, func(c *assert.CollectT, cl *registry.Client) {
				assert.Equal(c, registry.CurrentSecret, cl.MatchSecret(fresh, time.Now()))
				assert.Equal(c, want, cl.MatchSecret(old, time.Now()))
			})
			servers := tokenServers(t)
			assertTokens(t, servers, id, fresh, true, "the regenerated secret")
			assertTokens(t, servers, id, old, tc.oldAccepted, "the old secret inside the grace period")
			if tc.oldAccepted {
				cs := waitCredentials(t, key, func(c *assert.CollectT, cs *v1alpha1.CredentialStatus) {
					assert.True(c, cs != nil && cs.PreviousAcceptedUntil != nil)
				})
				assert.Equal(t, cs.CurrentSince.Add(time.Hour), cs.PreviousAcceptedUntil.Time)
			}

			// The same value at the next reconcile (a spec change) rotates nothing.
			updateClient(t, key, func(oc *v1alpha1.OAuthClient) { oc.Spec.Scopes = []string{"reports:read"} })
			waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
			assert.Equal(t, fresh, secretValue(t, ns, secretName, "client-secret"), "each value rotates once")
		})
	}
}

func TestARotationStateSecretTheClientDoesNotControlIsNeverUsed(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	const genuine, planted = "the-genuine-secret-0123456789", "a-secret-the-planter-knows"
	createExternalSecret(t, ns, "victim-creds", genuine)
	// Someone who may create Secrets plants a state that would accept their secret as the
	// previous one for a year.
	now := time.Now()
	foreign := convert.RotationState{
		HasCurrent: true, Current: registry.HashSecret([]byte(genuine)), CurrentSince: now,
		HasPrevious: true, Previous: registry.HashSecret([]byte(planted)), PreviousUntil: now.Add(365 * 24 * time.Hour),
	}
	plantedSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "victim" + convert.RotationSecretSuffix}, Data: foreign.Data()}
	require.NoError(t, suite.client.Create(ctx, plantedSecret))

	oc := rotatingClient(ns, "victim", time.Hour, true)
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonSecretConflict)
	_, cond := getClient(t, key)
	assert.Contains(t, cond.Message, "victim"+convert.RotationSecretSuffix)
	waitServed(t, "victim."+ns, ns+"/victim", func(c *assert.CollectT, cl *registry.Client) {
		assert.Equal(c, registry.CurrentSecret, cl.MatchSecret(genuine, time.Now()))
		assert.Equal(c, registry.NoSecret, cl.MatchSecret(planted, time.Now()), "the planted previous secret is never accepted")
	})
	assertTokens(t, tokenServers(t), "victim."+ns, planted, false, "")
	st := rotationState(t, ns, "victim")
	require.NotNil(t, st)
	assert.Equal(t, foreign.Data(), st.Data, "never written")
	assert.Empty(t, st.OwnerReferences, "never adopted")

	// Once it is gone the leader keeps its own.
	require.NoError(t, suite.client.Delete(ctx, st))
	got := waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st := rotationState(c, ns, "victim")
		if assert.NotNil(c, st) {
			assert.True(c, metav1.IsControlledBy(st, got))
			assert.NotContains(c, st.Data, convert.RotationPreviousHashKey)
		}
	}, waitFor, tick)
}

func TestTurningSecretRotationOffForgetsTheState(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	const first, second, third = "first-secret-value-0123456789", "second-secret-value-0123456789", "third-secret-value-0123456789"
	createExternalSecret(t, ns, "off-creds", first)
	oc := rotatingClient(ns, "off", time.Hour, true)
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitCredentials(t, key, func(c *assert.CollectT, cs *v1alpha1.CredentialStatus) {
		assert.True(c, cs != nil && cs.CurrentSince != nil)
	})

	updateClient(t, key, func(oc *v1alpha1.OAuthClient) { oc.Spec.SecretRotation = nil })
	waitCredentials(t, key, func(c *assert.CollectT, cs *v1alpha1.CredentialStatus) { assert.Nil(c, cs) })
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st := rotationState(c, ns, "off")
		if assert.NotNil(c, st) {
			assert.Empty(c, st.Data, "the state is emptied")
		}
	}, waitFor, tick)

	// Changed while rotation is off, then turned on again: the secret rotated away while it was
	// off is not revived.
	setSecretValue(t, ns, "off-creds", second)
	waitServed(t, "off."+ns, ns+"/off", func(c *assert.CollectT, cl *registry.Client) { assert.True(c, cl.CheckSecret(second)) })
	updateClient(t, key, func(oc *v1alpha1.OAuthClient) {
		oc.Spec.SecretRotation = &v1alpha1.SecretRotation{GracePeriod: &metav1.Duration{Duration: time.Hour}}
	})
	waitCredentials(t, key, func(c *assert.CollectT, cs *v1alpha1.CredentialStatus) {
		assert.True(c, cs != nil && cs.CurrentSince != nil && cs.PreviousAcceptedUntil == nil)
	})
	setSecretValue(t, ns, "off-creds", third)
	waitServed(t, "off."+ns, ns+"/off", func(c *assert.CollectT, cl *registry.Client) {
		assert.Equal(c, registry.CurrentSecret, cl.MatchSecret(third, time.Now()))
		assert.Equal(c, registry.PreviousSecret, cl.MatchSecret(second, time.Now()))
		assert.Equal(c, registry.NoSecret, cl.MatchSecret(first, time.Now()))
	})
}

func TestTheLastUsesOfBothSecretsAreWrittenToTheMinute(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	const first, second = "first-secret-value-0123456789", "second-secret-value-0123456789"
	createExternalSecret(t, ns, "used-creds", first)
	oc := rotatingClient(ns, "used", time.Hour, true)
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	// A client without secretRotation, used as well: its status gets no credentials.
	plain := confidentialClient(ns, "plain")
	require.NoError(t, suite.client.Create(ctx, plain))
	waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitReady(t, client.ObjectKeyFromObject(plain), metav1.ConditionTrue, v1alpha1.ReasonReady)
	plainSecret := secretValue(t, ns, "plain-oauth-client", "client-secret")
	waitCredentials(t, key, func(c *assert.CollectT, cs *v1alpha1.CredentialStatus) {
		assert.True(c, cs != nil && cs.CurrentSince != nil)
	})
	setSecretValue(t, ns, "used-creds", second)
	waitServed(t, "used."+ns, ns+"/used", func(c *assert.CollectT, cl *registry.Client) {
		assert.Equal(c, registry.CurrentSecret, cl.MatchSecret(second, time.Now()))
		assert.Equal(c, registry.PreviousSecret, cl.MatchSecret(first, time.Now()))
	})
	waitServed(t, "plain."+ns, ns+"/plain", func(c *assert.CollectT, cl *registry.Client) { assert.True(c, cl.CheckSecret(plainSecret)) })

	servers := tokenServers(t)
	start := time.Now().UTC().Truncate(time.Minute)
	_, err := requestToken(ctx, servers[0], "used."+ns, second)
	require.NoError(t, err)
	_, err = requestToken(ctx, servers[1], "used."+ns, first)
	require.NoError(t, err)
	_, err = requestToken(ctx, servers[0], "plain."+ns, plainSecret)
	require.NoError(t, err)

	cs := waitCredentials(t, key, func(c *assert.CollectT, cs *v1alpha1.CredentialStatus) {
		if assert.NotNil(c, cs) {
			assert.NotNil(c, cs.CurrentLastUsed, "the current secret's last use")
			assert.NotNil(c, cs.PreviousLastUsed, "the previous secret's last use")
			assert.NotNil(c, cs.PreviousAcceptedUntil, "the leader's times stay")
		}
	})
	end := time.Now().UTC().Truncate(time.Minute)
	for _, at := range []*metav1.Time{cs.CurrentLastUsed, cs.PreviousLastUsed} {
		assert.Equal(t, at.Truncate(time.Minute), at.Time, "to the minute")
		assert.False(t, at.Time.Before(start) || at.After(end), "%s within [%s, %s]", at, start, end)
	}
	got, _ := getClient(t, client.ObjectKeyFromObject(plain))
	assert.Nil(t, got.Status.Credentials, "a client without secretRotation is not tracked")
	assert.True(t, strings.HasPrefix(got.Status.ClientID, "plain."))
}
