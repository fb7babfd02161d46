package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

func TestScopeIsServedAndReady(t *testing.T) {
	ctx := t.Context()
	sc := &v1alpha1.Scope{
		ObjectMeta: metav1.ObjectMeta{Name: "read-widgets"},
		Spec: v1alpha1.ScopeSpec{Name: "read:widgets", Description: "List widgets", Default: true,
			AllowedNamespaces: []string{"payments"}},
	}
	require.NoError(t, suite.client.Create(ctx, sc))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i, r := range suite.replicas {
			got, ok := r.registry.Snapshot().Scope("read:widgets")
			if assert.True(c, ok, "replica %d", i) {
				assert.Equal(c, "List widgets", got.Description)
				assert.True(c, got.Default)
				assert.True(c, got.AllowsNamespace("payments"))
				assert.False(c, got.AllowsNamespace("other"))
			}
		}
		var s v1alpha1.Scope
		if assert.NoError(c, suite.client.Get(ctx, client.ObjectKeyFromObject(sc), &s)) {
			assert.True(c, meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady))
			assert.Equal(c, s.Generation, s.Status.ObservedGeneration)
		}
	}, waitFor, tick)

	require.NoError(t, suite.client.Delete(ctx, sc))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, r := range suite.replicas {
			_, ok := r.registry.Snapshot().Scope("read:widgets")
			assert.False(c, ok)
		}
	}, waitFor, tick)
}

func TestUserIsServedWithItsPasswordHash(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	u := &v1alpha1.User{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-" + ns},
		Spec: v1alpha1.UserSpec{
			Username: "alice-" + ns, Email: "alice@example.com", EmailVerified: true, Groups: []string{"admins"},
			PasswordSecretRef: &v1alpha1.SecretKeyRef{Namespace: ns, Name: "alice-password"},
		},
	}
	require.NoError(t, suite.client.Create(ctx, u))
	t.Cleanup(func() { _ = suite.client.Delete(t.Context(), u) })
	waitUserReady(t, u, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)

	// The Secret appears later: the Secret watch brings the password in.
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), bcrypt.MinCost)
	require.NoError(t, err)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-password"},
		Data:       map[string][]byte{"hash": hash},
	}
	require.NoError(t, suite.client.Create(ctx, s))
	waitUserReady(t, u, metav1.ConditionTrue, v1alpha1.ReasonReady)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i, r := range suite.replicas {
			got, ok := r.registry.Snapshot().User("alice-" + ns)
			if !assert.True(c, ok, "replica %d", i) {
				continue
			}
			assert.Equal(c, "alice@example.com", got.Email)
			assert.Equal(c, []string{"admins"}, got.Groups)
			assert.NoError(c, bcrypt.CompareHashAndPassword(got.PasswordHash, []byte("correct horse battery staple")))
		}
	}, waitFor, tick)

	// Plaintext is refused: InvalidSpec, and the user leaves the registry.
	s.Data["hash"] = []byte("correct horse battery staple")
	require.NoError(t, suite.client.Update(ctx, s))
	cond := waitUserReady(t, u, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec)
	assert.NotContains(t, cond.Message, "correct horse")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, r := range suite.replicas {
			_, ok := r.registry.Snapshot().User("alice-" + ns)
			assert.False(c, ok)
		}
	}, waitFor, tick)
}

func TestRecreatedUserIsAnotherSubject(t *testing.T) {
	ctx := t.Context()
	name := "alice-" + newNamespace(t) // a unique name; Users are cluster-scoped
	newUser := func() *v1alpha1.User {
		return &v1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.UserSpec{Username: name}}
	}
	// servedWith waits until every replica serves the username under the subject.
	servedWith := func(subject string) {
		t.Helper()
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			for i, r := range suite.replicas {
				u, ok := r.registry.Snapshot().User(name)
				if assert.True(c, ok, "replica %d", i) {
					assert.Equal(c, subject, u.Subject, "replica %d", i)
				}
				_, ok = r.registry.Snapshot().UserBySubject(subject)
				assert.True(c, ok, "replica %d finds the user by its subject", i)
			}
		}, waitFor, tick)
	}

	first := newUser()
	require.NoError(t, suite.client.Create(ctx, first))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), first) })
	waitUserReady(t, first, metav1.ConditionTrue, v1alpha1.ReasonReady)
	require.NotEmpty(t, first.UID)
	servedWith(string(first.UID))

	require.NoError(t, suite.client.Delete(ctx, first))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		err := suite.client.Get(ctx, client.ObjectKeyFromObject(first), &v1alpha1.User{})
		assert.True(c, apierrors.IsNotFound(err), "the first User is gone: %v", err)
	}, waitFor, tick)

	second := newUser()
	require.NoError(t, suite.client.Create(ctx, second))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), second) })
	waitUserReady(t, second, metav1.ConditionTrue, v1alpha1.ReasonReady)
	require.NotEqual(t, first.UID, second.UID)
	servedWith(string(second.UID))
	for i, r := range suite.replicas {
		_, ok := r.registry.Snapshot().UserBySubject(string(first.UID))
		assert.False(t, ok, "replica %d no longer knows the first User's subject", i)
	}
}

func waitUserReady(t *testing.T, u *v1alpha1.User, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var cond *metav1.Condition
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var got v1alpha1.User
		if !assert.NoError(c, suite.client.Get(t.Context(), client.ObjectKeyFromObject(u), &got)) {
			return
		}
		cond = meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		if assert.NotNil(c, cond) {
			assert.Equal(c, status, cond.Status)
			assert.Equal(c, reason, cond.Reason, cond.Message)
			assert.Equal(c, got.Generation, got.Status.ObservedGeneration)
		}
	}, waitFor, tick)
	return cond
}

