package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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
// +kubebuilder:validation:Enum=authorization_code;client_credentials;refresh_token;password;"urn:ietf:params:oauth:grant-type:device_code";"urn:ietf:params:oauth:grant-type:token-exchange"
type GrantType string

// Grant types.
const (
	GrantTypeAuthorizationCode GrantType = "authorization_code"
	GrantTypeClientCredentials GrantType = "client_credentials"
	GrantTypeRefreshToken      GrantType = "refresh_token"
	GrantTypePassword          GrantType = "password"
	// GrantTypeDeviceCode is the device authorization grant (RFC 8628).
	GrantTypeDeviceCode GrantType = "urn:ietf:params:oauth:grant-type:device_code"
	// GrantTypeTokenExchange is token exchange (RFC 8693), for Confidential
	// clients that a ProtectedResource lists in tokenExchange.allowedRequesters.
	GrantTypeTokenExchange GrantType = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// TokenEndpointAuthMethod is how a client authenticates at the token endpoint.
// +kubebuilder:validation:Enum=client_secret_basic;client_secret_post;none;service_account_token;private_key_jwt
type TokenEndpointAuthMethod string

// Token endpoint authentication methods.
const (
	AuthMethodClientSecretBasic TokenEndpointAuthMethod = "client_secret_basic"
	AuthMethodClientSecretPost  TokenEndpointAuthMethod = "client_secret_post"
	AuthMethodNone              TokenEndpointAuthMethod = "none"
	// AuthMethodServiceAccountToken: the client sends a token of its workload
	// identity as a JWT-bearer client assertion (RFC 7523 2.2): a projected
	// ServiceAccount token (spec.serviceAccount) or a token of a WorkloadIssuer
	// (spec.workloadIdentity).
	AuthMethodServiceAccountToken TokenEndpointAuthMethod = "service_account_token"
	// AuthMethodPrivateKeyJWT: the client signs a JWT-bearer client assertion with
	// its own key (RFC 7523 2.2, OpenID Connect Core 9); spec.jwks, jwksSecretRef,
	// jwksURI or keyPolicy Generate say which public keys verify it.
	AuthMethodPrivateKeyJWT TokenEndpointAuthMethod = "private_key_jwt"
)

// KeyPolicy says who provides the key pair of a private_key_jwt client.
// +kubebuilder:validation:Enum=Generate;External
type KeyPolicy string

// Key policies.
const (
	// KeyPolicyGenerate: the controller creates an EC P-256 key pair in a Secret
	// of the client's namespace (private key for the workload to mount, public
	// keys for Latchkey) and rotates it on demand, keeping the previous public key
	// for the rotation's grace period.
	KeyPolicyGenerate KeyPolicy = "Generate"
	// KeyPolicyExternal: the client's owner provides the public keys (jwks,
	// jwksSecretRef or jwksURI).
	KeyPolicyExternal KeyPolicy = "External"
)

// SecretPolicy says who provides a confidential client's Secret.
// +kubebuilder:validation:Enum=Generate;External
type SecretPolicy string

// Secret policies.
const (
	// SecretPolicyGenerate: the controller creates the Secret, owned by the
	// OAuthClient.
	SecretPolicyGenerate SecretPolicy = "Generate"
	// SecretPolicyExternal: someone else creates the Secret; the controller waits
	// for it.
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

// DPoPPolicy says whether a client's tokens are bound to a DPoP key (RFC 9449).
// +kubebuilder:validation:Enum=Required;Optional;Disabled
type DPoPPolicy string

// DPoP policies.
const (
	// DPoPRequired: every token request needs a DPoP proof; all tokens are bound.
	DPoPRequired DPoPPolicy = "Required"
	// DPoPOptional: a token request with a proof gets bound tokens, one without
	// gets Bearer tokens (the default).
	DPoPOptional DPoPPolicy = "Optional"
	// DPoPDisabled: DPoP headers are ignored; tokens are always Bearer tokens.
	DPoPDisabled DPoPPolicy = "Disabled"
)

// ConsentPolicy says when the consent page is shown.
// +kubebuilder:validation:Enum=Always;Remember;Skip
type ConsentPolicy string

// LogoutPolicy says what ending an OP session does for a client.
type LogoutPolicy struct {
	// revokeRefreshTokens: true revokes the refresh tokens (and their access
	// tokens) that this client got through the OP session when the session ends;
	// false (the default) keeps them: offline access outlives the browser session.
	// +optional
	RevokeRefreshTokens bool `json:"revokeRefreshTokens,omitempty"`
}

// Consent policies.
const (
	ConsentAlways   ConsentPolicy = "Always"
	ConsentRemember ConsentPolicy = "Remember"
	ConsentSkip     ConsentPolicy = "Skip"
)

// TokenLifetimes are the lifetimes of the tokens issued to a client; absent
// means the server default. Each is integer seconds (a JSON number: 3600) or a
// duration string (a JSON string: "1h", "90m"); a quoted number such as "3600"
// is not a duration and is refused.
type TokenLifetimes struct {
	// accessToken lifetime (default 1h): integer seconds or a duration string such
	// as 30m or 1h (units ns, us, ms, s, m, h); at least 1s, at most 24h.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 1 && self <= 86400) : (self.matches('^([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('24h'))",message="accessToken must be integer seconds from 1 to 86400 or a duration from 1s to 24h (e.g. 30m, 1h)"
	AccessToken *intstr.IntOrString `json:"accessToken,omitempty"`
	// refreshToken lifetime (default 720h, 30 days): integer seconds or a duration
	// string such as 30m or 1h (units ns, us, ms, s, m, h); at least 1s, at most
	// 8760h, 365 days.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 1 && self <= 31536000) : (self.matches('^([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('8760h'))",message="refreshToken must be integer seconds from 1 to 31536000 or a duration from 1s to 8760h (e.g. 30m, 1h)"
	RefreshToken *intstr.IntOrString `json:"refreshToken,omitempty"`
	// idToken lifetime (default 1h): integer seconds or a duration string such as
	// 30m or 1h (units ns, us, ms, s, m, h); at least 1s, at most 24h.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 1 && self <= 86400) : (self.matches('^([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('24h'))",message="idToken must be integer seconds from 1 to 86400 or a duration from 1s to 24h (e.g. 30m, 1h)"
	IDToken *intstr.IntOrString `json:"idToken,omitempty"`
	// authorizationCode lifetime (default 10m): integer seconds or a duration
	// string such as 30m or 1h (units ns, us, ms, s, m, h); at least 1s, at most
	// 1h.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 1 && self <= 3600) : (self.matches('^([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('1h'))",message="authorizationCode must be integer seconds from 1 to 3600 or a duration from 1s to 1h (e.g. 30m, 1h)"
	AuthorizationCode *intstr.IntOrString `json:"authorizationCode,omitempty"`
	// accessTokenOutlivesAssertion lets an access token obtained with a client
	// assertion (service_account_token, private_key_jwt) live its full lifetime;
	// by default it expires no later than the assertion.
	// +optional
	AccessTokenOutlivesAssertion bool `json:"accessTokenOutlivesAssertion,omitempty"`
}

// OAuthClientSpec is what a team declares about an OAuth client.
// +kubebuilder:validation:XValidation:rule="self.type != 'Public' || !self.grantTypes.exists(g, g == 'client_credentials')",message="a Public client must not use client_credentials"
// +kubebuilder:validation:XValidation:rule="self.type != 'Public' || !self.grantTypes.exists(g, g == 'urn:ietf:params:oauth:grant-type:token-exchange')",message="a Public client must not use token exchange"
// +kubebuilder:validation:XValidation:rule="self.type != 'Public' || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod == 'none'",message="a Public client authenticates with tokenEndpointAuthMethod none"
// +kubebuilder:validation:XValidation:rule="self.type != 'Confidential' || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'none'",message="a Confidential client must authenticate; tokenEndpointAuthMethod none is for Public clients"
// +kubebuilder:validation:XValidation:rule="!self.grantTypes.exists(g, g == 'authorization_code') || (has(self.redirectURIs) && size(self.redirectURIs) > 0)",message="authorization_code needs at least one redirectURI"
// +kubebuilder:validation:XValidation:rule="self.type != 'Public' || !has(self.secretRef)",message="a Public client has no secret; remove secretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.secretPolicy) || self.secretPolicy != 'External' || has(self.secretRef)",message="secretPolicy External needs secretRef"
// +kubebuilder:validation:XValidation:rule="has(oldSelf.clientID) == has(self.clientID) && (!has(self.clientID) || oldSelf.clientID == self.clientID)",message="clientID is immutable"
// +kubebuilder:validation:XValidation:rule="!has(self.allowedOrigins) || self.type == 'Public'",message="allowedOrigins (CORS) is for Public clients; a Confidential client calls the token endpoint from a server"
// +kubebuilder:validation:XValidation:rule="!has(self.introspection) || !self.introspection || self.type != 'Public'",message="a Public client cannot introspect tokens; introspection is for resource servers that authenticate"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'service_account_token' || (has(self.serviceAccount) != has(self.workloadIdentity))",message="tokenEndpointAuthMethod service_account_token needs exactly one of serviceAccount and workloadIdentity"
// +kubebuilder:validation:XValidation:rule="!(has(self.serviceAccount) || has(self.workloadIdentity)) || (has(self.tokenEndpointAuthMethod) && self.tokenEndpointAuthMethod == 'service_account_token')",message="serviceAccount and workloadIdentity need tokenEndpointAuthMethod service_account_token"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenEndpointAuthMethod) || !(self.tokenEndpointAuthMethod in ['service_account_token', 'private_key_jwt']) || (!has(self.secretRef) && !has(self.secretPolicy))",message="a client that authenticates with an assertion (service_account_token, private_key_jwt) has no client secret: remove secretRef and secretPolicy"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'private_key_jwt' || [has(self.jwks), has(self.jwksURI), has(self.jwksSecretRef) || (has(self.keyPolicy) && self.keyPolicy == 'Generate')].filter(x, x).size() == 1",message="tokenEndpointAuthMethod private_key_jwt needs exactly one source of public keys: jwks, jwksURI, jwksSecretRef, or keyPolicy Generate"
// +kubebuilder:validation:XValidation:rule="!(has(self.jwks) || has(self.jwksURI) || has(self.jwksSecretRef) || has(self.keyPolicy)) || (has(self.tokenEndpointAuthMethod) && self.tokenEndpointAuthMethod == 'private_key_jwt')",message="jwks, jwksURI, jwksSecretRef and keyPolicy need tokenEndpointAuthMethod private_key_jwt"
// +kubebuilder:validation:XValidation:rule="!has(self.keyPolicy) || self.keyPolicy != 'External' || has(self.jwks) || has(self.jwksURI) || has(self.jwksSecretRef)",message="keyPolicy External needs jwks, jwksURI or jwksSecretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.secretRotation) || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod in ['client_secret_basic', 'client_secret_post'] || (self.tokenEndpointAuthMethod == 'private_key_jwt' && has(self.keyPolicy) && self.keyPolicy == 'Generate')",message="secretRotation is for client secrets and keyPolicy Generate key pairs"
// +kubebuilder:validation:XValidation:rule="!has(self.maxAssertionLifetime) || (has(self.tokenEndpointAuthMethod) && self.tokenEndpointAuthMethod in ['service_account_token', 'private_key_jwt'])",message="maxAssertionLifetime is for the assertion methods (service_account_token, private_key_jwt)"
type OAuthClientSpec struct {
	// clientID is the OAuth client_id. Defaults to <name>.<namespace>. Immutable
	// and unique across the cluster.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._:@-]*$`
	ClientID string `json:"clientID,omitempty"`

	// type is Confidential (can keep a secret) or Public (browser and mobile
	// apps).
	// +optional
	// +kubebuilder:default=Confidential
	Type ClientType `json:"type,omitempty"`

	// grantTypes the client may use, each one of authorization_code,
	// client_credentials, refresh_token, password,
	// urn:ietf:params:oauth:grant-type:device_code (RFC 8628, for devices and
	// CLIs without a browser) and
	// urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693, Confidential
	// clients only; see ProtectedResource spec.tokenExchange).
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	GrantTypes []GrantType `json:"grantTypes"`

	// redirectURIs are the exact redirect URIs the client may use: https with a
	// host; http only on localhost, 127.0.0.1 or [::1]; or a private-use scheme in
	// reverse-domain form (RFC 8252 7.1, e.g. com.example.app:/cb). Every other
	// scheme (ws, ftp, blob, about, single-label schemes like myapp, ...) is
	// refused. No fragment, user information, white space or control characters.
	// The API server checks what its rules can express; the controller checks the
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

	// postLogoutRedirectURIs are where RP-initiated logout (OpenID Connect
	// RP-Initiated Logout 1.0, /oauth2/logout) may send the browser after signing
	// the user out, matched exactly (an http URI on a loopback host matches any
	// port). The rules of redirectURIs apply: https with a host; http only on
	// localhost, 127.0.0.1 or [::1]; or a private-use scheme in reverse-domain
	// form. No fragment, user information, white space or control characters.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:XValidation:rule="self.startsWith('https://') || self.matches('^http://(localhost|127[.]0[.]0[.]1|[[]::1[]])(:[0-9]+)?([/?].*)?$') || self.matches('^[a-z][a-z0-9-]*([.][a-z0-9-]+)+:')",message="post-logout redirect URIs must be https, http on a loopback host (localhost, 127.0.0.1, [::1]), or a private-use scheme in reverse-domain form (e.g. com.example.app:/cb)",messageExpression="'post-logout redirect URIs must be https, http on a loopback host (localhost, 127.0.0.1, [::1]), or a private-use scheme in reverse-domain form (e.g. com.example.app:/cb): \"' + self + '\"'"
	// +kubebuilder:validation:items:XValidation:rule="!self.contains('#')",message="post-logout redirect URIs must not contain a fragment",messageExpression="'post-logout redirect URIs must not contain a fragment: \"' + self + '\"'"
	// +kubebuilder:validation:items:XValidation:rule="!self.matches(r'[\\p{Cc}\\p{Z}]')",message="post-logout redirect URIs must not contain white space or control characters",messageExpression="'post-logout redirect URIs must not contain white space or control characters: \"' + self + '\"'"
	// +kubebuilder:validation:items:XValidation:rule="!self.matches('^[a-z][a-z0-9+.-]*://[^/?#]*@')",message="post-logout redirect URIs must not contain user information",messageExpression="'post-logout redirect URIs must not contain user information: \"' + self + '\"'"
	// +kubebuilder:validation:items:XValidation:rule="!self.matches('^[a-z][a-z0-9+.-]*:$')",message="post-logout redirect URIs must have something after the scheme (e.g. com.example.app:/cb)",messageExpression="'post-logout redirect URIs must have something after the scheme (e.g. com.example.app:/cb): \"' + self + '\"'"
	// +kubebuilder:validation:items:XValidation:rule="!self.startsWith('https://') || self.matches('^https://[^/?#:]')",message="https post-logout redirect URIs must name a host",messageExpression="'https post-logout redirect URIs must name a host: \"' + self + '\"'"
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectURIs,omitempty"`

	// logout says what ending the user's OP session (RP-initiated logout, or
	// "end session" on the account page) does for this client.
	// +optional
	Logout *LogoutPolicy `json:"logout,omitempty"`

	// scopes the client may request. A requested scope must also exist as a Scope
	// resource (or be a built-in OIDC scope). A listed scope that does not exist
	// makes the condition ScopesResolved False (reason UnknownScope, or
	// ScopeNotAllowed when the Scope leaves the client's namespace out) but not
	// Ready: the client is served without it, and requests for it are refused with
	// invalid_scope until a Scope defines (or allows) it.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:Pattern=`^[\x21\x23-\x5B\x5D-\x7E]+$`
	Scopes []string `json:"scopes,omitempty"`

	// defaultScopes are granted when a request names no scope. Each must be in
	// scopes. When absent, the allowed scopes whose Scope resource says default
	// are granted.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	DefaultScopes []string `json:"defaultScopes,omitempty"`

	// audiences are put in the aud claim of access tokens. Defaults to the client
	// ID.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	Audiences []string `json:"audiences,omitempty"`

	// tokenEndpointAuthMethod is how the client authenticates, and when set the
	// only method accepted: client_secret_basic, client_secret_post, none (Public
	// clients), service_account_token or private_key_jwt. Unset, a Confidential
	// client may use client_secret_basic or client_secret_post; a Public client is
	// none.
	// +optional
	TokenEndpointAuthMethod TokenEndpointAuthMethod `json:"tokenEndpointAuthMethod,omitempty"`

	// secretPolicy is Generate (the controller creates the Secret; the default for
	// the client_secret methods) or External. Not for the assertion methods
	// (service_account_token, private_key_jwt), which have no client secret.
	// +optional
	SecretPolicy SecretPolicy `json:"secretPolicy,omitempty"`

	// secretRef names the Secret (in this namespace) and key holding the client
	// secret. Defaults to the Secret <name>-oauth-client, key client-secret.
	// +optional
	SecretRef *LocalSecretKeyRef `json:"secretRef,omitempty"`

	// lifetimes of the tokens issued to this client.
	// +optional
	Lifetimes *TokenLifetimes `json:"lifetimes,omitempty"`

	// signingAlgorithm overrides the server's default algorithm for this client's
	// tokens: RS256, ES256 or EdDSA.
	// +optional
	SigningAlgorithm SigningAlgorithm `json:"signingAlgorithm,omitempty"`

	// pkce policy for the authorization code grant: RequiredS256 (the default; a
	// code_challenge with S256), Required (plain accepted too) or Optional
	// (Confidential clients may skip PKCE; Public clients never may).
	// +optional
	PKCE PKCEPolicy `json:"pkce,omitempty"`

	// dpop policy for proof-of-possession tokens (RFC 9449): Required (every
	// token request needs a DPoP proof), Optional (the default: a request with
	// a proof gets tokens bound to its key, token_type DPoP) or Disabled (DPoP
	// headers are ignored; tokens are Bearer tokens).
	// +optional
	DPoP DPoPPolicy `json:"dpop,omitempty"`

	// consent policy for the authorization code grant: Always (the consent page
	// every time), Remember (the default: the page unless the user allowed every
	// requested scope before) or Skip (never).
	// +optional
	Consent ConsentPolicy `json:"consent,omitempty"`

	// displayName is shown on the consent page.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName,omitempty"`

	// rateLimit bounds the token requests of this client, across all replicas; a
	// Public client's applies per client address, since anyone can name its client
	// ID. Unset, the server's default applies (latchkey serve --client-rate-limit;
	// none by default).
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`

	// allowedOrigins are the browser origins (scheme://host[:port]) from which
	// this Public client may call the token, revocation and userinfo endpoints
	// (CORS). Defaults to the origins of its https and http redirect URIs.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:Pattern=`^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`

	// introspection declares the client a resource server that may introspect
	// tokens (RFC 7662) and see who they belong to. Off by default: other clients
	// get invalid_client (or active false for another client's token).
	// +optional
	Introspection bool `json:"introspection,omitempty"`

	// serviceAccount binds the client to a ServiceAccount of its namespace: with
	// tokenEndpointAuthMethod service_account_token the workload authenticates
	// with a projected token of that ServiceAccount whose audience is exactly
	// Latchkey's issuer, sent as a JWT-bearer client assertion (RFC 7523 2.2)
	// beside client_id.
	// +optional
	ServiceAccount *ServiceAccountRef `json:"serviceAccount,omitempty"`

	// workloadIdentity binds the client to one subject of a WorkloadIssuer
	// (another cluster's ServiceAccount, a SPIFFE ID, a CI job): with
	// tokenEndpointAuthMethod service_account_token the workload authenticates
	// with a token of that issuer for that subject. No two clients may bind one
	// (issuer, subject) pair: the later one gets Ready=False, SubjectConflict.
	// +optional
	WorkloadIdentity *WorkloadIdentity `json:"workloadIdentity,omitempty"`

	// maxAssertionLifetime bounds, for the assertion methods, the time between a
	// client assertion's iat and exp (default 1h; at most 24h). Tokens without exp
	// or iat, or with the kubelet's one-year extension, are refused.
	// +optional
	MaxAssertionLifetime *metav1.Duration `json:"maxAssertionLifetime,omitempty"`

	// jwks are the public keys (a JWK set) that verify a private_key_jwt client's
	// assertions.
	// +optional
	JWKS *JSONWebKeySet `json:"jwks,omitempty"`

	// jwksSecretRef names a Secret in this namespace whose key (default jwks.json)
	// holds the JWK set of a private_key_jwt client's public keys. With keyPolicy
	// Generate it names the Secret the controller generates (default
	// <name>-oauth-client-key).
	// +optional
	JWKSSecretRef *LocalSecretKeyRef `json:"jwksSecretRef,omitempty"`

	// jwksURI is an https URL serving a private_key_jwt client's JWK set; Latchkey
	// fetches it when it meets an unknown key ID (at most every 10 s) and every
	// hour.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https://[^/?#@\s]+(/[^#\s]*)?$`
	JWKSURI string `json:"jwksURI,omitempty"`

	// keyPolicy Generate makes the controller create an EC P-256 key pair for a
	// private_key_jwt client in a Secret of this namespace and rotate it when the
	// annotation oauth.latchkey.dev/rotate is set to a new value; External (the
	// default) means the owner provides jwks, jwksSecretRef or jwksURI.
	// +optional
	KeyPolicy KeyPolicy `json:"keyPolicy,omitempty"`

	// secretRotation keeps the previous client secret (or generated key pair)
	// working for a grace period after it changes, so that workloads can pick up
	// the new one without an outage.
	// +optional
	SecretRotation *SecretRotation `json:"secretRotation,omitempty"`

	// backchannelLogoutURI receives OpenID Connect Back-Channel Logout 1.0
	// logout tokens (POSTed as logout_token) when a session the client took part
	// in ends. https, or http only on a loopback host (localhost, 127.0.0.1,
	// [::1]); no fragment, user information, white space or control characters.
	// Unset: no logout tokens are sent to this client.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.matches('^http://(localhost|127[.]0[.]0[.]1|[[]::1[]])(:[0-9]+)?([/?].*)?$')",message="backchannelLogoutURI must be https, or http on a loopback host (localhost, 127.0.0.1, [::1])"
	// +kubebuilder:validation:XValidation:rule="self.matches('^https://[^/?#:@]') || !self.startsWith('https://')",message="an https backchannelLogoutURI must name a host"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="backchannelLogoutURI must not contain a fragment"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'[\\p{Cc}\\p{Z}]')",message="backchannelLogoutURI must not contain white space or control characters"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-z][a-z0-9+.-]*://[^/?#]*@')",message="backchannelLogoutURI must not contain user information"
	BackchannelLogoutURI string `json:"backchannelLogoutURI,omitempty"`

	// backchannelLogoutSessionRequired says the client needs the sid (session
	// ID) claim in its logout tokens: a session whose ID is unknown sends it
	// none. Only meaningful with backchannelLogoutURI. Default false.
	// +optional
	BackchannelLogoutSessionRequired bool `json:"backchannelLogoutSessionRequired,omitempty"`

	// requirePushedAuthorizationRequests makes the authorization endpoint take
	// this client's requests only through a request_uri returned by the pushed
	// authorization request endpoint (/oauth2/par, RFC 9126); a request that
	// carries its parameters directly is refused with invalid_request. Only
	// meaningful with the authorization_code grant. Default false.
	// +optional
	RequirePushedAuthorizationRequests bool `json:"requirePushedAuthorizationRequests,omitempty"`

	// allowedIdentityProviders names the identity providers (e.g.
	// OIDCIdentityProvider names) whose users may sign in to this client; the
	// login page offers only these, and the codes and refresh tokens of a
	// provider taken off the list are refused. Empty: every provider. Local
	// Users can always sign in.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	AllowedIdentityProviders []string `json:"allowedIdentityProviders,omitempty"`
}

// ServiceAccountRef names a ServiceAccount in the client's namespace.
type ServiceAccountRef struct {
	// name of the ServiceAccount.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// WorkloadIdentity binds a client to a subject of a WorkloadIssuer.
type WorkloadIdentity struct {
	// issuerRef names the WorkloadIssuer.
	// +required
	IssuerRef WorkloadIssuerRef `json:"issuerRef"`
	// subject is the exact sub claim of the issuer's tokens for this workload
	// (e.g. system:serviceaccount:ns:name, spiffe://example.org/ns/billing/sa/api,
	// repo:example/app:ref:refs/heads/main).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Subject string `json:"subject"`
}

// WorkloadIssuerRef names a WorkloadIssuer.
type WorkloadIssuerRef struct {
	// name of the WorkloadIssuer.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// JSONWebKeySet is a set of public JSON Web Keys (RFC 7517). Private key
// members are pruned.
type JSONWebKeySet struct {
	// keys of the set.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Keys []JSONWebKey `json:"keys"`
}

// JSONWebKey is one public key (RFC 7517, 7518 6, 8037): RSA, EC or OKP
// (Ed25519).
// +kubebuilder:validation:XValidation:rule="self.kty != 'RSA' || (has(self.n) && has(self.e))",message="an RSA key needs n and e"
// +kubebuilder:validation:XValidation:rule="self.kty != 'EC' || (has(self.crv) && has(self.x) && has(self.y))",message="an EC key needs crv, x and y"
// +kubebuilder:validation:XValidation:rule="self.kty != 'OKP' || (has(self.crv) && has(self.x))",message="an OKP key needs crv and x"
type JSONWebKey struct {
	// kty is the key type: RSA, EC or OKP.
	// +required
	// +kubebuilder:validation:Enum=RSA;EC;OKP
	Kty string `json:"kty"`
	// kid is the key ID that assertions name in their header.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Kid string `json:"kid,omitempty"`
	// use, when set, must be sig.
	// +optional
	// +kubebuilder:validation:Enum=sig
	Use string `json:"use,omitempty"`
	// alg, when set, is the only algorithm the key verifies: RS256, RS384, RS512,
	// PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA.
	// +optional
	// +kubebuilder:validation:Enum=RS256;RS384;RS512;PS256;PS384;PS512;ES256;ES384;ES512;EdDSA
	Alg string `json:"alg,omitempty"`
	// crv of an EC (P-256, P-384, P-521) or OKP (Ed25519) key.
	// +optional
	// +kubebuilder:validation:Enum=P-256;P-384;P-521;Ed25519
	Crv string `json:"crv,omitempty"`
	// x coordinate (EC) or public key (OKP), base64url.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	X string `json:"x,omitempty"`
	// y coordinate of an EC key, base64url.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Y string `json:"y,omitempty"`
	// n is an RSA key's modulus, base64url.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	N string `json:"n,omitempty"`
	// e is an RSA key's exponent, base64url.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	E string `json:"e,omitempty"`
}

// SecretRotation is how a changed client secret or key pair is rolled out.
type SecretRotation struct {
	// gracePeriod is how long the previous client secret (or public key) keeps
	// working after a new one is seen (an External Secret's value changes) or
	// generated (Generate, also on demand with the annotation
	// oauth.latchkey.dev/rotate). 0 (the default) cuts over at once. At most 30
	// days.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('720h')",message="gracePeriod must be between 0s and 720h"
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
}

// CredentialStatus tells which credentials of a client work and when they were
// used.
type CredentialStatus struct {
	// currentSince is when the current client secret (or key pair) was first seen.
	// +optional
	CurrentSince *metav1.Time `json:"currentSince,omitempty"`
	// currentLastUsed is when the current credential last authenticated the client
	// (coarse: to the minute).
	// +optional
	CurrentLastUsed *metav1.Time `json:"currentLastUsed,omitempty"`
	// previousAcceptedUntil is until when the previous client secret (or public
	// key) is accepted; absent when none is.
	// +optional
	PreviousAcceptedUntil *metav1.Time `json:"previousAcceptedUntil,omitempty"`
	// previousLastUsed is when the previous credential last authenticated the
	// client.
	// +optional
	PreviousLastUsed *metav1.Time `json:"previousLastUsed,omitempty"`
}

// RateLimit is a token-bucket limit on a client's token requests.
type RateLimit struct {
	// requestsPerMinute is the sustained rate.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=6000000
	RequestsPerMinute int32 `json:"requestsPerMinute"`
	// burst is how many requests may come at once above the sustained rate.
	// Defaults to a tenth of requestsPerMinute, at least 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Burst int32 `json:"burst,omitempty"`
}

// OAuthClientStatus is what the controllers observed.
type OAuthClientStatus struct {
	// conditions: Ready with reasons Ready, SecretNotFound, SecretConflict (a
	// Secret the client does not control already has the name it would generate;
	// it is neither used nor adopted), ClientIDConflict, SubjectConflict,
	// InvalidSpec, IssuerNotFound, NamespaceNotAllowed, PolicyViolation;
	// ScopesResolved with reasons Resolved, UnknownScope (spec.scopes names a
	// scope that is neither a built-in OIDC scope nor defined by a Scope resource)
	// and ScopeNotAllowed (its Scope's allowedNamespaces leave the client's
	// namespace out): the client stays Ready and is served without them;
	// Propagated with reasons Propagated, Lagging, NoReplicas.
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
	// credentials: when the current and previous credentials were seen and used
	// (clients with secretRotation).
	// +optional
	Credentials *CredentialStatus `json:"credentials,omitempty"`
	// served is how many live replicas serve the current generation, of how many:
	// "3/3" (the Propagated condition names the replicas that lag).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Served string `json:"served,omitempty"`
}

// OAuthClient declares an OAuth 2.0 client.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=oac,categories=latchkey
// +kubebuilder:printcolumn:name="ClientID",type=string,JSONPath=`.status.clientID`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Auth",type=string,JSONPath=`.spec.tokenEndpointAuthMethod`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Served",type=string,JSONPath=`.status.served`
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
