package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthenticationMethodClass groups the token endpoint authentication methods a
// policy allows.
// +kubebuilder:validation:Enum=secret;service_account_token;private_key_jwt
type AuthenticationMethodClass string

// Authentication method classes.
const (
	// AuthClassSecret: client_secret_basic and client_secret_post (a Confidential
	// client without tokenEndpointAuthMethod uses them).
	AuthClassSecret AuthenticationMethodClass = "secret"
	// AuthClassServiceAccountToken: service_account_token.
	AuthClassServiceAccountToken AuthenticationMethodClass = "service_account_token"
	// AuthClassPrivateKeyJWT: private_key_jwt.
	AuthClassPrivateKeyJWT AuthenticationMethodClass = "private_key_jwt"
)

// OAuthClientPolicySpec restricts the OAuthClients of the policy's namespace.
// Every field absent means no restriction; a client must satisfy every policy
// of its namespace (and the cluster's default policy, when the server names
// one).
type OAuthClientPolicySpec struct {
	// allowedGrantTypes are the grant types clients may use, each one of
	// authorization_code, client_credentials, refresh_token, password,
	// urn:ietf:params:oauth:grant-type:device_code and
	// urn:ietf:params:oauth:grant-type:token-exchange.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	AllowedGrantTypes []GrantType `json:"allowedGrantTypes,omitempty"`

	// allowedScopes are the scopes clients may request: exact names, or a prefix
	// followed by "*" (billing:* allows billing:read and billing:write; * allows
	// every scope).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:Pattern=`^[\x21\x23-\x29\x2B-\x5B\x5D-\x7E]*[*]?$`
	AllowedScopes []string `json:"allowedScopes,omitempty"`

	// allowedAudiences are the audiences clients may put in their tokens: exact
	// values, or a prefix followed by "*" (https://api.example.com/*). A client
	// without audiences (its tokens' audience is its own client ID) is always
	// allowed. The namespace's ProtectedResources are held to it too: one whose
	// spec.audience matches none is not served (PolicyViolation).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:XValidation:rule="!self.substring(0, size(self) - 1).contains('*')",message="a * may only end an audience pattern"
	AllowedAudiences []string `json:"allowedAudiences,omitempty"`

	// redirectURIHosts are the hosts clients' redirect URIs (and post-logout
	// redirect URIs) may name: exact host names (or IP addresses, written as in
	// the URI without brackets), or *.domain for any host under the domain (not
	// the domain itself). A redirect URI with a private-use scheme
	// (com.example.app:/cb) has no host: its scheme is matched instead. The host
	// of a client's backchannelLogoutURI must be allowed too.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^([*][.])?[A-Za-z0-9:_-]+([.][A-Za-z0-9:_-]+)*$`
	RedirectURIHosts []string `json:"redirectURIHosts,omitempty"`

	// maxLifetimes bound the clients' token lifetimes, in seconds. A client that
	// does not set a lifetime is held to the server's default (access and ID
	// tokens 3600, refresh tokens 2592000, authorization codes 600).
	// +optional
	MaxLifetimes *MaxTokenLifetimes `json:"maxLifetimes,omitempty"`

	// allowPublicClients false refuses clients of type Public.
	// +optional
	AllowPublicClients *bool `json:"allowPublicClients,omitempty"`

	// allowPasswordGrant false refuses clients with the password grant.
	// +optional
	AllowPasswordGrant *bool `json:"allowPasswordGrant,omitempty"`

	// allowDynamicRegistration false refuses dynamic client registration (RFC
	// 7591) into the namespace, and clients carrying the
	// oauth.latchkey.dev/registered label.
	// +optional
	AllowDynamicRegistration *bool `json:"allowDynamicRegistration,omitempty"`

	// allowedAuthenticationMethods are how Confidential clients may authenticate:
	// secret (client_secret_basic, client_secret_post), service_account_token,
	// private_key_jwt. Public clients (none) are governed by allowPublicClients.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=3
	AllowedAuthenticationMethods []AuthenticationMethodClass `json:"allowedAuthenticationMethods,omitempty"`
}

// MaxTokenLifetimes are upper bounds in seconds; absent means no bound.
type MaxTokenLifetimes struct {
	// accessToken bound in seconds.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	AccessToken *int32 `json:"accessToken,omitempty"`
	// refreshToken bound in seconds.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=31536000
	RefreshToken *int32 `json:"refreshToken,omitempty"`
	// idToken bound in seconds.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	IDToken *int32 `json:"idToken,omitempty"`
	// authorizationCode bound in seconds.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	AuthorizationCode *int32 `json:"authorizationCode,omitempty"`
}

// OAuthClientPolicyStatus is what the controllers observed.
type OAuthClientPolicyStatus struct {
	// conditions: Ready (reasons Ready, InvalidSpec) and Propagated (every live
	// replica applies the current generation to the clients of its namespace).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// served is how many live replicas apply the current generation, of how many:
	// "3/3" (the Propagated condition names the replicas that lag).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Served string `json:"served,omitempty"`
}

// OAuthClientPolicy restricts what the OAuthClients of its namespace may
// declare. The chart's ValidatingAdmissionPolicy refuses a violating
// OAuthClient when it is applied; the server does not serve one that violates
// a policy anyway (created before the policy, embedded mode, dynamic
// registration) and reports it Ready=False, reason PolicyViolation.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=oacp,categories=latchkey
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Served",type=string,JSONPath=`.status.served`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OAuthClientPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the policy.
	// +optional
	Spec OAuthClientPolicySpec `json:"spec,omitempty"`
	// status is the observed state.
	// +optional
	Status OAuthClientPolicyStatus `json:"status,omitempty"`
}

// OAuthClientPolicyList is a list of OAuthClientPolicies.
// +kubebuilder:object:root=true
type OAuthClientPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OAuthClientPolicy `json:"items"`
}
