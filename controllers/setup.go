package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/keys"
	"github.com/latchkey-dev/latchkey/server/registry"
)

// ClientRegistry receives the OAuth clients to serve.
type ClientRegistry interface {
	PutClient(c registry.Client)
	DeleteClient(source string)
}

// ScopeRegistry receives the scopes to serve.
type ScopeRegistry interface {
	PutScope(source string, sc registry.Scope)
	DeleteScope(source string)
}

// UserRegistry receives the users who can log in.
type UserRegistry interface {
	PutUser(u registry.User)
	DeleteUser(source string)
}

// WorkloadIssuerRegistry receives the issuers of workload identity tokens.
type WorkloadIssuerRegistry interface {
	PutWorkloadIssuer(w registry.WorkloadIssuer)
	DeleteWorkloadIssuer(name string)
}

// Registry is everything the registry controllers write; *registry.Registry implements it.
type Registry interface {
	ClientRegistry
	ScopeRegistry
	UserRegistry
	WorkloadIssuerRegistry
	UpstreamRegistry
	LDAPRegistry
	GitHubRegistry
	ProtectedResourceRegistry
}

// KeyLoader receives the marshalled signing key set whenever the key Secret changes, and gives
// back the set it loaded (nil if none) for the leader to restore a deleted key Secret from;
// *keys.Keyring implements it.
type KeyLoader interface {
	LoadBytes(data []byte) error
	Set() *keys.Set
}

var (
	_ Registry  = (*registry.Registry)(nil)
	_ KeyLoader = (*keys.Keyring)(nil)
)

const (
	// DefaultKeySecretName is the default name of the signing-key Secret.
	DefaultKeySecretName = "latchkey-signing-keys"
	// KeySetKey is the data key of the marshalled key set (keys.Set.Marshal) in the Secret.
	KeySetKey = "keys.json"
	// recorderName is the reporting controller of the Events.
	recorderName = "latchkey"
)

// Options configure Setup.
type Options struct {
	// Registry receives clients, scopes and users (required).
	Registry Registry
	// Keys receives the signing key set (required).
	Keys KeyLoader
	// Namespace holds the signing-key Secret (required).
	Namespace string
	// WatchNamespaces, when not empty, are the only namespaces whose Secrets the controllers
	// read (it must include Namespace, and match the manager's cache.Options.DefaultNamespaces):
	// a User's password Secret or a WorkloadIssuer's key Secret elsewhere is SecretNotFound, with
	// a message saying its namespace is not watched. Empty: all namespaces.
	WatchNamespaces []string
	// KeySecretName is the signing-key Secret's name; default DefaultKeySecretName.
	KeySecretName string
	// Algorithms to keep a signing key for; default keys.SupportedAlgorithms().
	Algorithms []string
	// KeyRotationPeriod is how long a signing key signs before the leader rotates it; 0: never
	// (a rotation forced with the AnnotationRotateKeys annotation still runs).
	KeyRotationPeriod time.Duration
	// MaxTokenLifetime is the longest lifetime of a signed token (access or ID token): a rotated
	// key stays published that long after its successor starts signing; default
	// keys.DefaultMaxTokenLifetime.
	MaxTokenLifetime time.Duration
	// TokenURL is written into generated client Secrets under token-url; empty leaves it out.
	TokenURL string
	// Now is the clock for new signing keys; default time.Now.
	Now func() time.Time
	// Readiness, when set, is fed by the registry controllers; add its Check with
	// mgr.AddReadyzCheck (see Readiness).
	Readiness *Readiness
	// KeyMetrics, when set, counts the signing-key rotations and keys retired at once;
	// *metrics.Metrics implements it.
	KeyMetrics KeyMetrics
	// SyncMetrics, when set, is told each time the registry controllers take in an object of a
	// kind; *metrics.Metrics implements it (the time since each informer last synced).
	SyncMetrics SyncMetrics
	// CredentialUses, when set, holds the clients' credential uses the replicas noted (the
	// leased store, fed by server/credentialuse on every replica): the leader takes them every
	// CredentialStatusInterval and writes the last-used times of status.credentials.
	CredentialUses CredentialUses
	// CredentialStatusInterval is how often the leader writes them; default
	// DefaultCredentialStatusInterval.
	CredentialStatusInterval time.Duration
	// DefaultClientPolicy names an OAuthClientPolicy in Namespace that applies to the
	// OAuthClients of every namespace, besides their namespace's own policies (the chart's
	// clientPolicy.default); empty: none.
	DefaultClientPolicy string
	// ReplicaName is the name this replica reports what it serves under, in the Lease
	// latchkey-replica-<ReplicaName> in Namespace; default DefaultReplicaName().
	ReplicaName string
	// ReplicaLeaseDuration is how long a replica counts as live after its last report (the
	// leader's served counts drop it then); default DefaultReplicaLeaseDuration.
	ReplicaLeaseDuration time.Duration
	// PropagationMetrics, when set, is told each replica report's lag and watermark per kind;
	// *metrics.Metrics implements it.
	PropagationMetrics PropagationMetrics
	// ReportInterval is how often a replica writes its report at most; default
	// DefaultReportInterval.
	ReportInterval time.Duration
	// ResourceMetadata, when set, renders a ProtectedResource's RFC 9728 metadata as the server
	// serves it: the leader writes it into the ConfigMap <name>-oauth-protected-resource of
	// each resource that holds its audience, for the resource server to serve. Nil: none.
	ResourceMetadata ResourceMetadata
}

