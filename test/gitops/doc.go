// Package gitops tests what docs/gitops.md tells GitOps tools: it runs the Argo CD health check
// (the Lua script of the document, as written there) with gopher-lua, Argo CD's Lua VM, on
// resources the controllers reconciled on a real kube-apiserver and etcd, read back as JSON.
package gitops
