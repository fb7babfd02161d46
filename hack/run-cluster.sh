#!/usr/bin/env bash
# `make run-cluster`: a local control plane (etcd + kube-apiserver from bin/k8s), the CRDs, the
# samples (config/samples) and the operator running against it. Ctrl-C stops everything.
# Extra arguments go to `latchkey serve`. Set SAMPLES=0 to skip applying the samples.
#
#   export KUBECONFIG=$PWD/bin/run-cluster/kubeconfig    # from the repository root, in another terminal
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
state="$root/bin/run-cluster"
kubeconfig="$state/kubeconfig"
namespace="${NAMESPACE:-latchkey}"
kubectl=("$root/bin/k8s/kubectl" --kubeconfig "$kubeconfig")
export KUBEBUILDER_ASSETS="$root/bin/k8s"

mkdir -p "$state"
rm -f "$kubeconfig"
go build -o "$state/run-cluster" ./hack/run-cluster
# In a session of its own, so Ctrl-C reaches only the operator: the control plane outlives it
# (no "leader election lost" at shutdown) and is stopped by the EXIT trap.
setsid "$state/run-cluster" --kubeconfig "$kubeconfig" --crds config/crd/bases &
control_plane=$!
trap 'kill "$control_plane" 2>/dev/null || true; wait "$control_plane" 2>/dev/null || true' EXIT

for _ in $(seq 1 240); do
  [ -f "$kubeconfig" ] && break
  if ! kill -0 "$control_plane" 2>/dev/null; then
    echo "run-cluster: the control plane exited before it was ready" >&2
    exit 1
  fi
  sleep 0.5
done
[ -f "$kubeconfig" ] || { echo "run-cluster: the control plane did not start in 2 minutes" >&2; exit 1; }

"${kubectl[@]}" create namespace "$namespace" --dry-run=client -o yaml | "${kubectl[@]}" apply -f -
# The CRDs belong to the Helm release latchkey (RELEASE) in the namespace: `helm install latchkey
# charts/latchkey --namespace latchkey` adopts them instead of failing on CRDs that exist.
hack/helm-adopt-crds.sh "$root/bin/k8s/kubectl" "$kubeconfig" "${RELEASE:-latchkey}" "$namespace"
if [ "${SAMPLES:-1}" != 0 ]; then
  "${kubectl[@]}" apply -f config/samples
fi

echo "run-cluster: starting the operator (namespace $namespace); Ctrl-C stops it and the control plane"
echo "run-cluster: to use kubectl in another terminal: export KUBECONFIG=$kubeconfig"
go run . serve --kubeconfig "$kubeconfig" --namespace "$namespace" --leader-elect "$@"
