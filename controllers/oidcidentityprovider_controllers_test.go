package controllers

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/internal/harness/oidcissuer"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// waitUpstreamConditions waits until the provider's conditions have the statuses (by type) and
// describe its generation; it returns the provider.
func waitUpstreamConditions(t *testing.T, name string, want map[string]metav1.ConditionStatus, reasons map[string]string) *v1alpha1.OIDCIdentityProvider {
	t.Helper()
	var got *v1alpha1.OIDCIdentityProvider
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var p v1alpha1.OIDCIdentityProvider
		if !assert.NoError(c, suite.client.Get(context.Background(), types.NamespacedName{Name: name}, &p)) {
			return
		}
		for typ, status := range want {
			cond := meta.FindStatusCondition(p.Status.Conditions, typ)
			if !assert.NotNil(c, cond, typ) {
				return
			}
			assert.Equal(c, status, cond.Status, "%s: %s", typ, cond.Message)
			if r, ok := reasons[typ]; ok {
				assert.Equal(c, r, cond.Reason, "%s: %s", typ, cond.Message)
			}
			assert.Equal(c, p.Generation, cond.ObservedGeneration)
		}
		got = &p
	}, waitFor, tick)
	return got
}

func waitUpstreamServed(t *testing.T, name string, want bool, check func(c *assert.CollectT, u *registry.UpstreamOIDC)) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i, r := range suite.replicas {
			u, ok := r.registry.Snapshot().UpstreamOIDC(name)
			if assert.Equal(c, want, ok, "replica %d serves %s", i, name) && ok && check != nil {
				check(c, u)
			}
		}
	}, waitFor, tick)
}

func createUpstream(t *testing.T, name string, spec v1alpha1.OIDCIdentityProviderSpec) {
	t.Helper()
	p := &v1alpha1.OIDCIdentityProvider{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	require.NoError(t, suite.client.Create(t.Context(), p))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), p) })
}

func createUpstreamSecret(t *testing.T, ns, name string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{"client-secret": "s3cret"}}
	require.NoError(t, suite.client.Create(t.Context(), s))
}

func TestOIDCIdentityProviderStatus(t *testing.T) {
	iss := oidcissuer.Start(t, oidcissuer.NewKey(t, "k1"))
	ns := newNamespace(t)
	spec := func(issuer, secret string) v1alpha1.OIDCIdentityProviderSpec {
		return v1alpha1.OIDCIdentityProviderSpec{
			Issuer: issuer, CABundle: iss.CABundle(), DisplayName: "Corp SSO",
			Client: v1alpha1.UpstreamClient{ClientID: "latchkey", SecretRef: &v1alpha1.SecretKeyRef{Namespace: ns, Name: secret}},
		}
	}
	createUpstreamSecret(t, ns, "idp-good")

	t.Run("a reachable issuer with its client secret is Ready and served", func(t *testing.T) {
		createUpstream(t, "idp-good", spec(iss.URL(), "idp-good"))
		waitUpstreamConditions(t, "idp-good", map[string]metav1.ConditionStatus{
			v1alpha1.ConditionReady: metav1.ConditionTrue, v1alpha1.ConditionDiscoverySucceeded: metav1.ConditionTrue,
			v1alpha1.ConditionClientCredentialsValid: metav1.ConditionTrue,
		}, nil)
		waitUpstreamServed(t, "idp-good", true, func(c *assert.CollectT, u *registry.UpstreamOIDC) {
			assert.Equal(c, "Corp SSO", u.DisplayName)
			assert.Equal(c, "s3cret", u.ClientSecret)
			assert.Equal(c, []string{"openid", "email", "profile"}, u.Scopes)
			assert.NotEmpty(c, u.UID)
		})
		waitEvent(t, "", "idp-good", v1alpha1.ReasonReady)
	})

	t.Run("a bad issuer fails discovery", func(t *testing.T) {
		createUpstream(t, "idp-unreachable", spec("https://127.0.0.1:1/nothing", "idp-good"))
		waitUpstreamConditions(t, "idp-unreachable", map[string]metav1.ConditionStatus{
			v1alpha1.ConditionReady: metav1.ConditionFalse, v1alpha1.ConditionDiscoverySucceeded: metav1.ConditionFalse,
			v1alpha1.ConditionClientCredentialsValid: metav1.ConditionTrue,
		}, map[string]string{v1alpha1.ConditionDiscoverySucceeded: v1alpha1.ReasonDiscoveryFailed})
	})

	t.Run("a missing secret makes the credentials invalid until it exists", func(t *testing.T) {
		createUpstream(t, "idp-nosecret", spec(iss.URL(), "idp-later"))
		waitUpstreamConditions(t, "idp-nosecret", map[string]metav1.ConditionStatus{
			v1alpha1.ConditionReady: metav1.ConditionFalse, v1alpha1.ConditionClientCredentialsValid: metav1.ConditionFalse,
			v1alpha1.ConditionDiscoverySucceeded: metav1.ConditionTrue,
		}, map[string]string{v1alpha1.ConditionClientCredentialsValid: v1alpha1.ReasonSecretNotFound, v1alpha1.ConditionReady: v1alpha1.ReasonSecretNotFound})
		waitUpstreamServed(t, "idp-nosecret", false, nil)
		createUpstreamSecret(t, ns, "idp-later")
		waitUpstreamConditions(t, "idp-nosecret", map[string]metav1.ConditionStatus{
			v1alpha1.ConditionReady: metav1.ConditionTrue, v1alpha1.ConditionClientCredentialsValid: metav1.ConditionTrue,
		}, nil)
		waitUpstreamServed(t, "idp-nosecret", true, nil)
	})

	t.Run("workloadIdentity is served without a Secret, its token file named in ClientCredentialsValid", func(t *testing.T) {
		s := spec(iss.URL(), "")
		s.Client.SecretRef, s.Client.WorkloadIdentity = nil, &v1alpha1.UpstreamWorkloadIdentity{Audience: "idp"}
		createUpstream(t, "idp-wi", s)
		p := waitUpstreamConditions(t, "idp-wi", map[string]metav1.ConditionStatus{
			v1alpha1.ConditionReady: metav1.ConditionTrue, v1alpha1.ConditionClientCredentialsValid: metav1.ConditionTrue,
		}, map[string]string{v1alpha1.ConditionClientCredentialsValid: v1alpha1.ReasonWorkloadIdentity})
		assert.Equal(t, convert.DefaultUpstreamTokenPath, p.Spec.Client.WorkloadIdentity.TokenPath, "the CRD's default")
		cond := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionClientCredentialsValid)
		assert.Contains(t, cond.Message, convert.DefaultUpstreamTokenPath)
		waitUpstreamServed(t, "idp-wi", true, func(c *assert.CollectT, u *registry.UpstreamOIDC) {
			assert.Equal(c, convert.DefaultUpstreamTokenPath, u.AssertionFile)
			assert.Empty(c, u.ClientSecret)
		})
	})

	t.Run("a claim mapping that does not compile is InvalidSpec", func(t *testing.T) {
		s := spec(iss.URL(), "idp-good")
		s.Claims = &v1alpha1.ClaimMappings{Username: "claims.("}
		createUpstream(t, "idp-badcel", s)
		waitUpstreamConditions(t, "idp-badcel", map[string]metav1.ConditionStatus{v1alpha1.ConditionReady: metav1.ConditionFalse},
			map[string]string{v1alpha1.ConditionReady: v1alpha1.ReasonInvalidSpec})
	})
}

