#!/usr/bin/env bash
# Installs the npm packages of a folder from its package-lock.json (npm ci), for the tests that
# run Node clients (test/node):
#
#   hack/npm-ci.sh test/node
#
# Installs npm first (Debian's npm package) when node is there without it.
set -euo pipefail

dir="${1:?usage: hack/npm-ci.sh DIR}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v npm >/dev/null 2>&1; then
  "$root/hack/apt-install.sh" npm
fi
cd "$root/$dir"
npm ci --no-audit --no-fund --loglevel=error
