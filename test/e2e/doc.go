// Package e2e runs the built latchkey binary as an operator against a real kube-apiserver and
// etcd (the envtest binaries from hack/envtest-binaries.sh), drives it with the built kubectl, and
// talks to it over HTTP with real OAuth clients, as a user would.
package e2e
