package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types and reasons of the identity provider kinds.
const (
	// ConditionDiscoverySucceeded is True when the upstream's OIDC discovery
	// document was fetched and names the provider's issuer.
	ConditionDiscoverySucceeded = "DiscoverySucceeded"
	// ConditionClientCredentialsValid is True when the client secret the
	// provider names exists and holds its key.
	ConditionClientCredentialsValid = "ClientCredentialsValid"
	// ReasonDiscovered (DiscoverySucceeded=True): the discovery document was
	// fetched and checked.
	ReasonDiscovered = "Discovered"
	// ReasonCredentialsFound (ClientCredentialsValid=True): the Secret and its
	// key exist.
	ReasonCredentialsFound = "CredentialsFound"
	// ReasonWorkloadIdentity (ClientCredentialsValid=True): the client
	// authenticates with a projected ServiceAccount token file, read by the
	// server at each use (the controller may run in another pod).
	ReasonWorkloadIdentity = "WorkloadIdentity"
)

// OIDCIdentityProviderSpec describes an upstream OpenID Connect provider that
// users sign in with.
// +kubebuilder:validation:XValidation:rule="self.issuer.startsWith('https://') || self.issuer.matches('^http://(localhost|127[.]0[.]0[.]1|[[]::1[]])(:[0-9]+)?(/.*)?$')",message="issuer must be https; http only on a loopback host (localhost, 127.0.0.1, [::1])"
type OIDCIdentityProviderSpec struct {
	// issuer is the upstream's issuer URL, the exact iss of its ID tokens; its
	// discovery document is <issuer>/.well-known/openid-configuration. It must
	// be https; http is allowed only on a loopback host (localhost, 127.0.0.1,
	// [::1]), for tests and local development.
	// +required
	// +kubebuilder:validation:MinLength=8
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^/?#@\s]+(/[^?#\s]*)?$`
	Issuer string `json:"issuer"`

	// caBundle is the PEM bundle of the certificate authorities trusted for
	// the upstream's endpoints; absent, the system's roots.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	CABundle string `json:"caBundle,omitempty"`

	// client is how Latchkey authenticates to the upstream.
	// +required
	Client UpstreamClient `json:"client"`

	// scopes requested upstream; default openid, email, profile. openid is
	// always requested.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern=`^[\x21\x23-\x5B\x5D-\x7E]+$`
	Scopes []string `json:"scopes,omitempty"`

	// additionalAuthorizeParameters are added to the upstream authorization
	// request (e.g. prompt, hd, acr_values). The parameters Latchkey sets
	// itself (response_type, client_id, redirect_uri, scope, state, nonce,
	// code_challenge, code_challenge_method, request, request_uri) cannot be
	// overridden.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k in ['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'request', 'request_uri']))",message="additionalAuthorizeParameters cannot set response_type, client_id, redirect_uri, scope, state, nonce, code_challenge, code_challenge_method, request or request_uri"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) > 0 && size(k) <= 64 && size(self[k]) <= 1024)",message="additionalAuthorizeParameters names have 1 to 64 characters, values at most 1024"
	AdditionalAuthorizeParameters map[string]string `json:"additionalAuthorizeParameters,omitempty"`

	// claims maps the upstream's claims to the user's; each is a CEL
	// expression over the variable claims (the ID token's claims, with the
	// userinfo endpoint's added where the ID token lacks them).
	// +optional
	Claims *ClaimMappings `json:"claims,omitempty"`

	// claimValidationRules are CEL expressions over claims that must all be
	// true for a sign-in to succeed; message is shown to the user otherwise.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	ClaimValidationRules []ClaimValidationRule `json:"claimValidationRules,omitempty"`

	// allowPolicy is a CEL expression over claims and user (the mapped
	// username, groups, email, emailVerified, name) that must be true for the
	// user to sign in, e.g. "'admins' in user.groups". Absent: everyone the
	// upstream authenticates (and the validation rules accept) may sign in.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	AllowPolicy string `json:"allowPolicy,omitempty"`

	// displayName is the button label on the login page ("Sign in with
	// <displayName>"); default the resource's name.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	DisplayName string `json:"displayName,omitempty"`
}

