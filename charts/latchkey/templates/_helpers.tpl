{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "latchkey.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name when it contains the chart name, so that
`helm install latchkey charts/latchkey` serves at latchkey.<namespace>.svc.
*/}}
{{- define "latchkey.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "latchkey.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels of every object: commonLabels, then the chart's own (which win on a clash). */}}
{{- define "latchkey.labels" -}}
{{- $own := include "latchkey.ownLabels" . }}
{{- with include "latchkey.commonLabels" (dict "root" . "own" $own) }}{{ . }}
{{ end }}
{{- $own }}
{{- end }}

{{/* commonLabels (of .root) without the keys of .own, a YAML map of a template's own labels. */}}
{{- define "latchkey.commonLabels" -}}
{{- $own := .own | fromYaml }}
{{- $common := dict }}
{{- range $k, $v := .root.Values.commonLabels }}
{{- if not (hasKey $own $k) }}{{ $_ := set $common $k $v }}{{ end }}
{{- end }}
{{- with $common }}{{ toYaml . | trim }}{{ end }}
{{- end }}

{{- define "latchkey.ownLabels" -}}
helm.sh/chart: {{ include "latchkey.chart" . }}
{{ include "latchkey.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: latchkey
{{- end }}

{{- define "latchkey.selectorLabels" -}}
app.kubernetes.io/name: {{ include "latchkey.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "latchkey.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "latchkey.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository@digest when image.digest is set (the tag is then ignored), else repository:tag. */}}
{{- define "latchkey.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The public issuer URL: .Values.issuer, or the in-cluster Service URL. */}}
{{- define "latchkey.issuer" -}}
{{- if .Values.issuer }}
{{- .Values.issuer | trimSuffix "/" }}
{{- else if eq (int .Values.service.port) 80 }}
{{- printf "http://%s.%s.svc" (include "latchkey.fullname" .) .Release.Namespace }}
{{- else }}
{{- printf "http://%s.%s.svc:%d" (include "latchkey.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}
{{- end }}

{{- define "latchkey.registrationSecretName" -}}
{{- default (printf "%s-registration" (include "latchkey.fullname" .)) .Values.registration.initialTokenSecret.name }}
{{- end }}

{{- define "latchkey.dpopNonceSecretName" -}}
{{- default (printf "%s-dpop-nonce" (include "latchkey.fullname" .)) .Values.dpop.nonce.secret.name }}
{{- end }}

{{- define "latchkey.upstreamTokenKeySecretName" -}}
{{- default (printf "%s-upstream-token-key" (include "latchkey.fullname" .)) .Values.upstream.tokenKey.secret.name }}
{{- end }}

{{/* Checks across values that values.schema.json cannot express. */}}
{{- define "latchkey.validate" -}}
{{- if and (eq .Values.store.type "memory") (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) }}
{{- fail "store.type memory keeps codes and refresh tokens in one process: set replicaCount to 1 (and autoscaling.enabled false), or use store.type redis" }}
{{- end }}
{{- if and (eq .Values.store.type "redis") (not .Values.store.redis.address) }}
{{- fail "store.type redis needs store.redis.address (host:port)" }}
{{- end }}
{{- if and (eq .Values.store.type "memory") .Values.strategy.type (ne .Values.strategy.type "Recreate") }}
{{- fail (printf "strategy.type %s: store.type memory keeps codes and refresh tokens in one process, so two Pods must never run at once; use Recreate (or store.type redis)" .Values.strategy.type) }}
{{- end }}
{{- if and .Values.store.redis.caSecret.name (not .Values.store.redis.tls.enabled) }}
{{- fail "store.redis.caSecret needs store.redis.tls.enabled true" }}
{{- end }}
{{- if and (or .Values.store.redis.tls.serverName .Values.store.redis.tls.insecureSkipVerify) (not .Values.store.redis.tls.enabled) }}
{{- fail "store.redis.tls.serverName and insecureSkipVerify need store.redis.tls.enabled true" }}
{{- end }}
{{- if and .Values.dpop.nonce.required (not .Values.dpop.nonce.enabled) }}
{{- fail "dpop.nonce.required needs dpop.nonce.enabled true (the nonces come from the shared secret)" }}
{{- end }}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) }}
{{- fail "httpRoute.enabled needs httpRoute.parentRefs: the Gateways the route attaches to" }}
{{- end }}
{{- if and .Values.registration.enabled .Values.watchNamespaces }}
{{- $ns := default .Release.Namespace .Values.registration.namespace }}
{{- if not (has $ns (include "latchkey.watchedNamespaces" . | fromJsonArray)) }}
{{- fail (printf "registration.namespace %s is not watched: add it to watchNamespaces" $ns) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The namespaces the server watches with watchNamespaces set (a JSON array): the listed ones and
the release namespace (the signing key Secret lives there), each once. */}}
{{- define "latchkey.watchedNamespaces" -}}
{{- append .Values.watchNamespaces .Release.Namespace | uniq | toJson }}
{{- end }}