// createdAfter waits until the API server stamps a later creationTimestamp (whole seconds) than ts.
func createdAfter(ts metav1.Time) {
	time.Sleep(time.Until(ts.Add(time.Second)) + 10*time.Millisecond)
}

func TestUsernameConflict(t *testing.T) {
	ctx := t.Context()
	suffix := newNamespace(t) // a unique name; Users are cluster-scoped
	username := "alice-" + suffix
	// The first User has the larger resource name: only its creation time can make it win.
	first := &v1alpha1.User{
		ObjectMeta: metav1.ObjectMeta{Name: "zz-" + suffix},
		Spec:       v1alpha1.UserSpec{Username: username, Email: "alice@example.com"},
	}
	require.NoError(t, suite.client.Create(ctx, first))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), first) })
	waitUserReady(t, first, metav1.ConditionTrue, v1alpha1.ReasonReady)
	createdAfter(first.CreationTimestamp)

	second := &v1alpha1.User{
		ObjectMeta: metav1.ObjectMeta{Name: "aa-" + suffix},
		Spec:       v1alpha1.UserSpec{Username: username, Email: "mallory@example.com"},
	}
	require.NoError(t, suite.client.Create(ctx, second))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), second) })
	cond := waitUserReady(t, second, metav1.ConditionFalse, v1alpha1.ReasonUsernameConflict)
	assert.Contains(t, cond.Message, first.Name)
	waitEvent(t, metav1.NamespaceDefault, second.Name, v1alpha1.ReasonUsernameConflict)
	waitUserReady(t, first, metav1.ConditionTrue, v1alpha1.ReasonReady)

	// Every replica keeps serving the first; the later one never shadows it.
	servedBy := func(source string) func(c *assert.CollectT) {
		return func(c *assert.CollectT) {
			for i, r := range suite.replicas {
				u, ok := r.registry.Snapshot().User(username)
				if assert.True(c, ok, "replica %d", i) {
					assert.Equal(c, source, u.Source, "replica %d", i)
				}
			}
		}
	}
	require.EventuallyWithT(t, servedBy(first.Name), waitFor, tick)
	assert.Never(t, func() bool {
		for _, r := range suite.replicas {
			if u, ok := r.registry.Snapshot().User(username); ok && u.Source == second.Name {
				return true
			}
		}
		return false
	}, time.Second, tick)

	// The winner goes: the other one becomes Ready and is served.
	require.NoError(t, suite.client.Delete(ctx, first))
	waitUserReady(t, second, metav1.ConditionTrue, v1alpha1.ReasonReady)
	require.EventuallyWithT(t, servedBy(second.Name), waitFor, tick)
}

func TestScopeNameConflict(t *testing.T) {
	ctx := t.Context()
	suffix := newNamespace(t)
	name := "read:conflict-" + suffix
	first := &v1alpha1.Scope{
		ObjectMeta: metav1.ObjectMeta{Name: "zz-" + suffix},
		Spec:       v1alpha1.ScopeSpec{Name: name, Description: "the original"},
	}
	require.NoError(t, suite.client.Create(ctx, first))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), first) })
	waitScopeReady(t, first, metav1.ConditionTrue, v1alpha1.ReasonReady)
	createdAfter(first.CreationTimestamp)

	second := &v1alpha1.Scope{
		ObjectMeta: metav1.ObjectMeta{Name: "aa-" + suffix},
		Spec:       v1alpha1.ScopeSpec{Name: name, Description: "a redefinition", Default: true},
	}
	require.NoError(t, suite.client.Create(ctx, second))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), second) })
	cond := waitScopeReady(t, second, metav1.ConditionFalse, v1alpha1.ReasonScopeNameConflict)
	assert.Contains(t, cond.Message, first.Name)
	waitEvent(t, metav1.NamespaceDefault, second.Name, v1alpha1.ReasonScopeNameConflict)

	servedAs := func(desc string) func(c *assert.CollectT) {
		return func(c *assert.CollectT) {
			for i, r := range suite.replicas {
				sc, ok := r.registry.Snapshot().Scope(name)
				if assert.True(c, ok, "replica %d", i) {
					assert.Equal(c, desc, sc.Description, "replica %d", i)
				}
			}
		}
	}
	require.EventuallyWithT(t, servedAs("the original"), waitFor, tick)
	assert.Never(t, func() bool {
		for _, r := range suite.replicas {
			if sc, ok := r.registry.Snapshot().Scope(name); ok && sc.Description != "the original" {
				return true
			}
		}
		return false
	}, time.Second, tick)

	require.NoError(t, suite.client.Delete(ctx, first))
	waitScopeReady(t, second, metav1.ConditionTrue, v1alpha1.ReasonReady)
	require.EventuallyWithT(t, servedAs("a redefinition"), waitFor, tick)
}

func waitScopeReady(t *testing.T, s *v1alpha1.Scope, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var cond *metav1.Condition
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var got v1alpha1.Scope
		if !assert.NoError(c, suite.client.Get(t.Context(), client.ObjectKeyFromObject(s), &got)) {
			return
		}
		cond = meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		if assert.NotNil(c, cond) {
			assert.Equal(c, status, cond.Status)
			assert.Equal(c, reason, cond.Reason, cond.Message)
			assert.Equal(c, got.Generation, got.Status.ObservedGeneration)
		}
	}, waitFor, tick)
	return cond
}
