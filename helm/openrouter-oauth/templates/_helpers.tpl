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

{{/* repository@digest when a digest is set (the tag is then ignored), else repository:tag. */}}
{{/* No image is published: the installer builds and pushes one, and names it. */}}
{{- define "openrouter-oauth.image" -}}
{{- $repository := required "image.repository is required: no image is published; build it from the Containerfile, push it to a registry your cluster pulls from, and --set image.repository=<registry>/openrouter-oauth-provider (README: Deploy on Kubernetes)" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "openrouter-oauth.etcdImage" -}}
{{- with .Values.etcd.image }}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository .tag }}
{{- end }}
{{- end }}
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
     writes "<deployment>-oauth-config" (see operator/openrouter_oauth_operator/spec.py). */}}
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

{{/* The pod security context every workload here uses (values.podSecurityContext). Keys set
     to null in the values (e.g. runAsUser on OpenShift) are left out. */}}
{{- define "openrouter-oauth.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{/* The container security context every container here uses (values.securityContext). */}}
{{- define "openrouter-oauth.containerSecurityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/* Where the config Secret (SECRET, PREVIOUS_SECRETS) and the introspection credentials are
     mounted in the service container. The service reads the files named by SECRET_FILE,
     PREVIOUS_SECRETS_FILE and INTROSPECTION_CREDENTIALS_FILE. */}}
{{- define "openrouter-oauth.configDir" -}}/etc/openrouter-oauth/config{{- end }}
{{- define "openrouter-oauth.introspectionDir" -}}/etc/openrouter-oauth/introspection{{- end }}
{{- define "openrouter-oauth.resourceServersDir" -}}/etc/openrouter-oauth/resource-servers{{- end }}

{{/* Whether the separate metrics Service is rendered (a ServiceMonitor needs it). */}}
{{- define "openrouter-oauth.metricsService" -}}
{{- if and .Values.metrics.enabled (or .Values.metrics.service.enabled .Values.metrics.serviceMonitor.enabled) }}true{{ end }}
{{- end }}

{{/* The NetworkPolicy egress rule to the cluster DNS service. */}}
{{- define "openrouter-oauth.dnsEgress" -}}
- to:
    {{- toYaml .Values.networkPolicy.egress.dns | nindent 4 }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end }}

{{/* The path prefixes the Ingress and the HTTPRoute route to the Service's http port, as a
     JSON list. Everything the http port serves is public (the OAuth endpoints, metadata,
     /me, /introspect, the health checks); /metrics is served only on its own port, which no
     route reaches (see metrics in values.yaml). */}}
{{- define "openrouter-oauth.publicPathPrefixes" -}}["/"]{{- end }}

{{/* The public host: the first gateway hostname with the Gateway API, else the Ingress host. */}}
{{- define "openrouter-oauth.publicHost" -}}
{{- if and .Values.gateway.enabled .Values.gateway.hostnames }}
{{- first .Values.gateway.hostnames }}
{{- else }}
{{- .Values.ingress.host }}
{{- end }}
{{- end }}
