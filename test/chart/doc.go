// Package chart installs the Helm chart (charts/latchkey) onto a real kube-apiserver and etcd (the
// envtest binaries): it renders the chart with the helm built into bin/, applies every object with
// the built kubectl, and runs the latchkey binary with the Deployment's container args and a
// kubeconfig that impersonates the chart's ServiceAccount, so every API call goes through the
// chart's RBAC.
package chart
