package controllers

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
)

// A narrow unit test on the fake client: only it can make exactly the status patch fail.
func TestReadyEventsFollowTheStatusWrite(t *testing.T) {
	type reconciler interface {
		Reconcile(context.Context, ctrl.Request) (ctrl.Result, error)
	}
	kinds := []struct {
		name string
		obj  func() client.Object
		rec  func(c client.Client, rec events.EventRecorder) reconciler
	}{
		{"OAuthClient", func() client.Object {
			return &v1alpha1.OAuthClient{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "spa"},
				Spec: v1alpha1.OAuthClientSpec{Type: v1alpha1.ClientTypePublic,
					GrantTypes:   []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode},
					RedirectURIs: []string{"https://app.example/cb"}},
			}
		}, func(c client.Client, rec events.EventRecorder) reconciler {
			return &oauthClientReconciler{client: c, secrets: c, scheme: c.Scheme(), events: rec, policies: clientPolicies{reader: c}}
		}},
		{"OAuthClientPolicy", func() client.Object {
			return &v1alpha1.OAuthClientPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
				Spec: v1alpha1.OAuthClientPolicySpec{AllowedScopes: []string{"billing:*"}}}
		}, func(c client.Client, rec events.EventRecorder) reconciler {
			return &policyReconciler{client: c, events: rec}
		}},
		{"Scope", func() client.Object {
			return &v1alpha1.Scope{ObjectMeta: metav1.ObjectMeta{Name: "read"}, Spec: v1alpha1.ScopeSpec{Name: "read"}}
		}, func(c client.Client, rec events.EventRecorder) reconciler {
			return &scopeReconciler{client: c, events: rec}
		}},
		{"User", func() client.Object {
			return &v1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: "bob"}, Spec: v1alpha1.UserSpec{Username: "bob"}}
		}, func(c client.Client, rec events.EventRecorder) reconciler {
			return &userReconciler{client: c, secrets: c, events: rec}
		}},
	}
	tests := []struct {
		name       string
		failPatch  bool
		wantEvents int
	}{
		{"a Ready transition whose status patch failed emits no Event", true, 0},
		{"a Ready transition whose status patch succeeded emits one Event", false, 1},
	}
	for _, kind := range kinds {
		for _, tt := range tests {
			t.Run(kind.name+": "+tt.name, func(t *testing.T) {
				obj := kind.obj()
				b := fake.NewClientBuilder().WithScheme(suite.scheme).WithObjects(obj).WithStatusSubresource(obj)
				for _, fi := range fieldIndexes() {
					b = b.WithIndex(fi.obj, fi.field, fi.extract)
				}
				if tt.failPatch {
					b = b.WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(context.Context, client.Client, string,
						client.Object, client.Patch, ...client.SubResourcePatchOption) error {
						return errors.New("the API server is unavailable")
					}})
				}
				rec := events.NewFakeRecorder(10)
				_, err := kind.rec(b.Build(), rec).Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
				if tt.failPatch {
					require.Error(t, err, "the failed patch is retried")
				} else {
					require.NoError(t, err)
				}
				assert.Len(t, rec.Events, tt.wantEvents)
			})
		}
	}
}
