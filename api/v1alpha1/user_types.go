package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// UserSpec describes a person who can log in.
type UserSpec struct {
	// username is what the person types on the login page; unique across the
	// cluster.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Username string `json:"username"`
	// email address.
	// +optional
	// +kubebuilder:validation:MaxLength=254
	Email string `json:"email,omitempty"`
	// emailVerified says whether the email address was verified.
	// +optional
	EmailVerified bool `json:"emailVerified,omitempty"`
	// displayName is the person's full name (the OIDC name claim).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	DisplayName string `json:"displayName,omitempty"`
	// groups the person belongs to.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	Groups []string `json:"groups,omitempty"`
	// passwordSecretRef names a Secret key holding a bcrypt or argon2id (PHC
	// string) hash of the password. Plaintext is refused. Key defaults to hash.
	// +optional
	PasswordSecretRef *SecretKeyRef `json:"passwordSecretRef,omitempty"`
	// disabled users cannot log in.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
}

// UserStatus is what the controllers observed.
type UserStatus struct {
	// conditions: Ready with reasons Ready, SecretNotFound, UsernameConflict,
	// InvalidSpec; Propagated (reasons Propagated, Lagging, NoReplicas).
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

// User declares a person who can log in through Latchkey.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=usr,categories=latchkey
// +kubebuilder:printcolumn:name="Username",type=string,JSONPath=`.spec.username`
// +kubebuilder:printcolumn:name="Email",type=string,JSONPath=`.spec.email`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Served",type=string,JSONPath=`.status.served`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type User struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the user.
	// +required
	Spec UserSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status UserStatus `json:"status,omitempty"`
}

// UserList is a list of Users.
// +kubebuilder:object:root=true
type UserList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []User `json:"items"`
}
