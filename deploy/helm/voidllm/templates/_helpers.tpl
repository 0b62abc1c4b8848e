{{/* Names and labels. */}}
{{- define "voidllm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "voidllm.fullname" -}}
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

{{- define "voidllm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voidllm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "voidllm.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "voidllm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "voidllm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "voidllm.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "voidllm.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding what the chart manages itself (keys not taken from an existing Secret). */}}
{{- define "voidllm.secretName" -}}
{{- include "voidllm.fullname" . }}
{{- end }}

{{/*
Refuse combinations the gateway cannot run correctly, with the value to change.
*/}}
{{- define "voidllm.checks" -}}
{{- $postgres := eq .Values.database.driver "postgres" }}
{{- if and (not $postgres) (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) }}
{{- fail "database.driver: sqlite serves one replica only; set database.driver postgres (with database.dsn or database.existingSecret) for replicaCount > 1 or autoscaling" }}
{{- end }}
{{- if and $postgres (not .Values.database.dsn) (not .Values.database.existingSecret) }}
{{- fail "database.dsn: required with database.driver postgres (or name a Secret in database.existingSecret)" }}
{{- end }}
{{- if and .Values.redis.enabled (not .Values.redis.url) (not .Values.redis.existingSecret) }}
{{- fail "redis.url: required with redis.enabled (or name a Secret in redis.existingSecret)" }}
{{- end }}
{{- if and .Values.secrets.adminKey (lt (len .Values.secrets.adminKey) 32) }}
{{- fail "secrets.adminKey: must be at least 32 characters" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (hasKey .Values.podDisruptionBudget "minAvailable") (hasKey .Values.podDisruptionBudget "maxUnavailable") }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both" }}
{{- end }}
{{- end }}

{{/*
voidllm.yaml: .Values.config plus what the chart owns. Keys the chart sets are refused in .Values.config.
*/}}
{{- define "voidllm.config" -}}
{{- $config := deepCopy (default dict .Values.config) }}
{{- $server := default dict (get $config "server") }}
{{- $proxy := default dict (get $server "proxy") }}
{{- range $key := list "host" "port" "drain_timeout" }}
{{- if hasKey $proxy $key }}
{{- fail (printf "config.server.proxy.%s: set by the chart (containerPort, drain.timeoutSeconds); remove it from config" $key) }}
{{- end }}
{{- end }}
{{- $_ := set $proxy "host" "0.0.0.0" }}
{{- $_ = set $proxy "port" (int .Values.containerPort) }}
{{- $_ = set $proxy "drain_timeout" (printf "%ds" (int .Values.drain.timeoutSeconds)) }}
{{- $_ = set $server "proxy" $proxy }}
{{- if hasKey $server "admin" }}
{{- fail "config.server.admin: set by the chart from admin.port / admin.tlsSecret; remove it from config" }}
{{- end }}
{{- if .Values.admin.port }}
{{- if eq (int .Values.admin.port) (int .Values.containerPort) }}
{{- fail "admin.port: must differ from containerPort" }}
{{- end }}
{{- $admin := dict "port" (int .Values.admin.port) }}
{{- if .Values.admin.tlsSecret }}
{{- $_ = set $admin "tls" (dict "enabled" true "cert" "/etc/voidllm-tls/tls.crt" "key" "/etc/voidllm-tls/tls.key") }}
{{- end }}
{{- $_ = set $server "admin" $admin }}
{{- else if .Values.admin.tlsSecret }}
{{- fail "admin.tlsSecret: only with admin.port (a separate admin port)" }}
{{- end }}
{{- $_ = set $config "server" $server }}
{{- if hasKey $config "database" }}
{{- $database := get $config "database" }}
{{- range $key := list "driver" "dsn" }}
{{- if hasKey $database $key }}
{{- fail (printf "config.database.%s: set by the chart from database.driver / database.dsn; remove it from config" $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- $database := default dict (get $config "database") }}
{{- $_ = set $database "driver" .Values.database.driver }}
{{- if eq .Values.database.driver "sqlite" }}
{{- $_ = set $database "dsn" "/data/voidllm.db" }}
{{- else }}
{{- $_ = set $database "dsn" "${VOIDLLM_DATABASE_DSN}" }}
{{- end }}
{{- $_ = set $config "database" $database }}
{{- if hasKey $config "redis" }}
{{- $redis := get $config "redis" }}
{{- range $key := list "enabled" "url" }}
{{- if hasKey $redis $key }}
{{- fail (printf "config.redis.%s: set by the chart from redis.enabled / redis.url; remove it from config" $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- $redis := default dict (get $config "redis") }}
{{- $_ = set $redis "enabled" .Values.redis.enabled }}
{{- if .Values.redis.enabled }}
{{- $_ = set $redis "url" "${VOIDLLM_REDIS_URL}" }}
{{- end }}
{{- $_ = set $config "redis" $redis }}
{{- if hasKey $config "settings" }}
{{- $settings := get $config "settings" }}
{{- range $key := list "admin_key" "encryption_key" }}
{{- if hasKey $settings $key }}
{{- fail (printf "config.settings.%s: a secret does not belong in a ConfigMap; set secrets.%s or secrets.existingSecret" $key (ternary "adminKey" "encryptionKey" (eq $key "admin_key"))) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
The environment the gateway and the migration Job share: the secrets and the DSNs, each from an existing
Secret when one is named, else from `$secret` (the chart's Secret, or the migration hook's own copy).
*/}}
{{- define "voidllm.secretEnv" -}}
{{- $root := .root }}
{{- $secret := .secret }}
- name: VOIDLLM_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ default $secret $root.Values.secrets.existingSecret }}
      key: {{ ternary $root.Values.secrets.encryptionKeyKey "encryption-key" (ne $root.Values.secrets.existingSecret "") }}
{{- if or $root.Values.secrets.existingSecret $root.Values.secrets.adminKey }}
{{- if .withAdminKey }}
- name: VOIDLLM_ADMIN_KEY
  valueFrom:
    secretKeyRef:
      name: {{ default $secret $root.Values.secrets.existingSecret }}
      key: {{ ternary $root.Values.secrets.adminKeyKey "admin-key" (ne $root.Values.secrets.existingSecret "") }}
      optional: true
{{- end }}
{{- end }}
{{- if eq $root.Values.database.driver "postgres" }}
- name: VOIDLLM_DATABASE_DSN
  valueFrom:
    secretKeyRef:
      name: {{ default $secret $root.Values.database.existingSecret }}
      key: {{ ternary $root.Values.database.existingSecretKey "database-dsn" (ne $root.Values.database.existingSecret "") }}
{{- end }}
{{- if and .withRedis $root.Values.redis.enabled }}
- name: VOIDLLM_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ default $secret $root.Values.redis.existingSecret }}
      key: {{ ternary $root.Values.redis.existingSecretKey "redis-url" (ne $root.Values.redis.existingSecret "") }}
{{- end }}
{{- end }}

{{/* The encryption key the chart keeps: the one given, else the one stored at the first install, else new. */}}
{{- define "voidllm.encryptionKey" -}}
{{- if .Values.secrets.encryptionKey }}
{{- .Values.secrets.encryptionKey | b64enc }}
{{- else }}
{{- $stored := lookup "v1" "Secret" .Release.Namespace (include "voidllm.secretName" .) }}
{{- if and $stored (index (default dict $stored.data) "encryption-key") }}
{{- index $stored.data "encryption-key" }}
{{- else }}
{{- randBytes 32 | b64enc }}
{{- end }}
{{- end }}
{{- end }}
