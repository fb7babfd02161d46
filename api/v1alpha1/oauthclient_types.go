package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClientType says whether a client can keep a secret.
// +kubebuilder:validation:Enum=Confidential;Public
type ClientType string

// Client types.
const (
	ClientTypeConfidential ClientType = "Confidential"
	ClientTypePublic       ClientType = "Public"
)

// GrantType is an OAuth 2.0 grant type.
// +kubebuilder:validation:Enum=authorization_code;client_credentials;refresh_token;password
type GrantType string

// Grant types.
const (
	GrantTypeAuthorizationCode GrantType = "authorization_code"
	GrantTypeClientCredentials GrantType = "client_credentials"
	GrantTypeRefreshToken      GrantType = "refresh_token"
	GrantTypePassword          GrantType = "password"
)

// TokenEndpointAuthMethod is how a client authenticates at the token endpoint.
// +kubebuilder:validation:Enum=client_secret_basic;client_secret_post;none
type TokenEndpointAuthMethod string

// Token endpoint authentication methods.
const (
	AuthMethodClientSecretBasic TokenEndpointAuthMethod = "client_secret_basic"
	AuthMethodClientSecretPost  TokenEndpointAuthMethod = "client_secret_post"
	AuthMethodNone              TokenEndpointAuthMethod = "none"
)

// SecretPolicy says who provides a confidential client's Secret.
// +kubebuilder:validation:Enum=Generate;External
type SecretPolicy string

// Secret policies.
const (
	// SecretPolicyGenerate: the controller creates the Secret, owned by the OAuthClient.
	SecretPolicyGenerate SecretPolicy = "Generate"
	// SecretPolicyExternal: someone else creates the Secret; the controller waits for it.
	SecretPolicyExternal SecretPolicy = "External"
)

// SigningAlgorithm is a JWS algorithm Latchkey signs tokens with.
// +kubebuilder:validation:Enum=RS256;ES256;EdDSA
type SigningAlgorithm string

// Signing algorithms.
const (
	SigningRS256 SigningAlgorithm = "RS256"
	SigningES256 SigningAlgorithm = "ES256"
	SigningEdDSA SigningAlgorithm = "EdDSA"
)

// PKCEPolicy says when a client must use PKCE.
// +kubebuilder:validation:Enum=Required;RequiredS256;Optional
type PKCEPolicy string

// PKCE policies.
const (
	// PKCERequiredS256: code_challenge with S256 is required (the default).
	PKCERequiredS256 PKCEPolicy = "RequiredS256"
	// PKCERequired: code_challenge is required; plain is accepted.
	PKCERequired PKCEPolicy = "Required"
	// PKCEOptional: confidential clients may skip PKCE (public clients never may).
	PKCEOptional PKCEPolicy = "Optional"
)

// ConsentPolicy says when the consent page is shown.
// +kubebuilder:validation:Enum=Always;Remember;Skip
type ConsentPolicy string

// Consent policies.
const (
	ConsentAlways   ConsentPolicy = "Always"
	ConsentRemember ConsentPolicy = "Remember"
	ConsentSkip     ConsentPolicy = "Skip"
)

// TokenLifetimes are lifetimes in seconds; zero or absent means the server default.
type TokenLifetimes struct {
	// accessToken lifetime in seconds (default 3600).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	AccessToken int32 `json:"accessToken,omitempty"`
	// refreshToken lifetime in seconds (default 2592000, 30 days).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=31536000
	RefreshToken int32 `json:"refreshToken,omitempty"`
	// idToken lifetime in seconds (default 3600).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	IDToken int32 `json:"idToken,omitempty"`
	// authorizationCode lifetime in seconds (default 600).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	AuthorizationCode int32 `json:"authorizationCode,omitempty"`
}

