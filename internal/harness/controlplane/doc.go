// Package controlplane is the Kubernetes part of the test harness: a real kube-apiserver and
// etcd started through controller-runtime's envtest, with Latchkey's CRDs installed, an admin
// user (system:masters) whose kubeconfig is written to a file, a client and the kubectl of the
// same build. Test packages start one control plane in TestMain and share it (Main is that
// TestMain for packages whose tests share controller-runtime managers too); hack/run-cluster
// starts one for a developer.
//
// The binaries (kube-apiserver, etcd, kubectl) come from KUBEBUILDER_ASSETS, else from
// <root>/bin/k8s; when they are missing there they are built with hack/envtest-binaries.sh
// through the harness's one policy for missing tools (harness.Provide), or Start fails saying
// what to run.
//
// It may import envtest, controller-runtime and client-go; it is kept apart from package harness
// so that tests which do not need a cluster do not link them. Nothing under server/ imports it.
package controlplane
