#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZ_TIME (default 10s) each. Targets are discovered
# with `go test -list`, in packages whose test files declare a `func Fuzz...`. New failing inputs
# are written by go test to the package's testdata/fuzz/ directory: commit them as regressions.
set -euo pipefail

fuzztime="${FUZZ_TIME:-10s}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

dirs="$(git ls-files -co --exclude-standard -- '*_test.go' | xargs -r grep -l '^func Fuzz' | xargs -r -n1 dirname | sort -u)"
ran=0
for dir in $dirs; do
  pkg="./$dir"
  listing="$(go test "$pkg" -list '^Fuzz')" # fails loudly if the package does not compile
  for target in $(grep '^Fuzz' <<<"$listing" || true); do
    echo "=== fuzz $pkg $target ($fuzztime)"
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime"
    ran=$((ran + 1))
  done
done

echo "fuzz: ran $ran fuzz targets for $fuzztime each"
