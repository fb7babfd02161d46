// Package registry holds the plain values the server answers from: clients, scopes and users,
// converted from Kubernetes resources (or manifests on disk) by controllers/.
//
// Writers (reconcilers, the manifest loader) call the Put/Delete methods, or Update to publish
// many writes as one snapshot (the loader publishes a whole load at once); each publish builds a
// new immutable Snapshot and swaps it in atomically (atomic.Pointer), so the request path reads
// without locks and never touches the API server. Writes that arrive while a snapshot is being
// built wait and are published together as the next one (group commit), so a burst of informer
// events costs a few publishes, and every writer still returns only once its write is served.
//
// Publishing costs what changed, never the whole registry (a million clients load in one
// Update): every map and index is a copy-on-write map of 1,024 shards (cowMap), and a
// transaction copies the shard table and each shard it changes once. Every index is maintained
// incrementally: a contested name (client ID, scope name, username, user subject, workload
// identity) keeps its holder and its other claimants (claimIndex), so a write or a delete looks
// at the claimants of the names it touches only. We looked for a persistent map in the Go
// ecosystem: github.com/benbjohnson/immutable (HAMT) has had no release since 2023 and its lookups
// chase several nodes at a million entries; hashicorp/go-immutable-radix allocates a watch
// channel per node, several times the 1 KB per client we allow. Sharded Go maps keep a lookup at
// one hash and one map probe.
//
// Per-client memory: clients are stored as given, with their repeated values interned (the
// strings through package unique; lists such as grant types, scopes, audiences and redirect URIs
// shared by all clients that list the same ones), about 700 bytes per typical client at 100k
// and 1M (BenchmarkMemoryPerClient).
//
// Names (WithClientNameIndex, which main sets when dynamic registration is on): clients are
// also indexed by a key of their display name and of their client ID, so that a registration's
// client_name check looks its name up (ClientsNamed) instead of reading every client; about
// 95 bytes more per client (BenchmarkLoadWithNameIndex in server/oauth2/register), nothing
// without the option.
//
// Garbage collection: every cycle marks the whole registry, so what a million clients cost per
// request is their marking, not their lookups (flat). Clients are allocated from slabs of 256 and
// their source keys and client IDs copied into shared 64 KiB chunks, so a million clients are a
// few thousand objects marked in address order instead of three million scattered ones: with 1M
// clients loaded, client_credentials costs about the same CPU per request as with 1k
// (BenchmarkTokenEndpointWithClients in server/oauth2/handler). A slab or chunk lives while any
// client in it does, so replaced and deleted clients leave stale values behind; once they are
// at least 1,024 and half as many as the clients, the publish compacts (puts every client again
// into fresh slabs): memory stays bounded, at an amortised cost of a few puts per write.
package registry
