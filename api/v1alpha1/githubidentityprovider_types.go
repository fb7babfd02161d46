package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons of the GitHubIdentityProvider conditions.
const (
	// ReasonHostReachable (HostReachable=True): the host's REST API answered.
	ReasonHostReachable = "Reachable"
	// ReasonHostUnreachable (HostReachable=False, Ready=False): the host's REST
	// API did not answer.
	ReasonHostUnreachable = "Unreachable"
	// ConditionHostReachable is True when the GitHub host's REST API answers.
	ConditionHostReachable = "HostReachable"
)

// Ways of GitHubIdentityProviderSpec.TeamsAsGroups.
const (
	TeamsAsGroupsSlug = "slug"
	TeamsAsGroupsName = "name"
)

// GitHubIdentityProviderSpec describes GitHub (github.com or a GitHub
// Enterprise Server) as an identity provider users sign in with.
// +kubebuilder:validation:XValidation:rule="has(self.allowAllUsers) && self.allowAllUsers ? !has(self.allowedOrganizations) || size(self.allowedOrganizations) == 0 : has(self.allowedOrganizations) && size(self.allowedOrganizations) > 0",message="set exactly one of allowedOrganizations (not empty) and allowAllUsers: true"
type GitHubIdentityProviderSpec struct {
	// host is the GitHub host: github.com (the default) or a GitHub
	// Enterprise Server host name (with an optional :port), whose OAuth
	// endpoints are https://HOST/login/oauth/... and REST API
	// https://HOST/api/v3. For tests only, http://HOST[:port] on a loopback
	// host (localhost, 127.0.0.1, [::1]) is accepted.
	// +optional
	// +kubebuilder:default="github.com"
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^(http://(localhost|127[.]0[.]0[.]1|[[]::1[]])(:[0-9]+)?|[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]+)?)$`
	Host string `json:"host,omitempty"`

	// caBundle is the PEM bundle of the certificate authorities trusted for
	// the host; absent, the system's roots.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	CABundle string `json:"caBundle,omitempty"`

	// client is the GitHub OAuth App Latchkey signs users in with.
	// +required
	Client GitHubClient `json:"client"`

	// allowedOrganizations are the organizations (logins, compared
	// case-insensitively) whose members may sign in; their teams become
	// groups. Set it, or allowAllUsers: true.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=39
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$`
	AllowedOrganizations []string `json:"allowedOrganizations,omitempty"`

	// allowAllUsers: true lets every user of the host sign in (explicitly:
	// on github.com that is anyone with an account).
	// +optional
	AllowAllUsers bool `json:"allowAllUsers,omitempty"`

	// teamsAsGroups is how the user's teams become groups, "org/<team>":
	// slug (the default) or name.
	// +optional
	// +kubebuilder:default="slug"
	// +kubebuilder:validation:Enum=slug;name
	TeamsAsGroups string `json:"teamsAsGroups,omitempty"`

	// displayName is the button label on the login page ("Sign in with
	// <displayName>"); default the resource's name.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	DisplayName string `json:"displayName,omitempty"`
}

// GitHubClient is Latchkey's OAuth App at GitHub.
type GitHubClient struct {
	// secretRef names the Secret holding the OAuth App's credentials under
	// the keys clientID and clientSecret.
	// +required
	SecretRef GitHubSecretRef `json:"secretRef"`
}

// GitHubSecretRef names a Secret.
type GitHubSecretRef struct {
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
}

// GitHubIdentityProviderStatus is what the controllers observed.
type GitHubIdentityProviderStatus struct {
	// conditions: ClientCredentialsValid (reasons CredentialsFound,
	// SecretNotFound); HostReachable (reasons Reachable, Unreachable); Ready
	// (reasons Ready, InvalidSpec, SecretNotFound, Unreachable); Propagated
	// (reasons Propagated, Lagging, NoReplicas).
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

// GitHubIdentityProvider is GitHub (github.com or GitHub Enterprise Server) as
// an identity provider whose users can sign in to Latchkey's clients.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=githubidp,categories=latchkey
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.host`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Served",type=string,JSONPath=`.status.served`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GitHubIdentityProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired provider.
	// +required
	Spec GitHubIdentityProviderSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status GitHubIdentityProviderStatus `json:"status,omitempty"`
}

// GitHubIdentityProviderList is a list of GitHubIdentityProviders.
// +kubebuilder:object:root=true
type GitHubIdentityProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GitHubIdentityProvider `json:"items"`
}
