package controllers

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

// publicClient is a Public authorization_code client with the redirect URIs.
func publicClient(ns, name string, redirectURIs ...string) *v1alpha1.OAuthClient {
	return &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.OAuthClientSpec{
			Type:         v1alpha1.ClientTypePublic,
			GrantTypes:   []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode},
			RedirectURIs: redirectURIs,
		},
	}
}

func TestAPIServerRefusesRedirectURIsNamingThem(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name, uri, reason string
	}{
		{"user information is refused", "https://user:pw@example.com/cb", "must not contain user information"},
		{"a space is refused", "https://example.com/a b", "must not contain white space or control characters"},
		{"a no-break space is refused", "https://example.com/a\u00a0b", "must not contain white space or control characters"},
		{"a private-use scheme with nothing after it is refused", "com.example.app:", "must have something after the scheme"},
		{"https without a host is refused", "https:///cb", "https redirect URIs must name a host"},
		{"a look-alike loopback host is still refused", "http://localhost.evil.example/cb", "redirect URIs must be https"},
		{"a single-label private-use scheme is refused", "myapp:/cb", "a private-use scheme in reverse-domain form"},
		{"ws is refused", "ws://app.example/cb", "a private-use scheme in reverse-domain form"},
		{"a fragment is still refused", "https://app.example/cb#x", "must not contain a fragment"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oc := publicClient(ns, fmt.Sprintf("refused-%d", i), "https://app.example/ok", tt.uri)
			err := suite.client.Create(t.Context(), oc)
			require.Truef(t, apierrors.IsInvalid(err), "the API server must refuse %q: %v", tt.uri, err)
			assert.Contains(t, err.Error(), tt.reason)
			assert.Contains(t, err.Error(), `"`+tt.uri+`"`, "the message names the URI")
		})
	}
	t.Run("a valid URI of every kind is accepted", func(t *testing.T) {
		oc := publicClient(ns, "accepted", "https://app.example/cb?x=1", "http://127.0.0.1:8080/cb",
			"http://[::1]/cb", "http://localhost", "com.example.app:/oauth2redirect", "com.example.app://callback")
		require.NoError(t, suite.client.Create(t.Context(), oc))
		waitReady(t, client.ObjectKeyFromObject(oc), metav1.ConditionTrue, v1alpha1.ReasonReady)
	})
}

// TestRedirectURIsTheAPIServerLetThroughAreInvalidSpec covers what the CRD's CEL rules never saw:
// objects stored before a rule existed (the rules are dropped from the installed CRD for the
// update, then restored) and URIs CEL cannot check (a port net/url refuses).
func TestRedirectURIsTheAPIServerLetThroughAreInvalidSpec(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name, uri, reason string
		storedBeforeRule  bool
	}{
		{"user information stored before the rule existed", "https://user:pw@example.com/cb", "must not contain user information", true},
		{"a space stored before the rule existed", "https://example.com/a b", "must not contain white space or control characters", true},
		{"a port net/url refuses, which CEL cannot check", "https://app.example:port/cb", "must be an absolute URI", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			oc := publicClient(ns, fmt.Sprintf("stored-%d", i), "https://app.example/cb")
			require.NoError(t, suite.client.Create(ctx, oc))
			key := client.ObjectKeyFromObject(oc)
			id := oc.Name + "." + ns
			waitReady(t, key, metav1.ConditionTrue, v1alpha1.ReasonReady)
			waitServed(t, id, ns+"/"+oc.Name, nil)

			update := func(ctx context.Context) error {
				var cur v1alpha1.OAuthClient
				if err := suite.client.Get(ctx, key, &cur); err != nil {
					return err
				}
				cur.Spec.RedirectURIs = append(cur.Spec.RedirectURIs, tt.uri)
				return suite.client.Update(ctx, &cur)
			}
			if tt.storedBeforeRule {
				withoutRedirectURIRules(t, func() {
					require.EventuallyWithT(t, func(c *assert.CollectT) { assert.NoError(c, update(ctx)) }, waitFor, tick)
				})
				// The rule is back: a later spec change that leaves the URI alone is still allowed
				// (validation ratcheting), and the controller writes the status it describes.
				updateClient(t, key, func(oc *v1alpha1.OAuthClient) { oc.Spec.DisplayName = "changed after the rule came back" })
			} else {
				require.NoError(t, update(ctx))
			}

			got := waitReady(t, key, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec)
			require.Contains(t, got.Spec.RedirectURIs, tt.uri, "the API server stored the URI")
			msg := readyMessage(got)
			assert.Contains(t, msg, fmt.Sprintf("%q", tt.uri), "the condition names the URI")
			assert.Contains(t, msg, tt.reason)
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				for i, r := range suite.replicas {
					_, ok := r.registry.Snapshot().Client(id)
					assert.False(c, ok, "replica %d no longer serves %s", i, id)
				}
			}, waitFor, tick)
		})
	}
}

func readyMessage(oc *v1alpha1.OAuthClient) string {
	for _, c := range oc.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c.Message
		}
	}
	return ""
}

// oauthClientCRD is the name of the installed OAuthClient CRD.
const oauthClientCRD = "oauthclients.oauth.latchkey.dev"

// withoutRedirectURIRules runs do while the installed OAuthClient CRD has no CEL rules on
// redirect URIs, then restores the CRD and waits until the API server enforces its rules again.
func withoutRedirectURIRules(t *testing.T, do func()) {
	t.Helper()
	ctx := t.Context()
	s := runtime.NewScheme()
	require.NoError(t, apiextensionsv1.AddToScheme(s))
	c, err := client.New(suite.cfg, client.Options{Scheme: s})
	require.NoError(t, err)
	var crd apiextensionsv1.CustomResourceDefinition
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: oauthClientCRD}, &crd))
	original := crd.Spec.DeepCopy()
	restore := func(ctx context.Context) error {
		var cur apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, types.NamespacedName{Name: oauthClientCRD}, &cur); err != nil {
			return err
		}
		cur.Spec = *original.DeepCopy()
		return c.Update(ctx, &cur)
	}
	t.Cleanup(func() { _ = restore(context.Background()) }) // a failed test must not leave the rules off

	for i := range crd.Spec.Versions {
		redirect := crd.Spec.Versions[i].Schema.OpenAPIV3Schema.Properties["spec"].Properties["redirectURIs"]
		require.NotNil(t, redirect.Items, "redirectURIs has an items schema")
		redirect.XValidations = nil
		redirect.Items.Schema.XValidations = nil
		crd.Spec.Versions[i].Schema.OpenAPIV3Schema.Properties["spec"].Properties["redirectURIs"] = redirect
	}
	require.NoError(t, c.Update(ctx, &crd))
	do()

	require.NoError(t, restore(ctx))
	probe := publicClient("default", "redirect-rule-probe", "https://user:pw@example.com/cb")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		err := suite.client.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		assert.True(c, apierrors.IsInvalid(err), "the restored rules are enforced: %v", err)
	}, waitFor, tick)
}
