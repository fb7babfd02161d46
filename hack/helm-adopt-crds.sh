#!/usr/bin/env bash
# Marks the oauth.latchkey.dev CRDs of a cluster as belonging to a Helm release, so that
# `helm install RELEASE charts/latchkey --namespace NAMESPACE` adopts them instead of failing with
# "exists and cannot be imported into the current release" (the CRDs are chart templates).
# hack/run-cluster.sh runs it for the release latchkey (RELEASE) in the namespace latchkey
# (NAMESPACE); the chart tests run it too.
#
#   hack/helm-adopt-crds.sh KUBECTL KUBECONFIG RELEASE NAMESPACE
set -euo pipefail

kubectl="${1:?usage: helm-adopt-crds.sh KUBECTL KUBECONFIG RELEASE NAMESPACE}"
kubeconfig="${2:?usage: helm-adopt-crds.sh KUBECTL KUBECONFIG RELEASE NAMESPACE}"
release="${3:?usage: helm-adopt-crds.sh KUBECTL KUBECONFIG RELEASE NAMESPACE}"
namespace="${4:?usage: helm-adopt-crds.sh KUBECTL KUBECONFIG RELEASE NAMESPACE}"

mapfile -t crds < <("$kubectl" --kubeconfig "$kubeconfig" get crd -o name | grep '\.oauth\.latchkey\.dev$')
if [ "${#crds[@]}" -eq 0 ]; then
  echo "helm-adopt-crds: no oauth.latchkey.dev CRDs in the cluster" >&2
  exit 1
fi
"$kubectl" --kubeconfig "$kubeconfig" label --overwrite "${crds[@]}" app.kubernetes.io/managed-by=Helm >/dev/null
"$kubectl" --kubeconfig "$kubeconfig" annotate --overwrite "${crds[@]}" \
  meta.helm.sh/release-name="$release" meta.helm.sh/release-namespace="$namespace" >/dev/null
echo "helm-adopt-crds: ${#crds[@]} CRDs belong to the Helm release $release (namespace $namespace)"
