// Package controllers turns Latchkey's resources into the server's registry values and writes
// what the cluster should see about them: status conditions, generated client Secrets, Events and
// the signing-key Secret. Setup is its one entry point; main.go calls it with a manager.
//
// Two kinds of controllers run in every process:
//
//   - Registry controllers (every replica, NeedLeaderElection false): OAuthClient, Scope, User
//     and WorkloadIssuer are read from the manager's informers, converted by controllers/convert and decided by
//     controllers/feed (the same code and policy the manifest loader uses), then put into the
//     registry through the small setter interfaces declared here (ClientRegistry, ScopeRegistry,
//     UserRegistry, WorkloadIssuerRegistry); a resource that is gone, being deleted or invalid is deleted from it. A
//     Confidential client whose Secret is missing is served without a secret (it keeps its
//     client ID, cannot authenticate). A change to a
//     referenced Secret re-converts the resource at once, so a rotated client secret works and the
//     old one stops working without a restart (after the grace period of spec.secretRotation). The signing-key loader, also on every replica,
//     loads the key Secret into a KeyLoader (*keys.Keyring) whenever it changes. The registry
//     controllers report each object they processed to a Readiness (see below).
//   - Leader-only controllers (status writer, Secret writer): the OAuthClient controller sets
//     status.clientID, status.secretName, observedGeneration and the Ready condition (reasons
//     Ready, SecretNotFound, SecretConflict, ClientIDConflict, InvalidSpec; the reason and
//     message come from controllers/feed, so the embedded mode's warnings say the same), creates the client Secret for
//     secretPolicy Generate (keys client-id, the secretRef key (client-secret by default) with 32
//     random bytes in unpadded base64url, and token-url when Options.TokenURL is set) with a
//     controller ownerReference, and never overwrites an existing Secret, except to rotate it on
//     demand (below). External clients wait for theirs. For secret rotation it keeps the
//     rotation state and status.credentials (rotation.go, below). It also sets ScopesResolved
//     (scope_resolution.go; feed.ScopesResolved decides it, as it does the loader's warning):
//     False, reason UnknownScope naming them, when spec.scopes lists scopes that are neither
//     built-in OIDC scopes (server/oauth2.IsBuiltinScope) nor the name of a Scope that is not
//     being deleted; True, Resolved, otherwise. It does not gate Ready:
//     the server serves the client and refuses requests for such a scope with invalid_scope. A
//     Scope's create, delete or rename re-queues the clients listing its name (indexClientScope,
//     old and new names). Scope and User get a Ready
//     condition (reasons Ready, InvalidSpec, ScopeNameConflict; User also SecretNotFound,
//     UsernameConflict). The signing-key controller
//     creates the key Secret when missing and adds keys for algorithms that have none. The
//     WorkloadIssuer controller checks that the issuer's keys can be had and writes Ready
//     (reasons Ready, InvalidSpec, SecretNotFound, DiscoveryFailed, KeysUnavailable), jwksURI,
//     keyCount and lastRefreshTime.
//
// Decisions:
//
//   - An OAuthClient whose redirect URIs the API server stored although server/redirecturi
//     refuses them (stored before the CRD's CEL rules existed, or a rule CEL cannot express,
//     like a port net/url cannot parse) is Ready=False InvalidSpec, naming each URI and why,
//     and is not served.
//   - Client-ID conflicts are decided by registry.Wins (earliest creationTimestamp, then
//     "namespace/name") over the OAuthClients with the same ID that are not being deleted and
//     whose spec is valid: exactly the set the registry holds, so the client every replica serves
//     is the one whose status says Ready. Any create, delete or spec change of an OAuthClient
//     re-queues its peers of the same ID, so a loser becomes Ready when the winner goes away. A
//     loser gets no generated Secret until it wins.
//   - Usernames and scope names are decided by the same rule (registry.Precedes), in the registry
//     (so every replica serves the same User and Scope) and by the leader, which marks the losers
//     UsernameConflict or ScopeNameConflict (with a Warning Event) and re-queues the peers of a
//     username or scope name on every create, delete or spec change, and the username peers of a
//     User whose password Secret changes (a User refused for its hash does not hold its name). So
//     whoever may create Users cannot take over "alice" with a User named to sort first.
//   - Workload identities (workload_identity_status.go): an OAuthClient bound to a subject of a
//     WorkloadIssuer is Ready=False IssuerNotFound while the issuer does not exist (or is being
//     deleted) and NamespaceNotAllowed while its allowedNamespaces leave the client's namespace
//     out; then, like a client ID, an (issuer, subject) pair (for spec.serviceAccount: the local
//     cluster's issuer and the ServiceAccount's subject) is held by the client registry.Wins
//     chooses among the valid clients bound to it, which is what registry.Snapshot.SubjectHolder
//     serves, and the others are SubjectConflict. A field index on the pair re-queues the peers
//     of a client that changes or goes; one on spec.workloadIdentity.issuerRef.name re-queues
//     the clients of an issuer that appears, goes or changes. These clients are served (they
//     keep their client IDs); the server refuses their assertions.
//   - The WorkloadIssuer controller builds the issuer's key set as the server does
//     (workload.IssuerKeySet: its CA bundle, else the system's roots), keeps it per issuer and
//     builds it anew only when where the keys come from changes (issuer, jwksURI, caBundle,
//     refreshPeriod). It forces a fetch when the last one it forced is a refresh period old
//     (default 1 h), or a minute old while the keys cannot be had, and requeues for then: an
//     unchanged issuer is fetched no more often than its period asks, and a fixed source (a new
//     caBundle, a new jwksURI) is checked at once. A failed discovery (assertion.ErrDiscovery:
//     unreachable, another issuer, no https jwks_uri) is DiscoveryFailed; a JWK set that cannot
//     be fetched or holds no usable key is KeysUnavailable; either is Ready=False even while the
//     keys of an earlier fetch stay in use (the message says so), because the issuer needs
//     attention. Keys from a Secret are counted, never fetched; lastRefreshTime stays empty for
//     them. Each replica's verifier fetches on its own, lazily (server/workload).
//   - The registry controller puts a WorkloadIssuer only when its converted value changed: a
//     new value makes every verifier fetch the issuer's keys anew.
//   - OAuthClientPolicies (oauthclientpolicy_controllers.go): the client registry controller
//     withdraws a client that breaks a policy of its namespace or the default policy
//     (Options.DefaultClientPolicy), as controllers/policy.Evaluate says, before converting it;
//     the leader's OAuthClient controller reports it Ready=False PolicyViolation naming the
//     policy, the rule and the value, and counts it out of client-ID contests. Both watch the
//     policies: a change re-queues the clients of the policy's namespace (every client for the
//     default policy), and on the leader their client-ID peers too. The leader's policy
//     controller sets each policy's Ready (InvalidSpec when policy.Check refuses it).
//   - A Generate client never uses or adopts a Secret it does not control (metav1.IsControlledBy):
//     someone able to create Secrets in the namespace could otherwise plant a secret value they
//     know. Such a client is Ready=False SecretConflict and served without a secret. When that
//     Secret is on its way out (being deleted, or controlled by an OAuthClient that is gone or
//     being deleted, e.g. this client's previous incarnation awaiting garbage collection), the
//     controller requeues and generates once it is gone. External clients use any Secret.
//   - Readiness (main.go: mgr.AddReadyzCheck("registry", readiness.Check), with the Readiness
//     passed in Options) is true once every OAuthClient, Scope, User and WorkloadIssuer in the
//     synced cache at start was processed by its registry controller (served, removed or refused
//     as invalid), so a replica does not take traffic with a half-filled registry. It covers the
//     registry only; main.go checks separately that signing keys are loaded.
//   - Secrets are watched metadata-only (one PartialObjectMetadata informer for all Secrets,
//     shared by the client, user and key watches) and read with the manager's API reader when a
//     referenced one changes. So no Secret data is cached in memory, at the price of one GET per
//     reconcile of a Confidential client or a User with a password. The signing-key watches filter
//     that informer to the one key Secret. (Metadata of every Secret is still cached.)
//   - Every informer trims what it caches (TrimForCache, cache_transform.go; main.go sets it as
//     cache.Options.DefaultTransform): managedFields and kubectl's last-applied annotation are
//     dropped before an object is stored, so 100,000 OAuthClients cost their specs, not their
//     field-ownership histories. Objects that are updated whole are read through the API reader.
//   - Namespace-scoped operation (Options.WatchNamespaces, --watch-namespaces): main.go narrows
//     the cache of namespaced kinds (OAuthClients, Secret metadata) to the watched namespaces with
//     cache.Options.DefaultNamespaces, and Setup wraps the API reader so that no Secret GET or
//     LIST leaves them (watchedSecrets): a User's or WorkloadIssuer's Secret elsewhere reads as
//     missing, SecretNotFound saying its namespace is not watched. Cluster-scoped kinds are still
//     watched cluster-wide.
//   - To regenerate a Generate client's secret, set the OAuthClient's annotation
//     oauth.latchkey.dev/rotate (v1alpha1.AnnotationRotate) to a new value: the leader writes a
//     new random secret into the Secret it controls and records the value in the Secret's
//     oauth.latchkey.dev/rotated-for, so each value rotates once (a Secret generated while the
//     annotation is set records it at once). Deleting the Secret, or editing the value, works
//     as well.
//   - Secret rotation (rotation.go): for a client with spec.secretRotation that uses a client
//     secret, the leader keeps the rotation state in the Secret <name>-oauth-client-rotation
//     (SHA-256 hashes and RFC 3339 times, never a secret; controlled by the OAuthClient),
//     advanced by convert.RotationState.Next on every reconcile: a new value makes the old one
//     the previous, accepted for the grace period; it writes status.credentials.currentSince and
//     previousAcceptedUntil, emits SecretRotated and requeues at the previous secret's end.
//     Every replica's registry reads the state (only when the OAuthClient controls it) and,
//     when the client Secret changed and the state does not say so yet, keeps the recorded
//     secret working for a grace period from then, so no replica refuses the old secret while
//     the leader catches up. A state Secret the client does not control is never used nor
//     written: Ready=False, SecretConflict (served without a previous secret). Without
//     spec.secretRotation the state is emptied and status.credentials removed, so turning it on
//     again never revives a secret changed meanwhile.
//   - Last uses: every replica records, through server/credentialuse, the first use per minute
//     of each client's current and previous secret and flushes them into the leased store
//     (Options.CredentialUses); a leader-only Runnable (credential_status.go) takes them every
//     minute and patches status.credentials.currentLastUsed and previousLastUsed, to the minute
//     and only forward, of the OAuthClient that serves the client ID (indexClientID, Ready). Only
//     clients with spec.secretRotation are written: one status patch a minute per busy client is
//     a cost worth asking for.
//   - An invalid spec is a TerminalError (no retry until the resource changes); everything else
//     that fails returns its error and is retried with backoff. Missing Secrets are waited for
//     through the Secret watch, not by polling.
//   - No finalizers: the registry is in memory and forgets a client on the delete event; the
//     generated Secret is garbage-collected through its ownerReference.
//   - A key Secret that cannot be parsed is never overwritten (that would invalidate every issued
//     token): the leader reports it (log and Warning Event) and the replicas keep their keys. A
//     key Secret that was deleted is recreated from the keys the leader's keyring loaded
//     (KeyLoader.Set), for the same reason (Warning Event SigningKeysRestored); new keys are
//     generated only when none was ever loaded.
//   - Events are emitted only after the status they describe was written.
//   - ProtectedResources (protectedresource_controllers.go): the registry controller resolves
//     allowedClients names (existing or not: a client created later under that name is allowed)
//     plus the OAuthClients of the resource's namespace its selector matches, from the cache
//     (namespace + label selector). It re-resolves when an OAuthClient is created, deleted or
//     relabelled: the mapping costs two index lookups (resources naming the client;
//     resources of its namespace with a selector), whatever the number of clients. The
//     namespace's OAuthClientPolicies apply (allowedAudiences against spec.audience,
//     PolicyViolation: not served), as for a client's audiences. Of the resources claiming one
//     audience the earliest created (registry.Precedes) holds it; the others are
//     AudienceConflict with a Warning Event. The leader writes the RFC 9728 metadata of a
//     resource that holds its audience into the ConfigMap <name>-oauth-protected-resource (a
//     controller reference; a foreign ConfigMap of that name is never adopted), read with the
//     API reader and watched metadata-only, so ConfigMap data is never cached.
//   - RBAC: the ClusterRole (markers in setup.go) grants only what is needed across namespaces:
//     Secrets get/list/watch/create/update (the code updates only Secrets an OAuthClient
//     controls), ConfigMaps get/list/watch/create/update/patch/delete (only the metadata ConfigMaps a
//     ProtectedResource controls are written), events.k8s.io Events, the CRDs (WorkloadIssuers and their status too); with
//     watchNamespaces the chart moves the Secret and OAuthClient rules into a Role per watched
//     namespace (hack/chart-sync.sh splits them out). Leases,
//     core Events (leader
//     election) and update of the key Secret are in namespaced Roles written by hand
//     (config/rbac, charts/latchkey/templates/rbac.yaml), because the namespace is an install
//     choice.
//   - Events use the events.k8s.io/v1 API (manager.GetEventRecorder), one per Ready transition
//     plus SecretGenerated, SecretRotated and SigningKeysGenerated.
//   - Propagation (propagation.go, propagation_status.go, signingkeys_propagation.go): every
//     replica writes one Lease of its own (latchkey-replica-<name>) with, per kind and for the
//     Secrets its registry reads, a watermark: the resourceVersion up to which its registry took
//     every change in (Readiness.takeIn records what each registry reconcile took in, Secrets
//     included; a pending object bounds the watermark from below its change, so churn does not
//     stall it), and the key each algorithm signs with; at most once a second and only on a
//     change or renewal, so a burst of changes costs O(replicas) writes. The OAuthClientPolicy
//     registry controller re-evaluates a policy's clients before the policy counts as taken in
//     (one client's registry reconciles never overlap). The leader compares each object's target
//     (the resourceVersion at which it first saw the generation, remembered in memory: status
//     writes must not move it; plus its Secrets' resourceVersions) with the live Leases and
//     patches status.served and Propagated (optimistic lock) only when they change, waiting up to
//     propagationSettle for a complete count first. One timer (liveReplicaWatch) tells every
//     propagation controller when a Lease expired, since renewals are filtered out of their
//     watches. The key Secret gets the summary of the signing keys (served count and each
//     replica's keys).
//   - Status patches carry an optimistic lock (a merge patch replaces the conditions list whole);
//     retryConflicts turns a lost race into a quiet requeue.
//
// This package imports api/, server/registry, server/keys, server/store (the CredentialUse
// type), server/assertion and server/workload (the key sets of WorkloadIssuers, built as the
// server builds them).
package controllers
