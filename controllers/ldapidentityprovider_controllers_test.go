package controllers

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/internal/harness"
	"github.com/latchkey-dev/latchkey/internal/harness/oidcissuer"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// waitLDAPConditions waits until the provider's conditions have the statuses and reasons (by
// type) and describe its generation.
func waitLDAPConditions(t *testing.T, name string, want map[string]metav1.ConditionStatus, reasons map[string]string) *v1alpha1.LDAPIdentityProvider {
	t.Helper()
	var got *v1alpha1.LDAPIdentityProvider
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var p v1alpha1.LDAPIdentityProvider
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
		got = &p
	}, waitFor, tick)
	return got
}

func waitLDAPServed(t *testing.T, name string, want bool, check func(c *assert.CollectT, u *registry.UpstreamLDAP)) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i, r := range suite.replicas {
			u, ok := r.registry.Snapshot().UpstreamLDAP(name)
			if assert.Equal(c, want, ok, "replica %d serves %s", i, name) && ok && check != nil {
				check(c, u)
			}
		}
	}, waitFor, tick)
}

func TestLDAPIdentityProviderStatus(t *testing.T) {
	s := harness.NewSlapd(t)
	_, err := s.AddUser("svc", "svc-pw", "svc@example.com", "Service")
	require.NoError(t, err)
	ns := newNamespace(t)
	bind := func(name, password string) {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{
			"username": "uid=svc,ou=people," + harness.SlapdSuffix, "password": password}}
		require.NoError(t, suite.client.Create(t.Context(), sec))
	}
	spec := func(secret, ca string) v1alpha1.LDAPIdentityProviderSpec {
		return v1alpha1.LDAPIdentityProviderSpec{
			Host: s.Addr(), TLS: v1alpha1.LDAPTLS{Mode: v1alpha1.LDAPTLSModeStartTLS, CABundle: ca},
			Bind:        v1alpha1.LDAPBind{SecretRef: v1alpha1.SecretKeyRef{Namespace: ns, Name: secret}},
			UserSearch:  v1alpha1.LDAPUserSearch{Base: "ou=people," + harness.SlapdSuffix},
			GroupSearch: &v1alpha1.LDAPGroupSearch{Base: "ou=groups," + harness.SlapdSuffix},
			DisplayName: "Corp Directory",
		}
	}
	create := func(name string, sp v1alpha1.LDAPIdentityProviderSpec) {
		p := &v1alpha1.LDAPIdentityProvider{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: sp}
		require.NoError(t, suite.client.Create(t.Context(), p))
		t.Cleanup(func() { _ = suite.client.Delete(context.Background(), p) })
	}
	bind("ldap-good", "svc-pw")
	bind("ldap-wrong", "not-the-password")

	t.Run("a reachable directory with the right bind is Ready and served with the defaults", func(t *testing.T) {
		create("ldap-good", spec("ldap-good", string(s.CABundle())))
		waitLDAPConditions(t, "ldap-good", map[string]metav1.ConditionStatus{
			v1alpha1.ConditionConnectionProbe: metav1.ConditionTrue, v1alpha1.ConditionBindSucceeded: metav1.ConditionTrue,
			v1alpha1.ConditionReady: metav1.ConditionTrue,
		}, map[string]string{v1alpha1.ConditionBindSucceeded: v1alpha1.ReasonBound})
		waitLDAPServed(t, "ldap-good", true, func(c *assert.CollectT, u *registry.UpstreamLDAP) {
			assert.True(c, u.StartTLS)
			assert.Equal(c, "Corp Directory", u.DisplayName)
			assert.Equal(c, "(uid={})", u.UserFilter)
			assert.Equal(c, "entryUUID", u.UIDAttribute)
			assert.Equal(c, "(member={dn})", u.GroupFilter)
			assert.Equal(c, "svc-pw", u.BindPassword)
		})
		p := waitLDAPConditions(t, "ldap-good", map[string]metav1.ConditionStatus{v1alpha1.ConditionPropagated: metav1.ConditionTrue}, nil)
		assert.Equal(t, fmt.Sprintf("%d/%d", len(suite.replicas), len(suite.replicas)), p.Status.Served, "every replica serves it")
	})

	t.Run("a wrong bind password is shown in status", func(t *testing.T) {
		create("ldap-wrong", spec("ldap-wrong", string(s.CABundle())))
		p := waitLDAPConditions(t, "ldap-wrong", map[string]metav1.ConditionStatus{
			v1alpha1.ConditionConnectionProbe: metav1.ConditionTrue, v1alpha1.ConditionBindSucceeded: metav1.ConditionFalse,
			v1alpha1.ConditionReady: metav1.ConditionFalse,
		}, map[string]string{v1alpha1.ConditionBindSucceeded: v1alpha1.ReasonBindFailed, v1alpha1.ConditionReady: v1alpha1.ReasonBindFailed})
		for _, c := range p.Status.Conditions {
			assert.NotContains(t, c.Message, "not-the-password", "never the password")
		}
	})

	t.Run("a CA that did not sign the server's certificate fails the connection probe", func(t *testing.T) {
		create("ldap-ca", spec("ldap-good", oidcissuer.UnrelatedCABundle(t)))
		p := waitLDAPConditions(t, "ldap-ca", map[string]metav1.ConditionStatus{
			v1alpha1.ConditionConnectionProbe: metav1.ConditionFalse, v1alpha1.ConditionReady: metav1.ConditionFalse,
		}, map[string]string{v1alpha1.ConditionReady: v1alpha1.ReasonConnectionFailed})
		assert.Contains(t, meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionConnectionProbe).Message, "certificate")
	})

	t.Run("a missing bind Secret is SecretNotFound and not served", func(t *testing.T) {
		create("ldap-nosecret", spec("absent", string(s.CABundle())))
		waitLDAPConditions(t, "ldap-nosecret", map[string]metav1.ConditionStatus{
			v1alpha1.ConditionConnectionProbe: metav1.ConditionTrue, v1alpha1.ConditionBindSucceeded: metav1.ConditionFalse,
			v1alpha1.ConditionReady: metav1.ConditionFalse,
		}, map[string]string{v1alpha1.ConditionReady: v1alpha1.ReasonSecretNotFound})
		waitLDAPServed(t, "ldap-nosecret", false, nil)
	})

	t.Run("a filter that does not parse is InvalidSpec", func(t *testing.T) {
		sp := spec("ldap-good", string(s.CABundle()))
		sp.UserSearch.Filter = "(uid={}"
		create("ldap-badfilter", sp)
		waitLDAPConditions(t, "ldap-badfilter", map[string]metav1.ConditionStatus{v1alpha1.ConditionReady: metav1.ConditionFalse},
			map[string]string{v1alpha1.ConditionReady: v1alpha1.ReasonInvalidSpec})
		waitLDAPServed(t, "ldap-badfilter", false, nil)
	})

	t.Run("the API server refuses a filter without the placeholder and a plaintext mode", func(t *testing.T) {
		sp := spec("ldap-good", "")
		sp.UserSearch.Filter = "(uid=alice)"
		err := suite.client.Create(t.Context(), &v1alpha1.LDAPIdentityProvider{ObjectMeta: metav1.ObjectMeta{Name: "ldap-noplaceholder"}, Spec: sp})
		assert.ErrorContains(t, err, "placeholder")
		sp = spec("ldap-good", "")
		sp.TLS.Mode = "None"
		err = suite.client.Create(t.Context(), &v1alpha1.LDAPIdentityProvider{ObjectMeta: metav1.ObjectMeta{Name: "ldap-plain"}, Spec: sp})
		assert.ErrorContains(t, err, "Unsupported value")
	})
}
