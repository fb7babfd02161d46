package controllers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/internal/harness/oidcissuer"
	latchkeyoauth2 "github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/handler"
	"github.com/latchkey-dev/latchkey/server/registry"
	"github.com/latchkey-dev/latchkey/server/workload"
)

const testAudience = "https://latchkey.example"

// createIssuer creates a cluster-scoped WorkloadIssuer, deleted at the test's end.
func createIssuer(t *testing.T, name string, spec v1alpha1.WorkloadIssuerSpec) {
	t.Helper()
	wi := &v1alpha1.WorkloadIssuer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	require.NoError(t, suite.client.Create(t.Context(), wi))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), wi) })
}

// updateIssuer applies change to the stored WorkloadIssuer, again on a conflict.
func updateIssuer(t *testing.T, name string, change func(*v1alpha1.WorkloadIssuer)) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var wi v1alpha1.WorkloadIssuer
		if err := suite.client.Get(t.Context(), types.NamespacedName{Name: name}, &wi); err != nil {
			return err
		}
		change(&wi)
		return suite.client.Update(t.Context(), &wi)
	}))
}

// waitIssuer waits for the WorkloadIssuer's Ready condition with the reason, describing its
// generation, and returns the object.
func waitIssuer(t *testing.T, name string, status metav1.ConditionStatus, reason string) *v1alpha1.WorkloadIssuer {
	t.Helper()
	var got *v1alpha1.WorkloadIssuer
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var wi v1alpha1.WorkloadIssuer
		if !assert.NoError(c, suite.client.Get(context.Background(), types.NamespacedName{Name: name}, &wi)) {
			return
		}
		cond := meta.FindStatusCondition(wi.Status.Conditions, v1alpha1.ConditionReady)
		if !assert.NotNil(c, cond, "Ready condition") {
			return
		}
		assert.Equal(c, status, cond.Status)
		assert.Equal(c, reason, cond.Reason, cond.Message)
		assert.Equal(c, wi.Generation, cond.ObservedGeneration)
		assert.Equal(c, wi.Generation, wi.Status.ObservedGeneration)
		got = &wi
	}, waitFor, tick)
	return got
}

// waitIssuerServed waits until every replica serves the issuer (or, with want false, none does)
// and check passes on it.
func waitIssuerServed(t *testing.T, name string, want bool, check func(c *assert.CollectT, w *registry.WorkloadIssuer)) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i, r := range suite.replicas {
			w, ok := r.registry.Snapshot().WorkloadIssuer(name)
			if !assert.Equal(c, want, ok, "replica %d serves %s", i, name) || !ok {
				continue
			}
			if check != nil {
				check(c, w)
			}
		}
	}, waitFor, tick)
}

func discoverySpec(iss *oidcissuer.Issuer) v1alpha1.WorkloadIssuerSpec {
	return v1alpha1.WorkloadIssuerSpec{
		Issuer: iss.URL(), CABundle: iss.CABundle(), Audiences: []string{testAudience}, AllowedNamespaces: []string{"*"},
	}
}

