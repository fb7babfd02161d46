package controllers

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
)

// countingReader counts the requests that reach the API server's reader.
type countingReader struct {
	client.Reader
	calls int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.calls++
	return c.Reader.Get(ctx, key, obj, opts...)
}

func (c *countingReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	c.calls++
	return c.Reader.List(ctx, list, opts...)
}

func TestWatchedSecretsReadOnlyTheWatchedNamespaces(t *testing.T) {
	secret := func(ns string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"}}
	}
	for _, tc := range []struct {
		name      string
		get       string // namespace of a Get; "" for a List
		listIn    string // namespace of a List ("" lists across namespaces)
		wantFound bool
		wantErr   bool
		wantCalls int
	}{
		{name: "a Secret in a watched namespace is read", get: "team-a", wantFound: true, wantCalls: 1},
		{name: "a Secret in another namespace is missing without asking the API server", get: "team-b", wantCalls: 0},
		{name: "a list in a watched namespace is asked for", listIn: "team-a", wantCalls: 1},
		{name: "a list across namespaces is refused", listIn: "", wantErr: true},
		{name: "a list in another namespace is refused", listIn: "team-b", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &countingReader{Reader: fake.NewClientBuilder().WithObjects(secret("team-a"), secret("team-b")).Build()}
			r := watchedSecrets{reader: api, namespaces: []string{"team-a", "latchkey"}}
			if tc.get != "" {
				s, err := getSecret(t.Context(), r, tc.get, "s")
				require.NoError(t, err)
				assert.Equal(t, tc.wantFound, s != nil)
			} else {
				var list corev1.SecretList
				err := r.List(t.Context(), &list, client.InNamespace(tc.listIn))
				assert.Equal(t, tc.wantErr, err != nil, "%v", err)
			}
			assert.Equal(t, tc.wantCalls, api.calls)
		})
	}
}

func TestSecretNotFoundOutsideTheWatchedNamespacesSaysSo(t *testing.T) {
	watched := watchedSecrets{reader: fake.NewClientBuilder().Build(), namespaces: []string{"team-a"}}
	all := fake.NewClientBuilder().Build()
	issuer := func(ns string) *v1alpha1.WorkloadIssuer {
		return &v1alpha1.WorkloadIssuer{
			ObjectMeta: metav1.ObjectMeta{Name: "ci"},
			Spec: v1alpha1.WorkloadIssuerSpec{
				Issuer:            "https://ci.example.com",
				Audiences:         []string{"latchkey"},
				AllowedNamespaces: []string{"*"},
				JWKSSecretRef:     &v1alpha1.SecretKeyRef{Namespace: ns, Name: "ci-keys"},
			},
		}
	}
	for _, tc := range []struct {
		name    string
		reader  client.Reader
		ns      string
		wantMsg bool
	}{
		{"a key Secret in another namespace is not watched", watched, "team-b", true},
		{"a missing key Secret in a watched namespace is only missing", watched, "team-a", false},
		{"without --watch-namespaces every namespace is watched", all, "team-b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wi := issuer(tc.ns)
			s, err := issuerSecret(t.Context(), tc.reader, wi)
			require.NoError(t, err)
			_, err = convert.WorkloadIssuer(wi, s)
			err = explainUnwatchedIssuer(tc.reader, wi, err)
			require.ErrorIs(t, err, convert.ErrSecretNotFound)
			if tc.wantMsg {
				assert.Contains(t, err.Error(), "namespace "+tc.ns+" is not watched")
			} else {
				assert.NotContains(t, err.Error(), "not watched")
			}
		})
	}
}
