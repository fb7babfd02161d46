package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkloadIssuerSpec says which tokens of a workload identity issuer Latchkey
// trusts as client assertions, and for which namespaces' clients.
// +kubebuilder:validation:XValidation:rule="!(has(self.jwksURI) && has(self.jwksSecretRef))",message="keys come from one place: jwksURI, jwksSecretRef, or (neither) the issuer's OIDC discovery"
type WorkloadIssuerSpec struct {
	// issuer is the exact iss claim of the tokens, an https URL. Unless jwksURI or
	// jwksSecretRef says otherwise, keys are found by OIDC discovery at
	// <issuer>/.well-known/openid-configuration.
	// +required
	// +kubebuilder:validation:MinLength=9
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https://[^/?#@\s]+(/[^?#\s]*)?$`
	Issuer string `json:"issuer"`

	// jwksURI is an https URL serving the issuer's JWK set, used instead of
	// discovery.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https://[^/?#@\s]+(/[^#\s]*)?$`
	JWKSURI string `json:"jwksURI,omitempty"`

	// jwksSecretRef names a Secret (and key, default jwks.json) holding the
	// issuer's JWK set, for issuers that publish no endpoint Latchkey can reach.
	// +optional
	JWKSSecretRef *SecretKeyRef `json:"jwksSecretRef,omitempty"`

	// caBundle is the PEM bundle of the certificate authorities that sign the
	// discovery and JWKS endpoints' certificates; absent, the system's roots.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	CABundle string `json:"caBundle,omitempty"`

	// audiences: a token's aud must contain one of them. Usually Latchkey's issuer
	// URL.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	Audiences []string `json:"audiences"`

	// allowedNamespaces are the namespaces whose OAuthClients may bind to this
	// issuer (spec.workloadIdentity); "*" allows every namespace.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	AllowedNamespaces []string `json:"allowedNamespaces"`

	// claimValidationRules are CEL expressions over the token's claims (the
	// variable claims), as in the API server's structured authentication
	// configuration; each must be true.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	ClaimValidationRules []ClaimValidationRule `json:"claimValidationRules,omitempty"`

	// maxAssertionLifetime bounds the time between a token's iat and exp (default
	// 1h, at most 24h).
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('24h')",message="maxAssertionLifetime must be more than 0s and at most 24h"
	MaxAssertionLifetime *metav1.Duration `json:"maxAssertionLifetime,omitempty"`

	// refreshPeriod is how often the keys are fetched again (default 1h, between
	// 1m and 24h); a token with an unknown key ID makes Latchkey fetch them at
	// once (at most every 10 s).
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('24h')",message="refreshPeriod must be between 1m and 24h"
	RefreshPeriod *metav1.Duration `json:"refreshPeriod,omitempty"`
}

// ClaimValidationRule is one CEL rule on a token's claims.
type ClaimValidationRule struct {
	// expression is a CEL expression over claims that must evaluate to true, e.g.
	// claims.repository_owner == 'example'.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Expression string `json:"expression"`
	// message is the reason given when the expression is false.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Message string `json:"message,omitempty"`
}

// WorkloadIssuerStatus is what the controllers observed.
type WorkloadIssuerStatus struct {
	// conditions: Ready (reasons Ready, DiscoveryFailed, KeysUnavailable,
	// InvalidSpec, SecretNotFound); Propagated (reasons Propagated, Lagging,
	// NoReplicas).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// jwksURI in use (from the spec or discovery).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	JWKSURI string `json:"jwksURI,omitempty"`
	// keyCount is the number of keys loaded.
	// +optional
	KeyCount int32 `json:"keyCount,omitempty"`
	// lastRefreshTime is when the keys were last fetched successfully.
	// +optional
	LastRefreshTime *metav1.Time `json:"lastRefreshTime,omitempty"`
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// served is how many live replicas serve the current generation, of how many:
	// "3/3" (the Propagated condition names the replicas that lag).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Served string `json:"served,omitempty"`
}

// WorkloadIssuer declares an issuer of workload identity tokens (another
// cluster, SPIFFE, a CI system) whose tokens authenticate the OAuthClients
// bound to its subjects.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=wli,categories=latchkey
// +kubebuilder:printcolumn:name="Issuer",type=string,JSONPath=`.spec.issuer`
// +kubebuilder:printcolumn:name="Keys",type=integer,JSONPath=`.status.keyCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Served",type=string,JSONPath=`.status.served`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WorkloadIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired issuer.
	// +required
	Spec WorkloadIssuerSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status WorkloadIssuerStatus `json:"status,omitempty"`
}

// WorkloadIssuerList is a list of WorkloadIssuers.
// +kubebuilder:object:root=true
type WorkloadIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkloadIssuer `json:"items"`
}
