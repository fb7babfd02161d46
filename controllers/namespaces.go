package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
)

// watchedSecrets reads Secrets only in the watched namespaces (Options.WatchNamespaces): with
// namespaced RBAC the server may read nothing elsewhere, so a Secret in another namespace reads
// as missing without asking the API server, and a List must name a watched namespace.
type watchedSecrets struct {
	reader     client.Reader
	namespaces []string
}

var _ client.Reader = watchedSecrets{}

// Get reads key when its namespace is watched; otherwise it is NotFound.
func (w watchedSecrets) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if !slices.Contains(w.namespaces, key.Namespace) {
		return apierrors.NewNotFound(corev1.Resource("secrets"), key.Name)
	}
	return w.reader.Get(ctx, key, obj, opts...)
}

// List lists in one watched namespace; a list across namespaces, or in another one, is refused.
func (w watchedSecrets) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	var lo client.ListOptions
	lo.ApplyOptions(opts)
	if !slices.Contains(w.namespaces, lo.Namespace) {
		return fmt.Errorf("list %T in namespace %q: not a watched namespace", list, lo.Namespace)
	}
	return w.reader.List(ctx, list, opts...)
}

// namespaceWatched reports whether the Secrets reader r reads namespace.
func namespaceWatched(r client.Reader, namespace string) bool {
	w, ok := r.(watchedSecrets)
	return !ok || slices.Contains(w.namespaces, namespace)
}

// explainUnwatched adds to a SecretNotFound error about a Secret in namespace why it was not
// found when the server does not watch that namespace.
func explainUnwatched(r client.Reader, namespace string, err error) error {
	if err == nil || !errors.Is(err, convert.ErrSecretNotFound) || namespaceWatched(r, namespace) {
		return err
	}
	return fmt.Errorf("%w (namespace %s is not watched: with --watch-namespaces the server reads Secrets only in those namespaces and its own)", err, namespace)
}

// explainUnwatchedUser is explainUnwatched for the User's password Secret.
func explainUnwatchedUser(r client.Reader, u *v1alpha1.User, err error) error {
	ns, _, _, _ := convert.PasswordSecretRef(u)
	return explainUnwatched(r, ns, err)
}

// explainUnwatchedIssuer is explainUnwatched for the WorkloadIssuer's key Secret.
func explainUnwatchedIssuer(r client.Reader, wi *v1alpha1.WorkloadIssuer, err error) error {
	ns, _, _, _ := convert.IssuerKeySecretRef(wi)
	return explainUnwatched(r, ns, err)
}
