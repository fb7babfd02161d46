package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ScopeSpec describes one OAuth scope.
type ScopeSpec struct {
	// name is the scope string clients request, e.g. read:projects.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[\x21\x23-\x5B\x5D-\x7E]+$`
	Name string `json:"name"`
	// description is shown on the consent page.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Description string `json:"description,omitempty"`
	// claims are the OIDC claims this scope releases in ID tokens and userinfo.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=64
	Claims []string `json:"claims,omitempty"`
	// default scopes are granted when a client asks for none and is allowed this
	// scope.
	// +optional
	Default bool `json:"default,omitempty"`
	// allowedNamespaces limits which namespaces' clients may request the scope;
	// empty means all.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	AllowedNamespaces []string `json:"allowedNamespaces,omitempty"`
}

// ScopeStatus is what the controllers observed.
type ScopeStatus struct {
	// conditions: Ready with reasons Ready, ScopeNameConflict, InvalidSpec;
	// Propagated (reasons Propagated, Lagging, NoReplicas).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// served is how many live replicas serve the current generation, of how many:
	// "3/3" (the Propagated condition names the replicas that lag).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Served string `json:"served,omitempty"`
}

// Scope declares an OAuth scope clients may request.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=scp,categories=latchkey
// +kubebuilder:printcolumn:name="Scope",type=string,JSONPath=`.spec.name`
// +kubebuilder:printcolumn:name="Default",type=boolean,JSONPath=`.spec.default`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Served",type=string,JSONPath=`.status.served`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Scope struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the scope.
	// +required
	Spec ScopeSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status ScopeStatus `json:"status,omitempty"`
}

// ScopeList is a list of Scopes.
// +kubebuilder:object:root=true
type ScopeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Scope `json:"items"`
}