// SyncMetrics records when the registry last took in an object of a kind.
type SyncMetrics interface {
	RegistrySynced(kind string)
}

// KeyMetrics counts signing-key rotations and keys retired at once.
type KeyMetrics interface {
	KeyRotated()
	KeyRetired()
}

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Registry == nil {
		errs = append(errs, errors.New("Registry is required"))
	}
	if o.Keys == nil {
		errs = append(errs, errors.New("Keys is required"))
	}
	if o.Namespace == "" {
		errs = append(errs, errors.New("Namespace is required"))
	}
	if len(o.WatchNamespaces) > 0 && !slices.Contains(o.WatchNamespaces, o.Namespace) {
		errs = append(errs, fmt.Errorf("WatchNamespaces %v must include Namespace %q", o.WatchNamespaces, o.Namespace))
	}
	if o.KeySecretName == "" {
		o.KeySecretName = DefaultKeySecretName
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = keys.SupportedAlgorithms()
	}
	for _, alg := range o.Algorithms {
		if !slices.Contains(keys.SupportedAlgorithms(), alg) {
			errs = append(errs, fmt.Errorf("unsupported signing algorithm %q", alg))
		}
	}
	if o.KeyRotationPeriod < 0 {
		errs = append(errs, errors.New("KeyRotationPeriod must not be negative"))
	}
	if o.MaxTokenLifetime <= 0 {
		o.MaxTokenLifetime = keys.DefaultMaxTokenLifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CredentialStatusInterval <= 0 {
		o.CredentialStatusInterval = DefaultCredentialStatusInterval
	}
	if o.ReplicaName == "" {
		o.ReplicaName = DefaultReplicaName()
	}
	if errs2 := validation.IsDNS1123Subdomain(replicaLeasePrefix + o.ReplicaName); len(errs2) > 0 {
		errs = append(errs, fmt.Errorf("ReplicaName %q: %s", o.ReplicaName, strings.Join(errs2, "; ")))
	}
	if o.ReplicaLeaseDuration <= 0 {
		o.ReplicaLeaseDuration = DefaultReplicaLeaseDuration
	}
	if o.ReportInterval <= 0 {
		o.ReportInterval = DefaultReportInterval
	}
	if o.Readiness == nil {
		o.Readiness = NewReadiness()
	}
	if o.SyncMetrics != nil {
		o.Readiness.onProcessed = o.SyncMetrics.RegistrySynced
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("controllers: %w", err)
	}
	return o, nil
}