// UpstreamClient is Latchkey's client registration at an upstream provider.
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) != has(self.workloadIdentity)",message="set exactly one of secretRef and workloadIdentity"
type UpstreamClient struct {
	// clientID is Latchkey's client ID at the upstream.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	ClientID string `json:"clientID"`

	// secretRef names the Secret key holding the client secret (sent with
	// client_secret_basic).
	// +optional
	SecretRef *SecretKeyRef `json:"secretRef,omitempty"`

	// workloadIdentity authenticates with Latchkey's own projected
	// ServiceAccount token, sent as an RFC 7523 client assertion
	// (client_assertion_type
	// urn:ietf:params:oauth:client-assertion-type:jwt-bearer) where the
	// upstream accepts it; no client secret is sent.
	// +optional
	WorkloadIdentity *UpstreamWorkloadIdentity `json:"workloadIdentity,omitempty"`
}

// UpstreamWorkloadIdentity is a projected ServiceAccount token presented to
// the upstream as a client assertion.
type UpstreamWorkloadIdentity struct {
	// tokenPath is the absolute path of the token file in Latchkey's server
	// pod, read again at every upstream token request (the kubelet rotates
	// it); default /var/run/secrets/tokens/latchkey-upstream, where the
	// chart's upstream.workloadIdentityToken values mount it.
	// +optional
	// +kubebuilder:default="/var/run/secrets/tokens/latchkey-upstream"
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	TokenPath string `json:"tokenPath,omitempty"`
	// audience the upstream expects in the token. Documentation only: the
	// audience is set where the token is projected (the chart's
	// upstream.workloadIdentityToken.audience).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Audience string `json:"audience,omitempty"`
}

// ClaimMappings are CEL expressions over the upstream's claims (the variable
// claims) that give the user's identity.
type ClaimMappings struct {
	// username (a string); default claims.email if present, else
	// claims.preferred_username, else claims.sub.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Username string `json:"username,omitempty"`
	// groups (a list of strings, or one string); default claims.groups if it
	// is present, else none.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Groups string `json:"groups,omitempty"`
	// email (a string); default claims.email if present.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Email string `json:"email,omitempty"`
	// emailVerified (a bool); default claims.email_verified if present, else
	// false.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	EmailVerified string `json:"emailVerified,omitempty"`
	// name, the display name (a string); default claims.name if present.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Name string `json:"name,omitempty"`
}

// OIDCIdentityProviderStatus is what the controllers observed.
type OIDCIdentityProviderStatus struct {
	// conditions: DiscoverySucceeded (reasons Discovered, DiscoveryFailed);
	// ClientCredentialsValid (reasons CredentialsFound, WorkloadIdentity,
	// SecretNotFound); Ready (reasons Ready, InvalidSpec, DiscoveryFailed,
	// SecretNotFound); Propagated (reasons Propagated, Lagging,
	// NoReplicas).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// served is how many live replicas serve the current generation, of how
	// many: "3/3" (the Propagated condition names the replicas that lag).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Served string `json:"served,omitempty"`
}

// OIDCIdentityProvider is an upstream OpenID Connect provider whose users can
// sign in to Latchkey's clients.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=oidcidp,categories=latchkey
// +kubebuilder:printcolumn:name="Issuer",type=string,JSONPath=`.spec.issuer`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Served",type=string,JSONPath=`.status.served`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OIDCIdentityProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired provider.
	// +required
	Spec OIDCIdentityProviderSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status OIDCIdentityProviderStatus `json:"status,omitempty"`
}

// OIDCIdentityProviderList is a list of OIDCIdentityProviders.
// +kubebuilder:object:root=true
type OIDCIdentityProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OIDCIdentityProvider `json:"items"`
}
