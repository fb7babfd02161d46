// Package feed is the one policy for feeding the server's registry from Latchkey resources. The
// cluster's registry controllers (controllers/) and the embedded mode's manifest loader
// (controllers/manifests) both call it with what controllers/convert returned, so both modes
// serve the same things, refuse the same things and say the same thing about them.
//
// What it decides:
//   - Client, User, Scope and WorkloadIssuer turn a conversion result into a Decision: Serve (put the value into
//     the registry), ServeWithoutCredentials (put it, though its Secret or key is missing: a
//     Confidential client keeps its client ID but cannot authenticate, a User keeps its username
//     but cannot log in) or Withdraw (delete the source from the registry: the spec is invalid).
//     The Decision carries the Ready condition reason (v1alpha1.Reason*) and a message; the
//     cluster's leader writes them into the condition, the loader logs them. A WorkloadIssuer
//     whose key Secret is missing is withdrawn (SecretNotFound), never served without its keys:
//     the server would otherwise look for keys by discovery at the issuer URL.
//   - Workload identities: SubjectConflict words the report about a client bound to an (issuer,
//     subject) pair, or a ServiceAccount, that an earlier client holds (the holder is
//     registry.Precedes' choice among the served clients bound to it, as for client IDs); Binding
//     says whether a client can use its WorkloadIssuer at all (IssuerNotFound when it does not
//     exist, NamespaceNotAllowed when its allowedNamespaces leave the client's namespace out).
//     Such clients are served (they keep their client ID); the server refuses their assertions.
//   - Who holds a contested name (a client ID, username or scope name): Holds and Contests apply
//     registry.Precedes (earliest creation, then the smaller source key), the rule the registry
//     itself applies, so what a report says is what every replica serves. The claimants that do
//     not hold the name stay in the registry (the next one takes over when the holder goes);
//     ClientIDConflict, UsernameConflict and ScopeNameConflict word the report.
//   - ScopesResolved: the scopes a client lists that are neither built-in OIDC scopes
//     (server/oauth2.IsBuiltinScope) nor defined by a Scope (UnknownScope), for the cluster's
//     ScopesResolved condition and the loader's warning. It does not gate Ready: the client is
//     served, and the server refuses requests for such a scope with invalid_scope.
//
// Decisions:
//   - An error convert does not classify (neither ErrInvalidSpec nor ErrSecretNotFound; e.g. a
//     caller handing it the wrong Secret) is Withdraw with an empty Reason: callers report it as
//     an error, not a spec problem, and a retry would fail alike (convert is pure).
//   - Messages never hold a secret value: they are convert's errors (fixed texts, names of
//     Secrets and keys) and names.
//
// It imports api/, controllers/convert, server/registry and server/oauth2 (the built-in scopes);
// it runs without a cluster (the manifest loader uses it), which depguard keeps true
// (.golangci.yml).
package feed
