package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// GroupVersion is the group and version of every type in this package.
var GroupVersion = schema.GroupVersion{Group: "oauth.latchkey.dev", Version: "v1alpha1"}

// AddToScheme adds the types of this group and version to a scheme.
func AddToScheme(s *runtime.Scheme) error {
	b := &scheme.Builder{GroupVersion: GroupVersion}
	b.Register(&OAuthClient{}, &OAuthClientList{}, &Scope{}, &ScopeList{}, &User{}, &UserList{})
	return b.AddToScheme(s)
}
