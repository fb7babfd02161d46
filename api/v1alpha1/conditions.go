package v1alpha1

// Condition types and reasons shared by the Latchkey resources.
const (
	// ConditionReady is True when the resource is loaded into the server's registry and usable.
	ConditionReady = "Ready"
	// ConditionScopesResolved is True when every scope an OAuthClient lists is a built-in OIDC
	// scope or defined by a Scope resource. It does not gate Ready: a client listing an unknown
	// scope is served without it (requests for it are refused with invalid_scope).
	ConditionScopesResolved = "ScopesResolved"

	// ConditionPropagated is True when every live replica serves the resource's current
	// generation (each replica reports what it serves in a Lease; the leader aggregates).
	ConditionPropagated = "Propagated"
	// ReasonPropagated: every live replica serves the current generation.
	ReasonPropagated = "Propagated"
	// ReasonLagging: some live replicas do not serve the current generation yet; the message
	// names them.
	ReasonLagging = "Lagging"
	// ReasonNoReplicas: no live replica has reported yet.
	ReasonNoReplicas = "NoReplicas"

	// ReasonReady: everything the resource needs exists and it is being served.
	ReasonReady = "Ready"
	// ReasonSecretNotFound: the referenced Secret (or its key) does not exist yet.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonClientIDConflict: another OAuthClient, created earlier, already uses this client ID.
	ReasonClientIDConflict = "ClientIDConflict"
	// ReasonInvalidSpec: the spec passed schema validation but cannot be served as written.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonUsernameConflict: another User, created earlier, already has this username.
	ReasonUsernameConflict = "UsernameConflict"
	// ReasonScopeNameConflict: another Scope, created earlier, already defines this scope name.
	ReasonScopeNameConflict = "ScopeNameConflict"
	// ReasonSecretConflict: a Secret the controller does not own already exists under the name
	// it would generate; it is never used or adopted.
	ReasonSecretConflict = "SecretConflict"
	// ReasonSubjectConflict: another OAuthClient, created earlier, is already bound to this
	// client's workload identity (issuer, subject), or to its ServiceAccount.
	ReasonSubjectConflict = "SubjectConflict"
	// ReasonIssuerNotFound: the WorkloadIssuer that spec.workloadIdentity names does not exist.
	ReasonIssuerNotFound = "IssuerNotFound"
	// ReasonNamespaceNotAllowed: the WorkloadIssuer that spec.workloadIdentity names does not
	// list the client's namespace in its allowedNamespaces.
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	// ReasonDiscoveryFailed: a WorkloadIssuer's OIDC discovery document cannot be fetched, does
	// not parse, names another issuer or no https jwks_uri.
	ReasonDiscoveryFailed = "DiscoveryFailed"
	// ReasonKeysUnavailable: a WorkloadIssuer's JWK set cannot be fetched, does not parse or
	// holds no usable key.
	ReasonKeysUnavailable = "KeysUnavailable"
	// ReasonPolicyViolation: the OAuthClient violates an OAuthClientPolicy of its namespace (or
	// the default policy); it is not served. The message names the policy and the rule.
	ReasonPolicyViolation = "PolicyViolation"

	// ReasonResolved (ScopesResolved=True): every scope the client lists exists.
	ReasonResolved = "Resolved"
	// ReasonUnknownScope (ScopesResolved=False): the client lists scopes that are neither built-in
	// OIDC scopes nor defined by a Scope resource; the message names them.
	ReasonUnknownScope = "UnknownScope"
	// ReasonScopeNotAllowed (ScopesResolved=False): every listed scope exists, but some Scopes'
	// allowedNamespaces leave the client's namespace out; the message names them.
	ReasonScopeNotAllowed = "ScopeNotAllowed"
)

// LabelRegistered marks an OAuthClient created by dynamic registration (RFC 7591) with "true":
// the consent page shows such a client as unverified.
const LabelRegistered = "oauth.latchkey.dev/registered"

// Annotations of on-demand rotation.
const (
	// AnnotationRotate on an OAuthClient asks for a new credential whenever its value changes
	// (any value, e.g. a timestamp): a new client secret in the generated Secret (secretPolicy
	// Generate), or a new key pair (keyPolicy Generate). With spec.secretRotation the previous
	// one keeps working for the grace period.
	//
	//	kubectl annotate oauthclient billing oauth.latchkey.dev/rotate=$(date +%s) --overwrite
	AnnotationRotate = "oauth.latchkey.dev/rotate"
	// AnnotationRotatedFor on a generated Secret records the AnnotationRotate value its current
	// credential was generated for, so each value rotates once.
	AnnotationRotatedFor = "oauth.latchkey.dev/rotated-for"
)

// LocalSecretKeyRef names a key of a Secret in the resource's own namespace.
type LocalSecretKeyRef struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key inside the Secret's data.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// SecretKeyRef names a key of a Secret in a given namespace.
type SecretKeyRef struct {
	// namespace of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key inside the Secret's data.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}
