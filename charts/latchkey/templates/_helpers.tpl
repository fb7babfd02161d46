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

{{- define "latchkey.labels" -}}
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

{{- define "latchkey.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
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

{{/* Checks across values that values.schema.json cannot express. */}}
{{- define "latchkey.validate" -}}
{{- if and (eq .Values.store.type "memory") (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) }}
{{- fail "store.type memory keeps codes and refresh tokens in one process: set replicaCount to 1 (and autoscaling.enabled false), or use store.type redis" }}
{{- end }}
{{- if and (eq .Values.store.type "redis") (not .Values.store.redis.address) }}
{{- fail "store.type redis needs store.redis.address (host:port)" }}
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
