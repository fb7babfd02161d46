#!/usr/bin/env bash
# The install script of the harness's own tests: creates $PROVIDE_TARGET when it is set.
set -euo pipefail
if [ -n "${PROVIDE_TARGET:-}" ]; then
  printf '#!/bin/sh\n' >"$PROVIDE_TARGET"
  chmod +x "$PROVIDE_TARGET"
fi