// RBAC: the markers below generate the ClusterRole, which holds only what is needed across
// namespaces (with --watch-namespaces the chart moves the Secret and OAuthClient rules into Roles
// in the watched namespaces). Secrets: read and watch (client and password Secrets live anywhere), create
// (generated client Secrets and rotation states live in the clients' namespaces) and update (a
// generated client secret rotated on demand, a rotation state, a private_key_jwt client's
// generated key pair rotated in place: delete and create would leave the client without keys in
// between); never patch. The code updates only Secrets that an OAuthClient controls
// (metav1.IsControlledBy), never anyone else's.
// The controllers' Events go through the events.k8s.io/v1 API, about objects in any namespace.
// oauthclients/finalizers update lets the ownerReference of a generated Secret set
// blockOwnerDeletion where the OwnerReferencesPermissionEnforcement admission plugin is on.
//
// What is needed in the server's own namespace only is granted by hand-written Roles (the
// namespace is known at install time, not here): config/rbac/leader_election_role.yaml (Leases:
// the leader election's and the replica reports; the leader election's core v1 Events) and config/rbac/signing_key_role.yaml (update and patch of
// the key Secret, by name), mirrored in charts/latchkey/templates/rbac.yaml.
//
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=oauthclients;scopes;users,verbs=get;list;watch
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=oauthclients/status;scopes/status;users/status,verbs=update;patch
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=workloadissuers,verbs=get;list;watch
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=workloadissuers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=oauthclientpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=oauthclientpolicies/status,verbs=update;patch
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=protectedresources,verbs=get;list;watch
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=protectedresources/status,verbs=update;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=oauthclients/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Setup registers the field indexes and every controller of this package with the manager: the
// registry controllers and the key loader on every replica, the status, Secret and key writers on
// the leader only. Call it once per manager, before mgr.Start.
func Setup(mgr ctrl.Manager, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if err := setupIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	cache := mgr.GetClient()
	secrets := mgr.GetAPIReader()
	if len(opts.WatchNamespaces) > 0 {
		secrets = watchedSecrets{reader: secrets, namespaces: opts.WatchNamespaces}
	}
	events := mgr.GetEventRecorder(recorderName)
	keySecret := types.NamespacedName{Namespace: opts.Namespace, Name: opts.KeySecretName}
	policies := clientPolicies{reader: cache}
	if opts.DefaultClientPolicy != "" {
		policies.def = types.NamespacedName{Namespace: opts.Namespace, Name: opts.DefaultClientPolicy}
	}
	clientRegistry := &clientRegistryReconciler{cache: cache, secrets: secrets, registry: opts.Registry, ready: opts.Readiness, policies: policies}
	setups := []struct {
		name  string
		setup func(ctrl.Manager) error
	}{
		{"oauthclient-registry", clientRegistry.setup},
		{"oauthclientpolicy-registry", (&policyRegistryReconciler{cache: cache, clients: clientRegistry, ready: opts.Readiness}).setup},
		{"scope-registry", (&scopeRegistryReconciler{cache: cache, registry: opts.Registry, ready: opts.Readiness}).setup},
		{"user-registry", (&userRegistryReconciler{cache: cache, secrets: secrets, registry: opts.Registry, ready: opts.Readiness}).setup},
		{"workloadissuer-registry", (&issuerRegistryReconciler{cache: cache, secrets: secrets, registry: opts.Registry, ready: opts.Readiness}).setup},
		{"oidcidentityprovider-registry", (&providerRegistryReconciler[*v1alpha1.OIDCIdentityProvider, registry.UpstreamOIDC]{
			cache: cache, secrets: secrets, ready: opts.Readiness, kind: kindOIDCIdentityProvider, name: "oidcidentityprovider-registry",
			newObject: func() *v1alpha1.OIDCIdentityProvider { return &v1alpha1.OIDCIdentityProvider{} }, forSecret: upstreamsForSecret,
			convert: convertUpstream, put: opts.Registry.PutUpstreamOIDC, delete: opts.Registry.DeleteUpstreamOIDC,
		}).setup},
		{"ldapidentityprovider-registry", (&providerRegistryReconciler[*v1alpha1.LDAPIdentityProvider, registry.UpstreamLDAP]{
			cache: cache, secrets: secrets, ready: opts.Readiness, kind: kindLDAPIdentityProvider, name: "ldapidentityprovider-registry",
			newObject: func() *v1alpha1.LDAPIdentityProvider { return &v1alpha1.LDAPIdentityProvider{} }, forSecret: ldapProvidersForSecret,
			convert: convertLDAP, put: opts.Registry.PutUpstreamLDAP, delete: opts.Registry.DeleteUpstreamLDAP,
		}).setup},
		{"githubidentityprovider-registry", (&providerRegistryReconciler[*v1alpha1.GitHubIdentityProvider, registry.UpstreamGitHub]{
			cache: cache, secrets: secrets, ready: opts.Readiness, kind: kindGitHubIdentityProvider, name: "githubidentityprovider-registry",
			newObject: func() *v1alpha1.GitHubIdentityProvider { return &v1alpha1.GitHubIdentityProvider{} }, forSecret: githubsForSecret,
			convert: convertGitHub, put: opts.Registry.PutUpstreamGitHub, delete: opts.Registry.DeleteUpstreamGitHub,
		}).setup},
		{"protectedresource-registry", (&resourceRegistryReconciler{cache: cache, registry: opts.Registry, ready: opts.Readiness, policies: policies}).setup},
		{"readiness", func(mgr ctrl.Manager) error {
			return mgr.Add(&readinessLister{cache: mgr.GetCache(), ready: opts.Readiness})
		}},
		{"replica-report", func(mgr ctrl.Manager) error {
			return mgr.Add(&replicaReporter{
				client: mgr.GetClient(), reader: mgr.GetAPIReader(), cache: mgr.GetCache(),
				marks:   watermarks{cache: cache, ready: opts.Readiness, metrics: opts.PropagationMetrics},
				signers: signingKeyIDs(opts.Keys, opts.Algorithms),
				lease:   types.NamespacedName{Namespace: opts.Namespace, Name: replicaLeasePrefix + opts.ReplicaName},
				name:    opts.ReplicaName, duration: opts.ReplicaLeaseDuration, interval: opts.ReportInterval, now: time.Now,
			})
		}},
		{"propagation", func(mgr ctrl.Manager) error {
			live := &liveReplicaWatch{cache: cache, namespace: opts.Namespace, interval: opts.ReportInterval, now: time.Now}
			for _, k := range propagatedKindsStatus {
				r := &propagationReconciler{propagatedKind: k, client: mgr.GetClient(), namespace: opts.Namespace, now: time.Now, expiries: live.subscribe()}
				if err := r.setup(mgr); err != nil {
					return err
				}
			}
			keys := &signingKeyPropagation{
				client: mgr.GetClient(), reader: secrets, secret: keySecret, namespace: opts.Namespace,
				algorithms: opts.Algorithms, now: time.Now, expiries: live.subscribe(),
			}
			if err := keys.setup(mgr); err != nil {
				return err
			}
			return mgr.Add(live)
		}},
		{"oauthclient", (&oauthClientReconciler{
			client: mgr.GetClient(), secrets: secrets, scheme: mgr.GetScheme(), events: events, tokenURL: opts.TokenURL,
			policies: policies,
		}).setup},
		{"oauthclientpolicy", (&policyReconciler{client: mgr.GetClient(), events: events, def: policies.def}).setup},
		{"scope", (&scopeReconciler{client: mgr.GetClient(), events: events}).setup},
		{"user", (&userReconciler{client: mgr.GetClient(), secrets: secrets, events: events}).setup},
		{"workloadissuer", newIssuerReconciler(mgr.GetClient(), secrets, events, opts.Now).setup},
		{"oidcidentityprovider", (&upstreamReconciler{client: mgr.GetClient(), secrets: secrets, events: events}).setup},
		{"ldapidentityprovider", (&ldapReconciler{client: mgr.GetClient(), secrets: secrets, events: events}).setup},
		{"githubidentityprovider", (&githubReconciler{client: mgr.GetClient(), secrets: secrets, events: events}).setup},
		{"protectedresource", (&protectedResourceReconciler{
			client: mgr.GetClient(), reader: mgr.GetAPIReader(), scheme: mgr.GetScheme(), events: events,
			policies: policies, metadata: opts.ResourceMetadata,
		}).setup},
		{"signingkeys", (&keyEnsurer{
			client: mgr.GetClient(), reader: secrets, secret: keySecret, algorithms: opts.Algorithms,
			keys: opts.Keys, events: events, now: opts.Now, metrics: opts.KeyMetrics,
			rotation: keys.RotationPolicy{Period: opts.KeyRotationPeriod, MaxTokenLifetime: opts.MaxTokenLifetime},
		}).setup},
		{"signingkeys-loader", (&keyLoader{reader: secrets, secret: keySecret, keys: opts.Keys}).setup},
		{"credential-status", func(mgr ctrl.Manager) error {
			if opts.CredentialUses == nil {
				return nil
			}
			return mgr.Add(&credentialStatusWriter{client: mgr.GetClient(), uses: opts.CredentialUses, interval: opts.CredentialStatusInterval})
		}},
	}
	for _, s := range setups {
		if err := s.setup(mgr); err != nil {
			return fmt.Errorf("controllers: set up %s controller: %w", s.name, err)
		}
	}
	return nil
}