func TestWorkloadIssuerStatusFollowsItsKeys(t *testing.T) {
	k1, k2 := oidcissuer.NewKey(t, "k1"), oidcissuer.NewKey(t, "k2")
	tests := []struct {
		name       string
		setup      func(iss *oidcissuer.Issuer) // the issuer's behaviour
		spec       func(iss *oidcissuer.Issuer, spec *v1alpha1.WorkloadIssuerSpec)
		wantStatus metav1.ConditionStatus
		wantReason string
		check      func(t *testing.T, iss *oidcissuer.Issuer, wi *v1alpha1.WorkloadIssuer)
	}{
		{name: "An issuer found by OIDC discovery over TLS with its CA bundle is Ready with its keys",
			wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonReady,
			check: func(t *testing.T, iss *oidcissuer.Issuer, wi *v1alpha1.WorkloadIssuer) {
				assert.Equal(t, int32(2), wi.Status.KeyCount)
				assert.Equal(t, iss.URL()+oidcissuer.JWKSPath, wi.Status.JWKSURI)
				require.NotNil(t, wi.Status.LastRefreshTime)
				assert.WithinDuration(t, time.Now(), wi.Status.LastRefreshTime.Time, time.Minute)
				waitEvent(t, corev1.NamespaceDefault, wi.Name, v1alpha1.ReasonReady)
				waitIssuerServed(t, wi.Name, true, func(c *assert.CollectT, w *registry.WorkloadIssuer) {
					assert.Equal(c, iss.URL(), w.Issuer)
					assert.Equal(c, []byte(iss.CABundle()), w.CABundle)
					assert.Equal(c, time.Hour, w.RefreshPeriod)
				})
			}},
		{name: "A jwksURI is fetched without discovery",
			setup: func(iss *oidcissuer.Issuer) { iss.FailDiscovery(http.StatusNotFound) },
			spec: func(iss *oidcissuer.Issuer, spec *v1alpha1.WorkloadIssuerSpec) {
				spec.JWKSURI = iss.URL() + oidcissuer.JWKSPath
			},
			wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonReady,
			check: func(t *testing.T, iss *oidcissuer.Issuer, wi *v1alpha1.WorkloadIssuer) {
				assert.Equal(t, int32(2), wi.Status.KeyCount)
				assert.Equal(t, iss.URL()+oidcissuer.JWKSPath, wi.Status.JWKSURI)
			}},
		{name: "A discovery document that cannot be fetched is DiscoveryFailed",
			setup:      func(iss *oidcissuer.Issuer) { iss.FailDiscovery(http.StatusInternalServerError) },
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonDiscoveryFailed,
			check: func(t *testing.T, _ *oidcissuer.Issuer, wi *v1alpha1.WorkloadIssuer) {
				cond := meta.FindStatusCondition(wi.Status.Conditions, v1alpha1.ConditionReady)
				assert.Contains(t, cond.Message, "status 500")
				assert.Contains(t, cond.Message, "no keys are held")
				assert.Zero(t, wi.Status.KeyCount)
				assert.Nil(t, wi.Status.LastRefreshTime)
				waitEvent(t, corev1.NamespaceDefault, wi.Name, v1alpha1.ReasonDiscoveryFailed)
			}},
		{name: "A discovery document of another issuer is DiscoveryFailed",
			setup:      func(iss *oidcissuer.Issuer) { iss.SetDiscoveryIssuer("https://impostor.example") },
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonDiscoveryFailed,
			check: func(t *testing.T, _ *oidcissuer.Issuer, wi *v1alpha1.WorkloadIssuer) {
				cond := meta.FindStatusCondition(wi.Status.Conditions, v1alpha1.ConditionReady)
				assert.Contains(t, cond.Message, `issuer "https://impostor.example" is not`)
			}},
		{name: "A server the CA bundle does not vouch for is DiscoveryFailed",
			spec: func(_ *oidcissuer.Issuer, spec *v1alpha1.WorkloadIssuerSpec) {
				spec.CABundle = oidcissuer.UnrelatedCABundle(t)
			},
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonDiscoveryFailed,
			check: func(t *testing.T, _ *oidcissuer.Issuer, wi *v1alpha1.WorkloadIssuer) {
				cond := meta.FindStatusCondition(wi.Status.Conditions, v1alpha1.ConditionReady)
				assert.Contains(t, cond.Message, "certificate")
			}},
		{name: "A JWK set that cannot be fetched is KeysUnavailable",
			setup:      func(iss *oidcissuer.Issuer) { iss.FailJWKS(http.StatusBadGateway) },
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonKeysUnavailable,
			check: func(t *testing.T, iss *oidcissuer.Issuer, wi *v1alpha1.WorkloadIssuer) {
				assert.Equal(t, iss.URL()+oidcissuer.JWKSPath, wi.Status.JWKSURI, "discovery found it")
			}},
		{name: "An empty JWK set is KeysUnavailable",
			setup:      func(iss *oidcissuer.Issuer) { iss.Publish() },
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonKeysUnavailable,
			check: func(t *testing.T, _ *oidcissuer.Issuer, wi *v1alpha1.WorkloadIssuer) {
				cond := meta.FindStatusCondition(wi.Status.Conditions, v1alpha1.ConditionReady)
				assert.Contains(t, cond.Message, "no usable signing key")
			}},
		{name: "A claim rule that does not compile is InvalidSpec and not served",
			spec: func(_ *oidcissuer.Issuer, spec *v1alpha1.WorkloadIssuerSpec) {
				spec.ClaimValidationRules = []v1alpha1.ClaimValidationRule{{Expression: "claims.sub =="}}
			},
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonInvalidSpec,
			check: func(t *testing.T, iss *oidcissuer.Issuer, wi *v1alpha1.WorkloadIssuer) {
				waitIssuerServed(t, wi.Name, false, nil)
				n, _ := iss.JWKSFetches()
				assert.Zero(t, n, "an invalid issuer is never fetched")
			}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := oidcissuer.Start(t, k1, k2)
			if tt.setup != nil {
				tt.setup(iss)
			}
			spec := discoverySpec(iss)
			if tt.spec != nil {
				tt.spec(iss, &spec)
			}
			name := "status-" + string(rune('a'+i)) + "-" + newNamespace(t)
			createIssuer(t, name, spec)
			wi := waitIssuer(t, name, tt.wantStatus, tt.wantReason)
			if tt.check != nil {
				tt.check(t, iss, wi)
			}
		})
	}
}

