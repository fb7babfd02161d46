// Package manifests is the embedded default's source of truth: it reads OAuthClient, Scope, User,
// WorkloadIssuer, OAuthClientPolicy, ProtectedResource and Secret manifests from a folder (no cluster), converts them with controllers/convert (the one
// code path from resource to registry value that the reconcilers use too), decides what to serve
// with controllers/feed (the one feed policy the cluster's registry controllers apply too) and
// keeps the registry equal to the folder, reloading when a file changes.
//
// Decisions:
//   - Files ending in .yaml, .yml or .json are read, in sub-folders too, with no size limit; each
//     may hold many documents. Documents of other kinds (a kustomization.yaml, a Namespace) are
//     skipped. Files are parsed in parallel (one per CPU); a YAML document is converted to JSON
//     once (strictly: a duplicate field is an error), a document in JSON form (as a generator
//     writes them) is decoded as it is, several times faster.
//   - A load is published as one registry snapshot (registry.Update): readers see the folder
//     before or after it, never half of it, and a million clients cost one publish. When the
//     context ends during a load (SIGTERM), Load returns its error having published nothing, and
//     the server stops at once.
//   - Between loads the loader keeps the contents of each file that parsed (to parse again should
//     it fail to parse later) and the sets of served sources, not the parsed objects.
//   - A namespaced object without a namespace is in "default", as kubectl would put it.
//   - The API server's defaulting and CEL validation do not run here; convert applies the same
//     defaults and refuses what it cannot serve (InvalidSpec: not served).
//   - As in a cluster, a Confidential client whose Secret (or key) is missing is served without
//     a secret: it holds its client ID and cannot authenticate until the Secret is added. A User
//     whose password Secret is missing is served and cannot log in. Nothing is written back to
//     the folder: a Generate client needs its Secret in the folder (the warning names it). So
//     does a private_key_jwt client with keyPolicy Generate: it is served without keys (it holds
//     its client ID, no assertion verifies) until a Secret of that name holds its public keys, and
//     the warning says so; a key Secret generated in a cluster works as it is. A previous key in
//     such a Secret is dropped when its previous-until has passed at a load (not between loads).
//   - Contested names follow the cluster's rule (feed.Contests, registry.Precedes: earliest
//     creation, then the smaller source key). Files carry no creationTimestamp (one written in a
//     file is ignored, as the API server ignores it), so the loader gives each source
//     ("Kind namespace/name") a creation time when it first sees it: on the first load in file
//     path order and document order, strictly increasing; later loads keep the times of the
//     sources they already knew and give new ones later times. So a client added later (in
//     any file, under any name) never takes over a client ID already served, and the earlier
//     client is served; when it goes, the next claimant takes over. A source removed from the
//     folder loses its time.
//   - WorkloadIssuers follow the cluster's feed policy: one whose jwksSecretRef Secret is not in
//     the folder (or holds no JWK set) is not served (SecretNotFound), never served without its
//     keys. Files have no metadata.generation: the loader numbers the values it puts, and puts an
//     issuer again only when its converted value changed, so a reload that changes nothing keeps
//     the key set the server fetched (and its cache) instead of fetching anew.
//   - Workload identities are reported as the cluster's leader reports them: a served client
//     bound to a WorkloadIssuer that is not defined in the folder (IssuerNotFound) or that does
//     not allow its namespace (NamespaceNotAllowed), and of the served clients bound to one
//     (issuer, subject) pair or ServiceAccount all but the holder (SubjectConflict; the holder
//     is chosen like a client ID's, so one added later never takes a pair over). Such clients
//     are served (they keep their client IDs); the server refuses their assertions.
//   - Everything the cluster reports in a Ready condition other than Ready (InvalidSpec,
//     SecretNotFound, ClientIDConflict, UsernameConflict, ScopeNameConflict, SubjectConflict,
//     IssuerNotFound, NamespaceNotAllowed), plus a resource defined twice (the first definition
//     is used), is reported on every load as a
//     warning-level line through the Warner the caller gives New, naming the file, the resource
//     and, for a conflict, both claimants and both files. main.go passes the server's zap
//     logger (*zap.SugaredLogger has Warnw); without one, warnings are logr Info lines with
//     level=warn. Messages never hold a secret value.
//   - The demo client (Demo) is the first client_credentials client, in file order, that is
//     served with a demo-marked Secret and holds its client ID, so the banner advertises the
//     client that answers.
//   - The first load fails on a file that does not parse (Load's error names the file and the
//     line: where the YAML parser stopped, or where the document starts for a strict-decoding
//     error such as an unknown field), so a server never starts on half of its folder. A reload
//     that fails to parse a file keeps serving what was loaded before for that file (nothing for
//     a file that never parsed) and warns, naming the file and the error.
//   - Nothing the folder holds is logged at error level: every problem with a resource is a
//     warning (the server's zap logger prints no stack traces below panic).
//   - Watch debounces: changes within one debounce interval make one reload, and a folder that
//     keeps changing is still reloaded at most 10 intervals after its first change.
//   - Secret rotation (spec.secretRotation): the loader keeps each client's rotation state in
//     memory, advanced on every load by the leader's rule (convert.RotationState.Next), and
//     hands it to the conversion in the shape of the state Secret a cluster keeps. So a client
//     secret changed between loads leaves the previous one working until the grace period
//     after the load that saw the change; a restart, or a client left out of a load, forgets
//     it. A rotation state Secret in the folder is ignored. Nothing records last uses here.
//   - OAuthClientPolicies apply as in a cluster (controllers/policy.Evaluate): a client that
//     breaks a policy of its namespace is not served and is warned about with reason
//     PolicyViolation, naming the policy, the rule and the value. A policy policy.Check refuses
//     (no API server validated it) is warned about (reason InvalidSpec) and applies as far as it
//     can be read: its malformed patterns match nothing. The policy SetDefaultPolicy names
//     (latchkey serve --default-client-policy, in --namespace) applies to every namespace. The
//     embedded registrar asks AdmitRegistration, which checks against the policies of the last
//     load.
//   - ProtectedResources follow the cluster's policy: a selector is evaluated against the
//     OAuthClients of the folder in the resource's namespace on every load, the namespace's
//     OAuthClientPolicies apply (PolicyViolation), the resource the loader saw first holds a
//     contested audience (AudienceConflict is warned about), and named clients the folder does
//     not hold and owned scopes no served Scope defines are warned about (they are served).
//   - Secrets are kept as decoded; stringData is read by convert.SecretData, the one place that
//     merges it (data wins), as for Secrets read from a cluster.
package manifests
