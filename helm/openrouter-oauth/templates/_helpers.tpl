{{/* Chart name, truncated to the 63 characters Kubernetes allows. */}}
{{- define "openrouter-oauth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; also the service Deployment's name, which the operator configures. */}}
{{- define "openrouter-oauth.fullname" -}}
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

{{- define "openrouter-oauth.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels; pass a dict with "ctx" (the root) and "component". */}}
{{- define "openrouter-oauth.labels" -}}
helm.sh/chart: {{ include "openrouter-oauth.chart" .ctx }}
{{ include "openrouter-oauth.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: openrouter-oauth
{{- end }}

{{- define "openrouter-oauth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "openrouter-oauth.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "openrouter-oauth.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "openrouter-oauth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "openrouter-oauth.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "openrouter-oauth.operatorName" -}}
{{- printf "%s-operator" (include "openrouter-oauth.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "openrouter-oauth.etcdName" -}}
{{- printf "%s-etcd" (include "openrouter-oauth.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Secret the service reads ISSUER_URL, SECRET and PREVIOUS_SECRETS from. The operator
     writes "<deployment>-oauth-config" (see operator/openrouter_oauth_operator/reconcile.py). */}}
{{- define "openrouter-oauth.configSecret" -}}
{{- default (printf "%s-oauth-config" (include "openrouter-oauth.fullname" .)) .Values.config.existingSecret }}
{{- end }}

{{- define "openrouter-oauth.etcdEndpoints" -}}
{{- if .Values.etcd.bundled }}
{{- printf "http://%s:2379" (include "openrouter-oauth.etcdName" .) }}
{{- else }}
{{- required "etcd.externalEndpoints is required when etcd.bundled is false" .Values.etcd.externalEndpoints }}
{{- end }}
{{- end }}

{{/* The container security context every workload here uses. */}}
{{- define "openrouter-oauth.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}
