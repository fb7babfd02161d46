package controllers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func waitGitHubConditions(t *testing.T, name string, want map[string]metav1.ConditionStatus, reasons map[string]string) *v1alpha1.GitHubIdentityProvider {
	t.Helper()
	var p v1alpha1.GitHubIdentityProvider
	require.EventuallyWithT(t, func(c *assert.CollectT) {
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
		assert.Equal(c, p.Generation, p.Status.ObservedGeneration)
	}, waitFor, tick)
	return &p
}

func waitGitHubServed(t *testing.T, name string, want bool, check func(c *assert.CollectT, u *registry.UpstreamGitHub)) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i, r := range suite.replicas {
			u, ok := r.registry.Snapshot().UpstreamGitHub(name)
			if assert.Equal(c, want, ok, "replica %d serves %s", i, name) && ok && check != nil {
				check(c, u)
			}
		}
	}, waitFor, tick)
}

func createGitHub(t *testing.T, name string, spec v1alpha1.GitHubIdentityProviderSpec) {
	t.Helper()
	p := &v1alpha1.GitHubIdentityProvider{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	require.NoError(t, suite.client.Create(t.Context(), p))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), p) })
}

func createGitHubSecret(t *testing.T, ns, name string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		StringData: map[string]string{"clientID": "Iv1.abc", "clientSecret": "s3cret"}}
	require.NoError(t, suite.client.Create(t.Context(), s))
}

func TestGitHubIdentityProviderStatus(t *testing.T) {
	ghes := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v3/meta" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"verifiable_password_authentication":false}`))
	}))
	t.Cleanup(ghes.Close)
	ns := newNamespace(t)
	spec := func(host, secret string) v1alpha1.GitHubIdentityProviderSpec {
		return v1alpha1.GitHubIdentityProviderSpec{
			Host: host, DisplayName: "GitHub Enterprise", AllowedOrganizations: []string{"acme"},
			Client: v1alpha1.GitHubClient{SecretRef: v1alpha1.GitHubSecretRef{Namespace: ns, Name: secret}},
		}
	}
	createGitHubSecret(t, ns, "gh-good")

	t.Run("a reachable host with its OAuth App credentials is Ready and served on every replica", func(t *testing.T) {
		createGitHub(t, "gh-good", spec(ghes.URL, "gh-good"))
		waitGitHubConditions(t, "gh-good", map[string]metav1.ConditionStatus{
			v1alpha1.ConditionReady: metav1.ConditionTrue, v1alpha1.ConditionHostReachable: metav1.ConditionTrue,
			v1alpha1.ConditionClientCredentialsValid: metav1.ConditionTrue,
		}, nil)
		waitGitHubServed(t, "gh-good", true, func(c *assert.CollectT, u *registry.UpstreamGitHub) {
			assert.Equal(c, "GitHub Enterprise", u.DisplayName)
			assert.Equal(c, "Iv1.abc", u.ClientID)
			assert.Equal(c, "s3cret", u.ClientSecret)
			assert.Equal(c, ghes.URL+"/api/v3", u.APIURL)
			assert.Equal(c, registry.GitHubTeamSlug, u.TeamsAsGroups, "the default")
			assert.NotEmpty(c, u.UID)
		})
		waitEvent(t, "", "gh-good", v1alpha1.ReasonReady)
		p := waitGitHubConditions(t, "gh-good", map[string]metav1.ConditionStatus{v1alpha1.ConditionPropagated: metav1.ConditionTrue}, nil)
		assert.Equal(t, fmt.Sprintf("%d/%d", len(suite.replicas), len(suite.replicas)), p.Status.Served, "every replica serves it")
	})

	t.Run("an unreachable host is served but not Ready", func(t *testing.T) {
		createGitHub(t, "gh-unreachable", spec("http://127.0.0.1:1", "gh-good"))
		waitGitHubConditions(t, "gh-unreachable", map[string]metav1.ConditionStatus{
			v1alpha1.ConditionReady: metav1.ConditionFalse, v1alpha1.ConditionHostReachable: metav1.ConditionFalse,
			v1alpha1.ConditionClientCredentialsValid: metav1.ConditionTrue,
		}, map[string]string{v1alpha1.ConditionReady: v1alpha1.ReasonHostUnreachable})
	})

	t.Run("a missing secret makes the credentials invalid and withdraws the provider until it exists", func(t *testing.T) {
		createGitHub(t, "gh-nosecret", spec(ghes.URL, "gh-later"))
		waitGitHubConditions(t, "gh-nosecret", map[string]metav1.ConditionStatus{
			v1alpha1.ConditionReady: metav1.ConditionFalse, v1alpha1.ConditionClientCredentialsValid: metav1.ConditionFalse,
		}, map[string]string{v1alpha1.ConditionClientCredentialsValid: v1alpha1.ReasonSecretNotFound})
		waitGitHubServed(t, "gh-nosecret", false, nil)
		createGitHubSecret(t, ns, "gh-later")
		waitGitHubConditions(t, "gh-nosecret", map[string]metav1.ConditionStatus{v1alpha1.ConditionReady: metav1.ConditionTrue}, nil)
		waitGitHubServed(t, "gh-nosecret", true, nil)
	})
}

func TestGitHubIdentityProviderCRDValidation(t *testing.T) {
	ref := v1alpha1.GitHubClient{SecretRef: v1alpha1.GitHubSecretRef{Namespace: "default", Name: "x"}}
	tests := []struct {
		name string
		spec v1alpha1.GitHubIdentityProviderSpec
		ok   bool
	}{
		{"allowed organizations on github.com are accepted", v1alpha1.GitHubIdentityProviderSpec{Client: ref, AllowedOrganizations: []string{"acme"}}, true},
		{"allowAllUsers alone is accepted", v1alpha1.GitHubIdentityProviderSpec{Client: ref, AllowAllUsers: true}, true},
		{"neither organizations nor allowAllUsers is refused", v1alpha1.GitHubIdentityProviderSpec{Client: ref}, false},
		{"both organizations and allowAllUsers are refused", v1alpha1.GitHubIdentityProviderSpec{Client: ref, AllowAllUsers: true, AllowedOrganizations: []string{"acme"}}, false},
		{"an Enterprise host is accepted", v1alpha1.GitHubIdentityProviderSpec{Host: "github.corp.example", Client: ref, AllowAllUsers: true}, true},
		{"an http host off loopback is refused", v1alpha1.GitHubIdentityProviderSpec{Host: "http://github.corp.example", Client: ref, AllowAllUsers: true}, false},
		{"teams as groups by anything but slug or name is refused", v1alpha1.GitHubIdentityProviderSpec{Client: ref, AllowAllUsers: true, TeamsAsGroups: "id"}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &v1alpha1.GitHubIdentityProvider{ObjectMeta: metav1.ObjectMeta{Name: "gh-crd-check-" + string(rune('a'+i))}, Spec: tt.spec}
			err := suite.client.Create(t.Context(), p, client.DryRunAll)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}
