#!/usr/bin/env bash
# Copies what controller-gen generates into the Helm chart, so the chart never drifts from config/:
#
#   config/crd/bases/*.yaml  -> charts/latchkey/templates/crds/*.yaml
#       (behind .Values.crds.enabled, with helm.sh/resource-policy: keep when .Values.crds.keep)
#   config/rbac/role.yaml    -> charts/latchkey/templates/clusterrole.yaml (its rules) and
#                               charts/latchkey/templates/_namespaced-rules.tpl (those on Secrets,
#                               ConfigMaps, OAuthClients, OAuthClientPolicies and ProtectedResources,
#                               split out for .Values.watchNamespaces)
#   config/admission/oauthclientpolicy.yaml -> charts/latchkey/templates/oauthclientpolicy-admission.yaml
#
# Run by `make manifests` and `make chart-crds`; `make verify` fails when the output is not committed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="$root/charts/latchkey"
crd_out="$chart/templates/crds"

mkdir -p "$crd_out"
rm -f "$crd_out"/*.yaml
for src in "$root"/config/crd/bases/*.yaml; do
  dst="$crd_out/$(basename "$src")"
  {
    echo "{{- /* Generated from config/crd/bases/$(basename "$src") by hack/chart-sync.sh. DO NOT EDIT. */}}"
    echo "{{- if .Values.crds.enabled }}"
    # Inside the CRD's top-level metadata: add the keep policy to its annotations and the chart's
    # labels just before its name (controller-gen writes annotations, then name).
    awk '
      /^metadata:$/ && !done { inmeta = 1; print; next }
      inmeta && /^  annotations:$/ {
        print
        print "    {{- if .Values.crds.keep }}"
        print "    helm.sh/resource-policy: keep"
        print "    {{- end }}"
        annotated = 1
        next
      }
      inmeta && /^  name: / {
        print "  labels:"
        print "    {{- include \"latchkey.labels\" . | nindent 4 }}"
        print
        inmeta = 0; done = 1
        next
      }
      { print }
      END { if (!done || !annotated) { print "chart-sync: unexpected CRD layout in " FILENAME > "/dev/stderr"; exit 1 } }
    ' "$src"
    echo "{{- end }}"
  } >"$dst"
  if grep -q '{{' "$src"; then
    echo "chart-sync: $src contains '{{', which Helm would read as a template" >&2
    exit 1
  fi
done

