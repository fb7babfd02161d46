// Package v1alpha1 holds the Latchkey API types of the oauth.latchkey.dev group: OAuthClient
// (namespaced), Scope and User (cluster-scoped).
//
// It owns only types, validation markers and the scheme registration. It imports apimachinery and
// nothing of Latchkey's; controllers/ converts these types into the server's registry values.
//
// +kubebuilder:object:generate=true
// +groupName=oauth.latchkey.dev
package v1alpha1
