// Package chart installs the Helm chart (charts/latchkey) onto a real kube-apiserver and etcd (the
// envtest binaries): it renders the chart with the helm built into bin/, applies every object with
// the built kubectl, and runs the latchkey binary with the Deployment's container args and a
// kubeconfig that impersonates the chart's ServiceAccount, so every API call goes through the
// chart's RBAC.
//
// It also holds the chart's promises to its users: values render as documented and misspelt ones
// are refused with the key named (values.schema.json), the HTTPRoute passes the Gateway API's own
// CRD, helm install adopts the CRDs of make run-cluster (hack/helm-adopt-crds.sh), the commands of
// NOTES.txt get a token, the READMEs' helm commands render, the chart README's `$ helm`
// transcripts print what it shows and it lists every value, and the CRDs read well in kubectl
// explain (short names, enums named, even wrapping).
package chart
