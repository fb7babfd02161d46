#!/usr/bin/env bash
# Installs the given Debian packages, but only those that are missing:
#
#   hack/apt-install.sh redis-server chromium
#
# Runs apt-get as root (or through sudo), non-interactively, without recommended packages. It
# waits for apt's lock rather than failing when another install (another test package) holds it.
set -euo pipefail

missing=()
for pkg in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
[ "${#missing[@]}" -gt 0 ] || exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "apt-install: need root to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "apt-install: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
wait_lock=(-o DPkg::Lock::Timeout=600)
"${sudo[@]}" apt-get "${wait_lock[@]}" update -qq
"${sudo[@]}" apt-get "${wait_lock[@]}" install -y -qq --no-install-recommends "${missing[@]}"