func TestWorkloadIssuerRecoversWhenItsSourceIsFixed(t *testing.T) {
	k1 := oidcissuer.NewKey(t, "k1")
	iss := oidcissuer.Start(t, k1)
	name := "recovers-" + newNamespace(t)
	spec := discoverySpec(iss)
	spec.CABundle = oidcissuer.UnrelatedCABundle(t)
	createIssuer(t, name, spec)
	waitIssuer(t, name, metav1.ConditionFalse, v1alpha1.ReasonDiscoveryFailed)

	// A new source is checked at once, not after the retry period.
	updateIssuer(t, name, func(wi *v1alpha1.WorkloadIssuer) { wi.Spec.CABundle = iss.CABundle() })
	wi := waitIssuer(t, name, metav1.ConditionTrue, v1alpha1.ReasonReady)
	assert.Equal(t, int32(1), wi.Status.KeyCount)
	waitEvent(t, corev1.NamespaceDefault, name, v1alpha1.ReasonReady)

	// A change that does not touch where the keys come from fetches nothing.
	fetches, _ := iss.JWKSFetches()
	updateIssuer(t, name, func(wi *v1alpha1.WorkloadIssuer) { wi.Spec.Audiences = []string{testAudience, "another"} })
	waitIssuer(t, name, metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitIssuerServed(t, name, true, func(c *assert.CollectT, w *registry.WorkloadIssuer) {
		assert.Equal(c, []string{testAudience, "another"}, w.Audiences)
	})
	n, _ := iss.JWKSFetches()
	assert.Equal(t, fetches, n, "the leader fetches an unchanged source once per refresh period")
}

func TestWorkloadIssuerKeysFromASecret(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	k1, k2 := oidcissuer.NewKey(t, "k1"), oidcissuer.NewKey(t, "k2")
	name := "secret-keys-" + ns
	createIssuer(t, name, v1alpha1.WorkloadIssuerSpec{
		Issuer: "https://unreachable.invalid", Audiences: []string{testAudience}, AllowedNamespaces: []string{ns},
		JWKSSecretRef: &v1alpha1.SecretKeyRef{Namespace: ns, Name: "issuer-keys"},
	})
	wi := waitIssuer(t, name, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	assert.Zero(t, wi.Status.KeyCount)
	waitIssuerServed(t, name, false, nil)

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "issuer-keys"},
		Data:       map[string][]byte{"jwks.json": oidcissuer.JWKS(t, k1)},
	}
	require.NoError(t, suite.client.Create(ctx, secret))
	wi = waitIssuer(t, name, metav1.ConditionTrue, v1alpha1.ReasonReady)
	assert.Equal(t, int32(1), wi.Status.KeyCount)
	assert.Empty(t, wi.Status.JWKSURI, "nothing is fetched")
	waitIssuerServed(t, name, true, func(c *assert.CollectT, w *registry.WorkloadIssuer) {
		if assert.Len(c, w.StaticKeys, 1) {
			assert.Equal(c, "k1", w.StaticKeys[0].KeyID)
		}
	})

	// A new key set in the Secret is served without a change to the issuer.
	secret.Data["jwks.json"] = oidcissuer.JWKS(t, k1, k2)
	require.NoError(t, suite.client.Update(ctx, secret))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var got v1alpha1.WorkloadIssuer
		if assert.NoError(c, suite.client.Get(ctx, types.NamespacedName{Name: name}, &got)) {
			assert.Equal(c, int32(2), got.Status.KeyCount)
		}
	}, waitFor, tick)
	waitIssuerServed(t, name, true, func(c *assert.CollectT, w *registry.WorkloadIssuer) { assert.Len(c, w.StaticKeys, 2) })
}

