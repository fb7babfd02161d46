package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types and reasons of LDAPIdentityProvider.
const (
	// ConditionConnectionProbe is True when the controller reached the LDAP
	// server and completed TLS (or StartTLS) with the provider's CA bundle.
	ConditionConnectionProbe = "ConnectionProbe"
	// ConditionBindSucceeded is True when the service account's bind with the
	// Secret's DN and password succeeded.
	ConditionBindSucceeded = "BindSucceeded"
	// ReasonConnected (ConnectionProbe=True): dialled, TLS verified.
	ReasonConnected = "Connected"
	// ReasonConnectionFailed (ConnectionProbe=False): the server cannot be
	// reached or its certificate does not verify with the CA bundle.
	ReasonConnectionFailed = "ConnectionFailed"
	// ReasonBound (BindSucceeded=True): the service bind succeeded.
	ReasonBound = "Bound"
	// ReasonBindFailed (BindSucceeded=False): the server refused the service
	// bind (wrong DN or password).
	ReasonBindFailed = "BindFailed"
)

// LDAPTLSMode is how the connection to the LDAP server is protected.
// +kubebuilder:validation:Enum=TLS;StartTLS
type LDAPTLSMode string

// The LDAP TLS modes.
const (
	// LDAPTLSModeTLS: LDAPS, TLS from the first byte (usually port 636).
	LDAPTLSModeTLS LDAPTLSMode = "TLS"
	// LDAPTLSModeStartTLS: plain LDAP upgraded with StartTLS before any bind
	// (usually port 389).
	LDAPTLSModeStartTLS LDAPTLSMode = "StartTLS"
)

// LDAPIdentityProviderSpec describes an LDAP directory whose users sign in
// with their username and password on Latchkey's login page.
type LDAPIdentityProviderSpec struct {
	// host is the LDAP server as host:port (e.g. ldap.example.com:636).
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$`
	Host string `json:"host"`

	// tls is how the connection is protected; plaintext LDAP is not
	// supported.
	// +optional
	TLS LDAPTLS `json:"tls,omitempty"`

	// bind names the Secret of the service account Latchkey binds as to
	// search for users and groups.
	// +required
	Bind LDAPBind `json:"bind"`

	// userSearch finds the entry of the username typed on the login page.
	// +required
	UserSearch LDAPUserSearch `json:"userSearch"`

	// groupSearch finds the groups of a user; absent, users have no groups.
	// +optional
	GroupSearch *LDAPGroupSearch `json:"groupSearch,omitempty"`

	// displayName labels the provider in the login form's provider choice;
	// default the resource's name.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	DisplayName string `json:"displayName,omitempty"`
}

// LDAPTLS is the TLS of an LDAP connection.
type LDAPTLS struct {
	// mode is TLS (LDAPS) or StartTLS; default TLS.
	// +optional
	// +kubebuilder:default=TLS
	Mode LDAPTLSMode `json:"mode,omitempty"`
	// caBundle is the PEM bundle of the certificate authorities trusted for
	// the server's certificate; absent, the system's roots.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	CABundle string `json:"caBundle,omitempty"`
}

// LDAPBind is the service account Latchkey binds as.
type LDAPBind struct {
	// secretRef names a Secret with the keys username (the bind DN) and
	// password; secretRef.key is not used.
	// +required
	SecretRef SecretKeyRef `json:"secretRef"`
}

// LDAPUserSearch finds a user's entry by the username typed on the login
// page.
type LDAPUserSearch struct {
	// base is the DN searched (whole subtree), e.g.
	// ou=people,dc=example,dc=com.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Base string `json:"base"`
	// filter is the LDAP filter of the user's entry, in which every {} is
	// replaced by the typed username, escaped (RFC 4515); default
	// (uid={}). It must contain {} and exactly one entry must match.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.contains('{}')",message="filter must contain the {} placeholder of the username"
	Filter string `json:"filter,omitempty"`
	// usernameAttribute is the attribute that becomes the username
	// (preferred_username); default uid.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	UsernameAttribute string `json:"usernameAttribute,omitempty"`
	// uidAttribute is the attribute that identifies the user for good (the
	// subject is derived from it), e.g. entryUUID, uidNumber or
	// objectGUID; default entryUUID. It must never be reassigned.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	UIDAttribute string `json:"uidAttribute,omitempty"`
	// emailAttribute is the attribute of the email; default mail.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	EmailAttribute string `json:"emailAttribute,omitempty"`
	// nameAttribute is the attribute of the display name; default cn.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	NameAttribute string `json:"nameAttribute,omitempty"`
}

// LDAPGroupSearch finds the groups of a user.
type LDAPGroupSearch struct {
	// base is the DN searched for groups (whole subtree).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Base string `json:"base"`
	// filter is the LDAP filter of a user's groups, in which {dn} is
	// replaced by the user's DN and {} by their username, both escaped;
	// default (member={dn}).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Filter string `json:"filter,omitempty"`
	// nameAttribute is the group attribute that becomes the group's name;
	// default cn.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	NameAttribute string `json:"nameAttribute,omitempty"`
}

// LDAPIdentityProviderStatus is what the controllers observed.
type LDAPIdentityProviderStatus struct {
	// conditions: ConnectionProbe (reasons Connected, ConnectionFailed);
	// BindSucceeded (reasons Bound, BindFailed, SecretNotFound,
	// ConnectionFailed); Ready (reasons Ready, InvalidSpec, SecretNotFound,
	// ConnectionFailed, BindFailed); Propagated (reasons Propagated,
	// Lagging, NoReplicas).
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

// LDAPIdentityProvider is an LDAP directory whose users can sign in to
// Latchkey's clients with their directory password.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ldapidp,categories=latchkey
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.host`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Served",type=string,JSONPath=`.status.served`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LDAPIdentityProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired provider.
	// +required
	Spec LDAPIdentityProviderSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status LDAPIdentityProviderStatus `json:"status,omitempty"`
}

// LDAPIdentityProviderList is a list of LDAPIdentityProviders.
// +kubebuilder:object:root=true
type LDAPIdentityProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LDAPIdentityProvider `json:"items"`
}