func TestOIDCIdentityProviderCRDValidation(t *testing.T) {
	ref := &v1alpha1.SecretKeyRef{Namespace: "default", Name: "x"}
	tests := []struct {
		name string
		spec v1alpha1.OIDCIdentityProviderSpec
		ok   bool
	}{
		{"an http issuer on loopback is accepted", v1alpha1.OIDCIdentityProviderSpec{Issuer: "http://127.0.0.1:5556/dex", Client: v1alpha1.UpstreamClient{ClientID: "c", SecretRef: ref}}, true},
		{"an http issuer elsewhere is refused", v1alpha1.OIDCIdentityProviderSpec{Issuer: "http://idp.example.com", Client: v1alpha1.UpstreamClient{ClientID: "c", SecretRef: ref}}, false},
		{"overriding state is refused", v1alpha1.OIDCIdentityProviderSpec{Issuer: "https://idp.example.com", Client: v1alpha1.UpstreamClient{ClientID: "c", SecretRef: ref},
			AdditionalAuthorizeParameters: map[string]string{"state": "x"}}, false},
		{"an extra prompt parameter is accepted", v1alpha1.OIDCIdentityProviderSpec{Issuer: "https://idp.example.com", Client: v1alpha1.UpstreamClient{ClientID: "c", SecretRef: ref},
			AdditionalAuthorizeParameters: map[string]string{"prompt": "login"}}, true},
		{"neither secretRef nor workloadIdentity is refused", v1alpha1.OIDCIdentityProviderSpec{Issuer: "https://idp.example.com", Client: v1alpha1.UpstreamClient{ClientID: "c"}}, false},
		{"a workloadIdentity with an absolute tokenPath is accepted", v1alpha1.OIDCIdentityProviderSpec{Issuer: "https://idp.example.com", Client: v1alpha1.UpstreamClient{ClientID: "c",
			WorkloadIdentity: &v1alpha1.UpstreamWorkloadIdentity{TokenPath: "/var/run/secrets/idp/token"}}}, true},
		{"a workloadIdentity with a relative tokenPath is refused", v1alpha1.OIDCIdentityProviderSpec{Issuer: "https://idp.example.com", Client: v1alpha1.UpstreamClient{ClientID: "c",
			WorkloadIdentity: &v1alpha1.UpstreamWorkloadIdentity{TokenPath: "token"}}}, false},
		{"both secretRef and workloadIdentity are refused", v1alpha1.OIDCIdentityProviderSpec{Issuer: "https://idp.example.com", Client: v1alpha1.UpstreamClient{ClientID: "c",
			SecretRef: ref, WorkloadIdentity: &v1alpha1.UpstreamWorkloadIdentity{}}}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &v1alpha1.OIDCIdentityProvider{ObjectMeta: metav1.ObjectMeta{Name: "crd-check-" + string(rune('a'+i))}, Spec: tt.spec}
			err := suite.client.Create(t.Context(), p, client.DryRunAll)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}