// workloadClient is an OAuthClient that authenticates with tokens of the WorkloadIssuer for the
// subject.
func workloadClient(ns, name, issuer, subject string) *v1alpha1.OAuthClient {
	return &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.OAuthClientSpec{
			GrantTypes:              []v1alpha1.GrantType{v1alpha1.GrantTypeClientCredentials},
			TokenEndpointAuthMethod: v1alpha1.AuthMethodServiceAccountToken,
			WorkloadIdentity:        &v1alpha1.WorkloadIdentity{IssuerRef: v1alpha1.WorkloadIssuerRef{Name: issuer}, Subject: subject},
		},
	}
}

// assertionServer serves the real OAuth 2.0 handler over one replica's registry and keyring, with
// the client assertion verifier the server uses.
func assertionServer(t *testing.T, r *replica) *httptest.Server {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { h.ServeHTTP(w, req) }))
	t.Cleanup(srv.Close)
	v, err := workload.New(workload.Config{Issuer: srv.URL})
	require.NoError(t, err)
	h, err = handler.New(handler.Config{Issuer: srv.URL, Registry: r.registry, Keys: r.keyring, ClientAssertions: v})
	require.NoError(t, err)
	require.Eventually(t, r.keyring.Loaded, waitFor, tick)
	return srv
}

// assertionToken asks srv for a client_credentials token, authenticating with a JWT-bearer client
// assertion (RFC 7523 2.2).
func assertionToken(ctx context.Context, srv *httptest.Server, id, assertion string) (*oauth2.Token, error) {
	cc := clientcredentials.Config{
		ClientID: id, TokenURL: srv.URL + latchkeyoauth2.TokenPath, AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: map[string][]string{
			"client_assertion_type": {latchkeyoauth2.ClientAssertionTypeJWTBearer},
			"client_assertion":      {assertion},
		},
	}
	return cc.Token(context.WithValue(ctx, oauth2.HTTPClient, srv.Client()))
}

