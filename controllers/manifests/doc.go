// Package manifests is the embedded default's source of truth: it reads OAuthClient, Scope, User
// and Secret manifests from a folder (no cluster), converts them with controllers/convert (the one
// code path from resource to registry value that the reconcilers use too) and keeps the registry
// equal to the folder, reloading when a file changes.
//
// Decisions:
//   - Files ending in .yaml, .yml or .json are read, in sub-folders too; each may hold many
//     documents. Documents of other kinds (a kustomization.yaml, a Namespace) are skipped.
//   - A namespaced object without a namespace is in "default", as kubectl would put it.
//   - The API server's defaulting and CEL validation do not run here; convert applies the same
//     defaults and refuses what it cannot serve, and the loader logs why an object was skipped.
//   - Nothing is written back to the folder: an OAuthClient with the Generate policy and no
//     Secret in the folder is skipped with a message saying which Secret to add.
//   - A reload that fails to parse a file keeps serving what was loaded before for that file.
//   - Watch debounces: changes within one debounce interval make one reload, and a folder that
//     keeps changing is still reloaded at most 10 intervals after its first change.
//   - Secrets are kept as decoded; stringData is read by convert.SecretData, the one place that
//     merges it (data wins), as for Secrets read from a cluster.
//
// It must not be imported by server/.
package manifests
