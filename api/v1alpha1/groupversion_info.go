package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of every type in this package.
var GroupVersion = schema.GroupVersion{Group: "oauth.latchkey.dev", Version: "v1alpha1"}

// AddToScheme adds the types of this group and version to a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&OAuthClient{}, &OAuthClientList{}, &Scope{}, &ScopeList{}, &User{}, &UserList{},
		&WorkloadIssuer{}, &WorkloadIssuerList{}, &OAuthClientPolicy{}, &OAuthClientPolicyList{},
		&OIDCIdentityProvider{}, &OIDCIdentityProviderList{}, &LDAPIdentityProvider{}, &LDAPIdentityProviderList{},
		&GitHubIdentityProvider{}, &GitHubIdentityProviderList{},
		&ProtectedResource{}, &ProtectedResourceList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
