#!/usr/bin/env bash
# Builds a Go command from the Go module proxy into bin/ and links it under its plain name:
#
#   hack/go-install.sh NAME PACKAGE VERSION [LDFLAGS]
#   hack/go-install.sh helm helm.sh/helm/v4/cmd/helm v4.3.1
#
# The binary lands in bin/NAME-VERSION and bin/NAME points at it, so bumping VERSION in the
# Makefile rebuilds and an unchanged VERSION costs nothing. It first tries `go install pkg@v`;
# when that refuses (a module whose go.mod has replace directives), it builds the package from a
# throwaway wrapper module that requires it instead. Nothing built here is committed.
set -euo pipefail

name="$1" pkg="$2" version="$3" ldflags="${4:-}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bindir="${LOCALBIN:-$root/bin}"
target="$bindir/$name-$version"
mkdir -p "$bindir"

if [ ! -x "$target" ]; then
  echo "building $name $version from $pkg (first time only)" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  export CGO_ENABLED=0
  if ! GOBIN="$work/gobin" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w $ldflags" "$pkg@$version" 2>"$work/install.log"; then
    echo "go install refused ($(tail -n 1 "$work/install.log")); building from a wrapper module" >&2
    mkdir -p "$work/wrapper"
    (
      cd "$work/wrapper"
      printf 'module latchkey.dev/tool-wrapper\n\ngo %s\n' \
        "$(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')" >go.mod
      export GOFLAGS=-mod=mod
      go get "$pkg@$version"
      go build -trimpath -ldflags "-s -w $ldflags" -o "$work/gobin/$(basename "$pkg")" "$pkg"
    )
  fi
  mv "$work/gobin/$(basename "$pkg")" "$target"
fi
ln -sfn "$(basename "$target")" "$bindir/$name"