func TestWorkloadIdentityClientWaitsForItsIssuer(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	k1 := oidcissuer.NewKey(t, "k1")
	issuerName := "appears-" + ns
	oc := workloadClient(ns, "ci", issuerName, "repo:example/app")
	require.NoError(t, suite.client.Create(ctx, oc))
	key := client.ObjectKeyFromObject(oc)
	got := waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonIssuerNotFound)
	assert.Equal(t, "ci."+ns, got.Status.ClientID)
	assert.Empty(t, got.Status.SecretName, "no secret: it authenticates with tokens")
	waitEvent(t, ns, "ci", v1alpha1.ReasonIssuerNotFound)
	waitServed(t, "ci."+ns, ns+"/ci", nil) // it holds its client ID meanwhile

	// The issuer appears, without the client's namespace.
	require.NoError(t, suite.client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "issuer-keys"},
		Data:       map[string][]byte{"jwks.json": oidcissuer.JWKS(t, k1)},
	}))
	createIssuer(t, issuerName, v1alpha1.WorkloadIssuerSpec{
		Issuer: "https://ci.example", Audiences: []string{testAudience}, AllowedNamespaces: []string{"elsewhere"},
		JWKSSecretRef: &v1alpha1.SecretKeyRef{Namespace: ns, Name: "issuer-keys"},
	})
	got = waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonNamespaceNotAllowed)
	assert.Contains(t, meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message, "namespace "+ns)

	// It allows the namespace: Ready, and a token of the issuer authenticates the client.
	updateIssuer(t, issuerName, func(wi *v1alpha1.WorkloadIssuer) { wi.Spec.AllowedNamespaces = []string{"elsewhere", ns} })
	waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitEvent(t, ns, "ci", v1alpha1.ReasonReady)
	waitIssuerServed(t, issuerName, true, func(c *assert.CollectT, w *registry.WorkloadIssuer) {
		assert.True(c, w.AllowsNamespace(ns))
	})
	srv := assertionServer(t, suite.replicas[0])
	token := k1.Sign(t, map[string]any{
		"iss": "https://ci.example", "sub": "repo:example/app", "aud": testAudience,
		"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(),
	})
	tok, err := assertionToken(ctx, srv, "ci."+ns, token)
	require.NoError(t, err)
	assert.NotEmpty(t, tok.AccessToken)

	// The issuer goes: IssuerNotFound again.
	require.NoError(t, suite.client.Delete(ctx, &v1alpha1.WorkloadIssuer{ObjectMeta: metav1.ObjectMeta{Name: issuerName}}))
	waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonIssuerNotFound)
	waitIssuerServed(t, issuerName, false, nil)
}

func TestWorkloadIdentitySubjectConflict(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	k1 := oidcissuer.NewKey(t, "k1")
	issuerName := "conflict-" + ns
	require.NoError(t, suite.client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "issuer-keys"},
		Data:       map[string][]byte{"jwks.json": oidcissuer.JWKS(t, k1)},
	}))
	createIssuer(t, issuerName, v1alpha1.WorkloadIssuerSpec{
		Issuer: "https://ci.example", Audiences: []string{testAudience}, AllowedNamespaces: []string{"*"},
		JWKSSecretRef: &v1alpha1.SecretKeyRef{Namespace: ns, Name: "issuer-keys"},
	})
	waitIssuer(t, issuerName, metav1.ConditionTrue, v1alpha1.ReasonReady)

	first := workloadClient(ns, "first", issuerName, "repo:example/app")
	require.NoError(t, suite.client.Create(ctx, first))
	waitReady(t, client.ObjectKeyFromObject(first), metav1.ConditionTrue, v1alpha1.ReasonReady)
	// Created later, or in the same second with a larger source key ("ns/second"): it loses.
	second := workloadClient(ns, "second", issuerName, "repo:example/app")
	require.NoError(t, suite.client.Create(ctx, second))
	got := waitReady(t, client.ObjectKeyFromObject(second), metav1.ConditionFalse, v1alpha1.ReasonSubjectConflict)
	msg := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message
	assert.Contains(t, msg, `subject "repo:example/app" of WorkloadIssuer `+issuerName)
	assert.Contains(t, msg, "OAuthClient "+ns+"/first")
	waitEvent(t, ns, "second", v1alpha1.ReasonSubjectConflict)
	waitReady(t, client.ObjectKeyFromObject(first), metav1.ConditionTrue, v1alpha1.ReasonReady)

	// Every replica lets the holder authenticate by the pair, and only the holder.
	for _, r := range suite.replicas {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			h, ok := r.registry.Snapshot().SubjectHolder(issuerName, "repo:example/app")
			if assert.True(c, ok) {
				assert.Equal(c, ns+"/first", h.Source)
			}
			_, ok = r.registry.Snapshot().Client("second." + ns)
			assert.True(c, ok, "the loser keeps its client ID")
		}, waitFor, tick)
	}
	srv := assertionServer(t, suite.replicas[1])
	token := func() string {
		return k1.Sign(t, map[string]any{
			"iss": "https://ci.example", "sub": "repo:example/app", "aud": testAudience,
			"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(),
		})
	}
	_, err := assertionToken(ctx, srv, "second."+ns, token())
	assertOAuthError(t, err, "invalid_client")

	// The holder goes: the second client takes the pair over.
	require.NoError(t, suite.client.Delete(ctx, first))
	waitReady(t, client.ObjectKeyFromObject(second), metav1.ConditionTrue, v1alpha1.ReasonReady)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		h, ok := suite.replicas[1].registry.Snapshot().SubjectHolder(issuerName, "repo:example/app")
		if assert.True(c, ok) {
			assert.Equal(c, ns+"/second", h.Source)
		}
	}, waitFor, tick)
	tok, err := assertionToken(ctx, srv, "second."+ns, token())
	require.NoError(t, err)
	assert.NotEmpty(t, tok.AccessToken)
}

