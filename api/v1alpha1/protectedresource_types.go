package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SubjectTokenSource is a kind of subject token a client may exchange (RFC
// 8693): AccessToken, IDToken, ServiceAccountToken or WorkloadIssuer.
// +kubebuilder:validation:Enum=AccessToken;IDToken;ServiceAccountToken;WorkloadIssuer
type SubjectTokenSource string

// Subject token sources.
const (
	// SubjectTokenAccessToken is an access token Latchkey issued.
	SubjectTokenAccessToken SubjectTokenSource = "AccessToken"
	// SubjectTokenIDToken is an ID token Latchkey issued.
	SubjectTokenIDToken SubjectTokenSource = "IDToken"
	// SubjectTokenServiceAccountToken is a ServiceAccount token of the local
	// cluster.
	SubjectTokenServiceAccountToken SubjectTokenSource = "ServiceAccountToken"
	// SubjectTokenWorkloadIssuer is a JWT of a WorkloadIssuer.
	SubjectTokenWorkloadIssuer SubjectTokenSource = "WorkloadIssuer"
)

// ReasonAudienceConflict (a ProtectedResource's Ready=False): another
// ProtectedResource, created earlier, already holds this audience.
const ReasonAudienceConflict = "AudienceConflict"

// ProtectedResourceSpec declares a resource server: the audience of its
// tokens, the scopes it owns and which clients may get tokens for it.
type ProtectedResourceSpec struct {
	// audience is the resource's URI (RFC 8707): an absolute URI without a
	// fragment, e.g. https://payments.example.com. It is what a token's aud
	// claim names and what a request's resource parameter selects. Of the
	// ProtectedResources that claim an audience, the one created first holds
	// it; the others are not Ready (AudienceConflict).
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9+.-]*:[^#\s]+$`
	Audience string `json:"audience"`

	// scopes are the names of the Scopes (spec.name, e.g. read:payments) the
	// resource owns. When every resource a token is requested for owns scopes,
	// the token carries only the scopes they own (and the OIDC scopes). Empty:
	// the resource does not restrict scopes.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	Scopes []string `json:"scopes,omitempty"`

	// allowedClients are OAuthClients that may request tokens for the
	// audience (resource=<audience>), by namespace (default: the resource's)
	// and name.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	AllowedClients []ClientReference `json:"allowedClients,omitempty"`

	// allowedClientSelector also allows the OAuthClients of the resource's
	// namespace whose labels match it (a Kubernetes label selector). An empty
	// selector matches every OAuthClient of the namespace.
	// +optional
	AllowedClientSelector *ClientSelector `json:"allowedClientSelector,omitempty"`

	// tokenExchange says which clients may exchange tokens into the audience
	// (RFC 8693 token exchange).
	// +optional
	TokenExchange *TokenExchangePolicy `json:"tokenExchange,omitempty"`

	// metadata completes the resource's RFC 9728 protected resource metadata.
	// +optional
	Metadata *ProtectedResourceMetadata `json:"metadata,omitempty"`
}

// ClientReference names an OAuthClient.
type ClientReference struct {
	// namespace of the OAuthClient; default: the referring object's.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
	// name of the OAuthClient.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// ClientSelector selects OAuthClients by their labels, as a Kubernetes label
// selector (metav1.LabelSelector) does: every matchLabels entry and every
// matchExpressions requirement must hold.
type ClientSelector struct {
	// matchLabels: the label of each key must have the value.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
	// matchExpressions are label requirements that must all hold.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	MatchExpressions []ClientSelectorRequirement `json:"matchExpressions,omitempty"`
}

// ClientSelectorRequirement is one requirement on a label.
// +kubebuilder:validation:XValidation:rule="self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",message="values are required with In and NotIn and not allowed with Exists and DoesNotExist"
type ClientSelectorRequirement struct {
	// key is the label's key.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=317
	Key string `json:"key"`
	// operator relates the label to the values: In, NotIn, Exists or
	// DoesNotExist.
	// +required
	// +kubebuilder:validation:Enum=In;NotIn;Exists;DoesNotExist
	Operator string `json:"operator"`
	// values: at least one with In and NotIn, none with Exists and
	// DoesNotExist.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	Values []string `json:"values,omitempty"`
}

// TokenExchangePolicy lists who may exchange tokens into a resource.
type TokenExchangePolicy struct {
	// allowedRequesters are the clients that may exchange a subject token for
	// a token of this audience, each with the subject token sources it may
	// present.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	AllowedRequesters []ExchangeRequester `json:"allowedRequesters,omitempty"`
}

// ExchangeRequester is one client allowed to exchange tokens into a resource.
// +kubebuilder:validation:XValidation:rule="!has(self.workloadIssuers) || size(self.workloadIssuers) == 0 || self.subjectTokenSources.exists(s, s == 'WorkloadIssuer')",message="workloadIssuers needs WorkloadIssuer among subjectTokenSources"
type ExchangeRequester struct {
	// client is the OAuthClient that sends the exchange request.
	// +required
	Client ClientReference `json:"client"`
	// subjectTokenSources are the kinds of subject token it may exchange:
	// AccessToken, IDToken, ServiceAccountToken, WorkloadIssuer.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	SubjectTokenSources []SubjectTokenSource `json:"subjectTokenSources"`
	// workloadIssuers are the names of the WorkloadIssuers whose JWTs it may
	// exchange (with WorkloadIssuer among subjectTokenSources); empty: any.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	WorkloadIssuers []string `json:"workloadIssuers,omitempty"`
}

// ProtectedResourceMetadata are optional fields of the resource's RFC 9728
// metadata document.
type ProtectedResourceMetadata struct {
	// resourceName is a human-readable name of the resource (resource_name).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ResourceName string `json:"resourceName,omitempty"`
	// resourceDocumentation is an https URL of the resource's documentation
	// for developers (resource_documentation).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https://[^\s#]+$`
	ResourceDocumentation string `json:"resourceDocumentation,omitempty"`
	// bearerMethodsSupported are the ways the resource accepts an access
	// token (bearer_methods_supported): header, body, query. Default: header.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:items:Enum=header;body;query
	BearerMethodsSupported []string `json:"bearerMethodsSupported,omitempty"`
}

// ProtectedResourceStatus is what the controllers observed.
type ProtectedResourceStatus struct {
	// conditions: Ready (reasons Ready, AudienceConflict, InvalidSpec,
	// PolicyViolation); ScopesResolved (reasons Resolved, UnknownScope: an owned
	// scope no Scope defines; it does not gate Ready); Propagated (reasons
	// Propagated, Lagging, NoReplicas).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// clientsResolved is the number of OAuthClients allowed to request tokens
	// for the audience (named and selected, that exist).
	// +optional
	ClientsResolved int32 `json:"clientsResolved,omitempty"`
	// metadataConfigMap is the ConfigMap holding the resource's RFC 9728
	// metadata document (key oauth-protected-resource.json).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	MetadataConfigMap string `json:"metadataConfigMap,omitempty"`
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// served is how many live replicas serve the current generation, of how
	// many: "3/3" (the Propagated condition names the replicas that lag).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Served string `json:"served,omitempty"`
}

// ProtectedResource declares a resource server that accepts Latchkey's
// tokens: its audience, the scopes it owns, the clients that may request
// tokens for it and those that may exchange tokens into it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pr,categories=latchkey
// +kubebuilder:printcolumn:name="Audience",type=string,JSONPath=`.spec.audience`
// +kubebuilder:printcolumn:name="Clients",type=integer,JSONPath=`.status.clientsResolved`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Served",type=string,JSONPath=`.status.served`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ProtectedResource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired resource.
	// +required
	Spec ProtectedResourceSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status ProtectedResourceStatus `json:"status,omitempty"`
}

// ProtectedResourceList is a list of ProtectedResources.
// +kubebuilder:object:root=true
type ProtectedResourceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ProtectedResource `json:"items"`
}
