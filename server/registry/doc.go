// Package registry holds the plain values the server answers from: clients, scopes and users,
// converted from Kubernetes resources (or manifests on disk) by controllers/.
//
// Writers (reconcilers, the manifest loader) call the Put/Delete methods; each write builds a
// new immutable Snapshot and swaps it in atomically, so the request path reads without locks and
// never touches the API server. Writes are serialised by a mutex and copy the changed map only.
//
// A client is stored under its source key (namespace/name of the resource) and indexed by its
// client ID. When two sources claim one client ID, the one created first (then the smaller source
// key) wins, deterministically, so every replica serves the same client; the leader's reconciler
// marks the other ClientIDConflict using the same rule (Wins). Usernames and scope names follow
// the same rule (Precedes), so whoever can create a User cannot shadow an existing "alice" by
// picking a smaller resource name; the leader marks the later one UsernameConflict or
// ScopeNameConflict.
//
// Each snapshot also indexes the CORS origins of the Public clients it serves (the winners of
// their client IDs): AllowsOrigin is one map lookup per request, never a scan of the clients.
// A client write changes the index only when the winner of a client ID with origins changes,
// and then copies the index (not the clients); other writes share the previous snapshot's. A
// Confidential client's AllowedOrigins are never indexed.
package registry