// OAuthClientSpec is what a team declares about an OAuth client.
// +kubebuilder:validation:XValidation:rule="self.type != 'Public' || !self.grantTypes.exists(g, g == 'client_credentials')",message="a Public client must not use client_credentials"
// +kubebuilder:validation:XValidation:rule="self.type != 'Public' || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod == 'none'",message="a Public client authenticates with tokenEndpointAuthMethod none"
// +kubebuilder:validation:XValidation:rule="self.type != 'Confidential' || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'none'",message="a Confidential client must authenticate; tokenEndpointAuthMethod none is for Public clients"
// +kubebuilder:validation:XValidation:rule="!self.grantTypes.exists(g, g == 'authorization_code') || (has(self.redirectURIs) && size(self.redirectURIs) > 0)",message="authorization_code needs at least one redirectURI"
// +kubebuilder:validation:XValidation:rule="self.type != 'Public' || !has(self.secretRef)",message="a Public client has no secret; remove secretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.secretPolicy) || self.secretPolicy != 'External' || has(self.secretRef)",message="secretPolicy External needs secretRef"
// +kubebuilder:validation:XValidation:rule="has(oldSelf.clientID) == has(self.clientID) && (!has(self.clientID) || oldSelf.clientID == self.clientID)",message="clientID is immutable"
// +kubebuilder:validation:XValidation:rule="!has(self.allowedOrigins) || self.type == 'Public'",message="allowedOrigins (CORS) is for Public clients; a Confidential client calls the token endpoint from a server"
// +kubebuilder:validation:XValidation:rule="!has(self.introspection) || !self.introspection || self.type != 'Public'",message="a Public client cannot introspect tokens; introspection is for resource servers that authenticate"
type OAuthClientSpec struct {
	// clientID is the OAuth client_id. Defaults to <name>.<namespace>. Immutable and unique
	// across the cluster.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._:@-]*$`
	ClientID string `json:"clientID,omitempty"`

	// type is Confidential (can keep a secret) or Public (browser and mobile apps).
	// +optional
	// +kubebuilder:default=Confidential
	Type ClientType `json:"type,omitempty"`

	// grantTypes the client may use.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	GrantTypes []GrantType `json:"grantTypes"`

	// redirectURIs are the exact redirect URIs the client may use: https with a host; http only
	// on localhost, 127.0.0.1 or [::1]; or a private-use scheme in reverse-domain form (RFC 8252
	// 7.1, e.g. com.example.app:/cb). Every other scheme (ws, ftp, blob, about, single-label
	// schemes like myapp, ...) is refused. No fragment, user information, white space or control
	// characters. The API server checks what its rules can express; the controller checks the
	// rest and reports Ready=False with reason InvalidSpec.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:XValidation:rule="self.startsWith('https://') || self.matches('^http://(localhost|127[.]0[.]0[.]1|[[]::1[]])(:[0-9]+)?([/?].*)?$') || self.matches('^[a-z][a-z0-9-]*([.][a-z0-9-]+)+:')",message="redirect URIs must be https, http on a loopback host (localhost, 127.0.0.1, [::1]), or a private-use scheme in reverse-domain form (e.g. com.example.app:/cb)",messageExpression="'redirect URIs must be https, http on a loopback host (localhost, 127.0.0.1, [::1]), or a private-use scheme in reverse-domain form (e.g. com.example.app:/cb): \"' + self + '\"'"
	// +kubebuilder:validation:items:XValidation:rule="!self.contains('#')",message="redirect URIs must not contain a fragment",messageExpression="'redirect URIs must not contain a fragment: \"' + self + '\"'"
	// +kubebuilder:validation:items:XValidation:rule="!self.matches(r'[\\p{Cc}\\p{Z}]')",message="redirect URIs must not contain white space or control characters",messageExpression="'redirect URIs must not contain white space or control characters: \"' + self + '\"'"
	// +kubebuilder:validation:items:XValidation:rule="!self.matches('^[a-z][a-z0-9+.-]*://[^/?#]*@')",message="redirect URIs must not contain user information",messageExpression="'redirect URIs must not contain user information: \"' + self + '\"'"
	// +kubebuilder:validation:items:XValidation:rule="!self.matches('^[a-z][a-z0-9+.-]*:$')",message="redirect URIs must have something after the scheme (e.g. com.example.app:/cb)",messageExpression="'redirect URIs must have something after the scheme (e.g. com.example.app:/cb): \"' + self + '\"'"
	// +kubebuilder:validation:items:XValidation:rule="!self.startsWith('https://') || self.matches('^https://[^/?#:]')",message="https redirect URIs must name a host",messageExpression="'https redirect URIs must name a host: \"' + self + '\"'"
	RedirectURIs []string `json:"redirectURIs,omitempty"`

	// scopes the client may request. A requested scope must also exist as a Scope resource
	// (or be a built-in OIDC scope).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:Pattern=`^[\x21\x23-\x5B\x5D-\x7E]+$`
	Scopes []string `json:"scopes,omitempty"`

	// defaultScopes are granted when a request names no scope. Each must be in scopes.
	// When absent, the allowed scopes whose Scope resource says default are granted.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	DefaultScopes []string `json:"defaultScopes,omitempty"`

	// audiences are put in the aud claim of access tokens. Defaults to the client ID.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	Audiences []string `json:"audiences,omitempty"`

	// tokenEndpointAuthMethod is how the client authenticates, and when set the only method
	// accepted. Unset, a Confidential client may use client_secret_basic or client_secret_post;
	// a Public client is none.
	// +optional
	TokenEndpointAuthMethod TokenEndpointAuthMethod `json:"tokenEndpointAuthMethod,omitempty"`

	// secretPolicy is Generate (the controller creates the Secret) or External.
	// +optional
	// +kubebuilder:default=Generate
	SecretPolicy SecretPolicy `json:"secretPolicy,omitempty"`

	// secretRef names the Secret (in this namespace) and key holding the client secret.
	// Defaults to the Secret <name>-oauth-client, key client-secret.
	// +optional
	SecretRef *LocalSecretKeyRef `json:"secretRef,omitempty"`

	// lifetimes of the tokens issued to this client.
	// +optional
	Lifetimes *TokenLifetimes `json:"lifetimes,omitempty"`

	// signingAlgorithm overrides the server's default algorithm for this client's tokens.
	// +optional
	SigningAlgorithm SigningAlgorithm `json:"signingAlgorithm,omitempty"`

	// pkce policy for the authorization code grant. Defaults to RequiredS256.
	// +optional
	PKCE PKCEPolicy `json:"pkce,omitempty"`

	// consent policy for the authorization code grant. Defaults to Remember.
	// +optional
	Consent ConsentPolicy `json:"consent,omitempty"`

	// displayName is shown on the consent page.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName,omitempty"`

	// rateLimit bounds the token requests of this client, across all replicas; a Public
	// client's applies per client address, since anyone can name its client ID. Unset, the
	// server's default applies (latchkey serve --client-rate-limit; none by default).
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`

	// allowedOrigins are the browser origins (scheme://host[:port]) from which this Public
	// client may call the token, revocation and userinfo endpoints (CORS). Defaults to the
	// origins of its https and http redirect URIs.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:Pattern=`^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`

	// introspection declares the client a resource server that may introspect tokens (RFC
	// 7662) and see who they belong to. Off by default: other clients get invalid_client (or
	// active false for another client's token).
	// +optional
	Introspection bool `json:"introspection,omitempty"`
}

// RateLimit is a token-bucket limit on a client's token requests.
type RateLimit struct {
	// requestsPerMinute is the sustained rate.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=6000000
	RequestsPerMinute int32 `json:"requestsPerMinute"`
	// burst is how many requests may come at once above the sustained rate. Defaults to a
	// tenth of requestsPerMinute, at least 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Burst int32 `json:"burst,omitempty"`
}

// OAuthClientStatus is what the controllers observed.
type OAuthClientStatus struct {
	// conditions: Ready with reasons Ready, SecretNotFound, ClientIDConflict, InvalidSpec.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// clientID in effect.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ClientID string `json:"clientID,omitempty"`
	// secretName is the Secret the client secret is read from.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName,omitempty"`
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// OAuthClient declares an OAuth 2.0 client.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=oac,categories=latchkey
// +kubebuilder:printcolumn:name="ClientID",type=string,JSONPath=`.status.clientID`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OAuthClient struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired client.
	// +required
	Spec OAuthClientSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status OAuthClientStatus `json:"status,omitempty"`
}

// OAuthClientList is a list of OAuthClients.
// +kubebuilder:object:root=true
type OAuthClientList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OAuthClient `json:"items"`
}
