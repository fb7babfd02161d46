#!/usr/bin/env bash
# Builds the real control-plane binaries the tests run against (kube-apiserver, kubectl, etcd)
# from the Go module proxy and caches them under bin/k8s. Skips any binary already present.
#
# kube-apiserver and kubectl come from a throwaway wrapper module that requires k8s.io/kubernetes
# with every staging module (k8s.io/api, k8s.io/client-go, ...) replaced by its published v0.x
# twin; etcd comes from go.etcd.io/etcd/server/v3. Nothing downloaded or built is committed.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${ENVTEST_BIN_DIR:-$root/bin/k8s}"
mkdir -p "$out"

staging_version="v0${K8S_VERSION#v1}" # v1.36.3 -> v0.36.3

need() { [ -x "$out/$1" ] || return 0; return 1; }

build_kube() {
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  local gomod
  gomod="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    echo "module latchkey.dev/envtest-wrapper"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # Every "k8s.io/x => ./staging/src/k8s.io/x" replace of k8s.io/kubernetes points at the
    # published module of the same name and the matching v0 version.
    sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*#replace \1 => \1 '"$staging_version"'#p' "$gomod"
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'GO'
//go:build tools

package tools
GO
  # Stamp the version as Kubernetes' own build does, so /version and `kubectl version` report
  # $K8S_VERSION instead of v0.0.0-master (clients such as helm check it).
  local major minor ldflags="-s -w" pkg
  IFS=. read -r major minor _ <<<"${K8S_VERSION#v}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
  done
  (
    cd "$work"
    export GOFLAGS=-mod=mod
    for cmd in kube-apiserver kubectl; do
      if need "$cmd"; then
        echo "building $cmd $K8S_VERSION (several minutes on 2 cores)" >&2
        CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
      fi
    done
  )
}

build_etcd() {
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  printf 'module latchkey.dev/etcd-wrapper\n\ngo %s\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')" "$ETCD_VERSION" >"$work/go.mod"
  (
    cd "$work"
    export GOFLAGS=-mod=mod
    echo "building etcd $ETCD_VERSION" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/etcd" go.etcd.io/etcd/server/v3
  )
}

if need kube-apiserver || need kubectl; then build_kube; fi
if need etcd; then build_etcd; fi
echo "$out"