role="$root/config/rbac/role.yaml"
# The ClusterRole's rules are split by resource: the rules on namespaced resources that live in the
# watched namespaces (Secrets, ConfigMaps, OAuthClients, OAuthClientPolicies and ProtectedResources, with their subresources) go to the named template
# latchkey.namespacedRules (templates/_namespaced-rules.tpl), which the ClusterRole includes when
# .Values.watchNamespaces is empty and rbac.yaml puts in a Role per watched namespace otherwise.
# Everything else (cluster-scoped kinds, TokenReviews, Events, non-resource URLs) stays in the
# ClusterRole. A rule naming both kinds of resources is split in two with the same groups and verbs.
split_rules() { # $1: "cluster" or "namespaced"
  awk -v want="$1" '
    function namespaced(r) { return r ~ /^(secrets|configmaps|oauthclients|oauthclientpolicies|protectedresources)(\/|$)/ }
    function flush(   i, k, nsr, cr, n) {
      if (!nkeys) return
      if (!("resources" in items)) { if (want == "cluster") emit(""); nkeys = 0; delete items; return }
      n = split(items["resources"], res, "\n")
      nsr = ""; cr = ""
      for (i = 1; i <= n; i++) {
        if (res[i] == "") continue
        if (namespaced(res[i])) nsr = nsr res[i] "\n"; else cr = cr res[i] "\n"
      }
      if (want == "namespaced" && nsr != "") emit(nsr)
      if (want == "cluster" && cr != "") emit(cr)
      nkeys = 0; delete items
    }
    function emit(resources,   i, k, j, m, vals, first) {
      for (i = 1; i <= nkeys; i++) {
        k = keys[i]
        printf "%s%s:\n", (i == 1 ? "- " : "  "), k
        m = split((k == "resources" && resources != "") ? resources : items[k], vals, "\n")
        for (j = 1; j <= m; j++) if (vals[j] != "") printf "  - %s\n", vals[j]
      }
    }
    /^rules:/ { p = 1; next }
    /^---/ && p { exit }
    !p { next }
    /^- [A-Za-z]+:$/ { flush(); key = substr($0, 3, length($0) - 3); keys[++nkeys] = key; items[key] = ""; next }
    /^  [A-Za-z]+:$/ { key = substr($0, 3, length($0) - 3); keys[++nkeys] = key; items[key] = ""; next }
    /^  - / { items[key] = items[key] substr($0, 5) "\n"; next }
    { print "chart-sync: unexpected line in role.yaml: " $0 > "/dev/stderr"; exit 1 }
    END { flush() }
  ' "$role"
}
{
  echo "{{- /* Generated from config/rbac/role.yaml by hack/chart-sync.sh. DO NOT EDIT. */}}"
  echo "{{- if .Values.rbac.create }}"
  echo "apiVersion: rbac.authorization.k8s.io/v1"
  echo "kind: ClusterRole"
  echo "metadata:"
  echo "  name: {{ include \"latchkey.fullname\" . }}-manager"
  echo "  labels:"
  echo "    {{- include \"latchkey.labels\" . | nindent 4 }}"
  if [ -f "$role" ]; then
    # The ClusterRole is the first document; namespaced Roles (markers with namespace=) would
    # follow it and need a template of their own.
    if [ "$(grep -c '^kind: ' "$role")" -gt 1 ]; then
      echo "chart-sync: $role has more than one Role; only the ClusterRole is copied" >&2
    fi
    echo "rules:"
    split_rules cluster
    echo "{{- if not .Values.watchNamespaces }}"
    echo "{{ include \"latchkey.namespacedRules\" . }}"
    echo "{{- end }}"
  else
    echo "rules: [] # config/rbac/role.yaml does not exist yet (no +kubebuilder:rbac markers)"
  fi
  echo "{{- end }}"
} >"$chart/templates/clusterrole.yaml"
{
  echo "{{- /* Generated from config/rbac/role.yaml by hack/chart-sync.sh. DO NOT EDIT. */}}"
  echo "{{- /* The ClusterRole's rules on Secrets, ConfigMaps, OAuthClients, OAuthClientPolicies and ProtectedResources: cluster-wide in clusterrole.yaml,"
  echo "or in a Role per watched namespace (rbac.yaml) when .Values.watchNamespaces is set. */}}"
  echo "{{- define \"latchkey.namespacedRules\" -}}"
  if [ -f "$role" ]; then split_rules namespaced; fi
  echo "{{- end }}"
} >"$chart/templates/_namespaced-rules.tpl"

# config/admission/oauthclientpolicy.yaml -> charts/latchkey/templates/oauthclientpolicy-admission.yaml
# (behind .Values.clientPolicy.admission, and only when the chart installs the CRDs or the
# cluster has OAuthClientPolicy; named after the release).
admission="$root/config/admission/oauthclientpolicy.yaml"
if grep -q '{{' "$admission"; then
  echo "chart-sync: $admission contains '{{', which Helm would read as a template" >&2
  exit 1
fi
{
  echo "{{- /* Generated from config/admission/oauthclientpolicy.yaml by hack/chart-sync.sh. DO NOT EDIT. */}}"
  echo "{{- /* Only where OAuthClientPolicy exists: with failurePolicy Fail, a paramKind the API server does not know refuses every OAuthClient write. */}}"
  echo "{{- if and .Values.clientPolicy.admission (or .Values.crds.enabled (.Capabilities.APIVersions.Has \"oauth.latchkey.dev/v1alpha1/OAuthClientPolicy\")) }}"
  grep -v '^#' "$admission" | awk '
    /^metadata:$/ { print; inmeta = 1; next }
    inmeta && /^  name: latchkey-(oauthclientpolicy|protectedresource-audience)$/ {
      print "  name: {{ include \"latchkey.fullname\" . }}-" substr($2, length("latchkey-") + 1)
      print "  labels:"
      print "    {{- include \"latchkey.labels\" . | nindent 4 }}"
      inmeta = 0; n++
      next
    }
    /^  policyName: latchkey-(oauthclientpolicy|protectedresource-audience)$/ {
      print "  policyName: {{ include \"latchkey.fullname\" . }}-" substr($2, length("latchkey-") + 1); n++
      next
    }
    { print }
    END { if (n != 6) { print "chart-sync: unexpected layout of " FILENAME > "/dev/stderr"; exit 1 } }
  '
  echo "{{- end }}"
} >"$chart/templates/oauthclientpolicy-admission.yaml"
