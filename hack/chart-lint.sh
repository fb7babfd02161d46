#!/usr/bin/env bash
# Lints and renders charts/latchkey with the helm built into bin/ (run by `make helm-lint`):
#   - helm lint --strict and helm template with the default values and each charts/latchkey/ci/*.yaml;
#   - each charts/latchkey/ci-invalid/*.yaml must FAIL to render, with the message given on its
#     first line ("# expect: <text>").
set -euo pipefail

helm="${1:?usage: chart-lint.sh HELM [CHART]}"
chart="${2:-charts/latchkey}"

"$helm" lint --strict "$chart"
"$helm" template latchkey "$chart" --namespace latchkey >/dev/null
for f in "$chart"/ci/*.yaml; do
  echo "chart-lint: $f"
  "$helm" lint --strict "$chart" --namespace latchkey -f "$f" >/dev/null
  "$helm" template latchkey "$chart" --namespace latchkey -f "$f" >/dev/null
done

failed=0
for f in "$chart"/ci-invalid/*.yaml; do
  expect="$(sed -n '1s/^# expect: //p' "$f")"
  if [ -z "$expect" ]; then
    echo "chart-lint: $f: first line must be '# expect: <message>'" >&2
    failed=1
    continue
  fi
  if out="$("$helm" template latchkey "$chart" --namespace latchkey -f "$f" 2>&1 >/dev/null)"; then
    echo "chart-lint: FAILED: $f rendered, but it must be rejected ($expect)" >&2
    failed=1
  elif ! grep -qF -- "$expect" <<<"$out"; then
    echo "chart-lint: FAILED: $f was rejected without '$expect':" >&2
    echo "$out" >&2
    failed=1
  else
    echo "chart-lint: $f rejected: $(grep -F -- "$expect" <<<"$out" | head -1)"
  fi
done
exit "$failed"