func TestServiceAccountClientsConflictByTheirServiceAccount(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	first := apiServiceAccountClient(ns, "first")
	require.NoError(t, suite.client.Create(ctx, first))
	waitReady(t, client.ObjectKeyFromObject(first), metav1.ConditionTrue, v1alpha1.ReasonReady)
	second := apiServiceAccountClient(ns, "second")
	require.NoError(t, suite.client.Create(ctx, second))
	got := waitReady(t, client.ObjectKeyFromObject(second), metav1.ConditionFalse, v1alpha1.ReasonSubjectConflict)
	assert.Contains(t, meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message,
		"ServiceAccount "+ns+"/api is already bound to OAuthClient "+ns+"/first")

	// The holder binds to another ServiceAccount: the pair is free.
	updateClient(t, client.ObjectKeyFromObject(first), func(oc *v1alpha1.OAuthClient) { oc.Spec.ServiceAccount.Name = "other" })
	waitReady(t, client.ObjectKeyFromObject(second), metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitReady(t, client.ObjectKeyFromObject(first), metav1.ConditionTrue, v1alpha1.ReasonReady)
}

func TestAClientAPolicyWithdrawsGivesUpItsServiceAccount(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	first := apiServiceAccountClient(ns, "first", "admin:all")
	require.NoError(t, suite.client.Create(ctx, first))
	waitReady(t, client.ObjectKeyFromObject(first), metav1.ConditionTrue, v1alpha1.ReasonReady)
	second := apiServiceAccountClient(ns, "second", "read:reports")
	require.NoError(t, suite.client.Create(ctx, second))
	waitReady(t, client.ObjectKeyFromObject(second), metav1.ConditionFalse, v1alpha1.ReasonSubjectConflict)

	// A policy withdraws the holder: it is not served, so the ServiceAccount is the second's.
	require.NoError(t, suite.client.Create(ctx, &v1alpha1.OAuthClientPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "read-only"},
		Spec:       v1alpha1.OAuthClientPolicySpec{AllowedScopes: []string{"read:*"}},
	}))
	waitReady(t, client.ObjectKeyFromObject(first), metav1.ConditionFalse, v1alpha1.ReasonPolicyViolation)
	waitReady(t, client.ObjectKeyFromObject(second), metav1.ConditionTrue, v1alpha1.ReasonReady)
	for _, r := range suite.replicas {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			h, ok := r.registry.Snapshot().SubjectHolder(registry.LocalIssuer, "system:serviceaccount:"+ns+":api")
			if assert.True(c, ok) {
				assert.Equal(c, ns+"/second", h.Source)
			}
		}, waitFor, tick)
	}
}

// apiServiceAccountClient is a client_credentials OAuthClient authenticated by the tokens of the
// ServiceAccount "api" of its namespace.
func apiServiceAccountClient(ns, name string, scopes ...string) *v1alpha1.OAuthClient {
	return &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.OAuthClientSpec{
			GrantTypes:              []v1alpha1.GrantType{v1alpha1.GrantTypeClientCredentials},
			TokenEndpointAuthMethod: v1alpha1.AuthMethodServiceAccountToken,
			ServiceAccount:          &v1alpha1.ServiceAccountRef{Name: "api"},
			Scopes:                  scopes,
		},
	}
}
