{{/* Names ------------------------------------------------------------------------ */}}

{{- define "floodgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "floodgate.fullname" -}}
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

{{/* The name of one role's objects: <fullname>-<role>. Call with (list $ "gateway"). */}}
{{- define "floodgate.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "floodgate.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) }}
{{- end }}

{{- define "floodgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "floodgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels ----------------------------------------------------------------------- */}}

{{- define "floodgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "floodgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: floodgate
{{- end }}

{{/* Call with (list $ "gateway"). */}}
{{- define "floodgate.componentLabels" -}}
{{ include "floodgate.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "floodgate.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "floodgate.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Image of a role: the role's `image` values over the global ones. */}}
{{- define "floodgate.image" -}}
{{- $root := index . 0 }}
{{- $img := mergeOverwrite (deepCopy $root.Values.image) (index $root.Values (index . 1)).image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag | toString) }}
{{- end }}
{{- end }}

{{/* TOML pieces for the role files (values: gateway.config, worker.config, ...).
     Each starts with a newline so that `{{- include ... }}` follows a table header. */}}

{{- define "floodgate.hasStore" -}}
{{- with .Values.externalServices.postgresql }}{{ if or .url .existingSecret }}true{{ end }}{{ end }}
{{- if .Values.postgresql.enabled }}true{{ end }}
{{- end }}

{{- define "floodgate.hasRedis" -}}
{{- with .Values.externalServices.redis }}{{ if or .url .existingSecret }}true{{ end }}{{ end }}
{{- if .Values.redis.enabled }}true{{ end }}
{{- end }}

{{- define "floodgate.hasNats" -}}
{{- with .Values.externalServices.nats }}{{ if or .url .existingSecret }}true{{ end }}{{ end }}
{{- if .Values.nats.enabled }}true{{ end }}
{{- end }}

{{- define "floodgate.toml.storeUrl" -}}
{{- if include "floodgate.hasStore" . }}
url = "env::FLOODGATE_STORE_URL"
{{- else }}
# no PostgreSQL given: SQLite in the pod's state volume (one gateway only)
{{- end }}
{{- end }}

{{- define "floodgate.toml.ratelimitBackend" -}}
{{- if include "floodgate.hasRedis" . }}
backend = "redis"
redis_url = "env::FLOODGATE_REDIS_URL"
{{- else }}
backend = "memory"
{{- end }}
{{- end }}

{{- define "floodgate.toml.natsUrl" -}}
{{- if include "floodgate.hasNats" . }}
nats_url = "env::FLOODGATE_NATS_URL"
{{- end }}
{{- end }}

{{- define "floodgate.toml.ipHashSalt" -}}
{{- if .Values.secrets.ipHashSalt.existingSecret }}
ip_hash_salt = "env::FLOODGATE_IP_HASH_SALT"
{{- end }}
{{- end }}

{{/* The workers' [[model]] tables. */}}
{{- define "floodgate.toml.workerModels" -}}
{{- range .Values.models }}
[[model]]
name = {{ .name | quote }}
{{- with .worker }}
{{ trim . }}
{{- end }}
{{ end }}
{{- end }}

{{/* The gateways' upstream [[model]] tables: this release's workers, then extraEndpoints. */}}
{{- define "floodgate.toml.gatewayModels" -}}
{{- $root := . }}
{{- $endpoints := list }}
{{- if .Values.worker.enabled }}
{{- $url := printf "http://%s.%s.svc:%v" (include "floodgate.componentName" (list $root "worker")) .Release.Namespace .Values.worker.service.port }}
{{- $ep := printf "{ url = %s, region = %s" ($url | quote) (.Values.region | quote) }}
{{- if .Values.worker.requireKey }}
{{- $ep = printf "%s, api_key = \"env::FLOODGATE_WORKER_KEY\"" $ep }}
{{- end }}
{{- $endpoints = append $endpoints (printf "%s }" $ep) }}
{{- end }}
{{- range .Values.gateway.extraEndpoints }}
{{- $ep := printf "{ url = %s, region = %s" (required "gateway.extraEndpoints[].url is required" .url | quote) (default "" .region | quote) }}
{{- if .apiKeyEnv }}
{{- $ep = printf "%s, api_key = \"env::%s\"" $ep .apiKeyEnv }}
{{- end }}
{{- $endpoints = append $endpoints (printf "%s }" $ep) }}
{{- end }}
{{- if and .Values.models (not $endpoints) }}
{{- fail "models are listed but no worker serves them: enable worker or give gateway.extraEndpoints" }}
{{- end }}
{{- range .Values.models }}
[[model]]
name = {{ .name | quote }}
backend = "upstream"
endpoints = [
{{- range $endpoints }}
  {{ . }},
{{- end }}
]
{{- with .gateway }}
{{ trim . }}
{{- end }}
{{ end }}
{{- end }}

{{/* Environment ------------------------------------------------------------------ */}}

{{/* One URL variable from externalServices.<svc>, or from the enabled sub-chart.
     Call with (list $ "postgresql" "FLOODGATE_STORE_URL"). */}}
{{- define "floodgate.urlEnv" -}}
{{- $root := index . 0 }}
{{- $svc := index . 1 }}
{{- $var := index . 2 }}
{{- $ext := index $root.Values.externalServices $svc }}
{{- if $ext.existingSecret }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $ext.existingSecret }}
      key: {{ $ext.secretKey }}
{{- else if $ext.url }}
- name: {{ $var }}
  value: {{ $ext.url | quote }}
{{- else if and (eq $svc "postgresql") $root.Values.postgresql.enabled }}
- name: FLOODGATE_PG_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ printf "%s-postgresql" $root.Release.Name }}
      key: password
- name: {{ $var }}
  value: {{ printf "postgres://%s:$(FLOODGATE_PG_PASSWORD)@%s-postgresql:5432/%s" $root.Values.postgresql.auth.username $root.Release.Name $root.Values.postgresql.auth.database | quote }}
{{- else if and (eq $svc "redis") $root.Values.redis.enabled }}
- name: FLOODGATE_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ printf "%s-redis" $root.Release.Name }}
      key: redis-password
- name: {{ $var }}
  value: {{ printf "redis://:$(FLOODGATE_REDIS_PASSWORD)@%s-redis-master:6379" $root.Release.Name | quote }}
{{- else if and (eq $svc "nats") $root.Values.nats.enabled }}
- name: {{ $var }}
  value: {{ printf "nats://%s-nats:4222" $root.Release.Name | quote }}
{{- end }}
{{- end }}

{{- define "floodgate.secretEnv" -}}
{{- $root := index . 0 }}
{{- $ref := index . 1 }}
{{- $var := index . 2 }}
{{- if $ref.existingSecret }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.existingSecret }}
      key: {{ $ref.secretKey }}
{{- end }}
{{- end }}

{{/* Every role's environment. Call with (list $ "gateway"). */}}
{{- define "floodgate.env" -}}
{{- $root := index . 0 }}
{{- $role := index . 1 }}
{{- $v := index $root.Values $role -}}
- name: FLOODGATE_CONFIG
  value: /etc/floodgate/floodgate.toml
- name: FLOODGATE_HOME
  value: /var/lib/floodgate
- name: FLOODGATE_SERVER__SHUTDOWN_GRACE_SECONDS
  value: {{ $root.Values.shutdownGraceSeconds | int | quote }}
- name: FLOODGATE_EVENTS__DIR
  value: /var/lib/floodgate-state/events
- name: FLOODGATE_AUTH__DATABASE
  value: /var/lib/floodgate-state/floodgate.db
{{- if $root.Values.region }}
- name: FLOODGATE_SERVER__REGION
  value: {{ $root.Values.region | quote }}
{{- end }}
- name: RUST_LOG
  value: {{ $root.Values.rustLog | quote }}
{{- if or (ne $role "worker") $root.Values.worker.requireKey }}
{{- include "floodgate.urlEnv" (list $root "postgresql" "FLOODGATE_STORE_URL") }}
{{- end }}
{{- if eq $role "gateway" }}
{{- include "floodgate.urlEnv" (list $root "redis" "FLOODGATE_REDIS_URL") }}
{{- include "floodgate.secretEnv" (list $root $root.Values.secrets.ipHashSalt "FLOODGATE_IP_HASH_SALT") }}
{{- include "floodgate.secretEnv" (list $root $root.Values.secrets.workerKey "FLOODGATE_WORKER_KEY") }}
{{- end }}
{{- if ne $role "worker" }}
{{- include "floodgate.urlEnv" (list $root "nats" "FLOODGATE_NATS_URL") }}
{{- end }}
{{- range $root.Values.secrets.extra }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .secretKey }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod spec ---------------------------------------------------------------------- */}}

{{- define "floodgate.probes" -}}
{{- $p := index . 0 -}}
startupProbe:
  httpGet: { path: /healthz, port: http }
  periodSeconds: {{ $p.startup.periodSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
livenessProbe:
  httpGet: { path: /healthz, port: http }
  periodSeconds: {{ $p.liveness.periodSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
readinessProbe:
  httpGet: { path: /readyz, port: http }
  periodSeconds: {{ $p.readiness.periodSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
{{- end }}

{{/* The pod template of one role. Call with (list $ "gateway"). */}}
{{- define "floodgate.podTemplate" -}}
{{- $root := index . 0 }}
{{- $role := index . 1 }}
{{- $v := index $root.Values $role -}}
metadata:
  labels:
    {{- include "floodgate.selectorLabels" (list $root $role) | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "floodgate.serviceAccountName" $root }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ add $root.Values.shutdownGraceSeconds $root.Values.preStopSleepSeconds 15 }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if and (eq $role "worker") $v.modelPull.enabled $root.Values.models }}
  initContainers:
    - name: models-pull
      image: {{ include "floodgate.image" (list $root $role) }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command: ["floodgate", "models", "pull"]
      env:
        {{- include "floodgate.env" (list $root $role) | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.containerSecurityContext | nindent 8 }}
      resources:
        {{- toYaml $v.modelPull.resources | nindent 8 }}
      volumeMounts:
        - { name: config, mountPath: /etc/floodgate, readOnly: true }
        - { name: models, mountPath: /var/lib/floodgate }
        - { name: state, mountPath: /var/lib/floodgate-state }
        - { name: tmp, mountPath: /tmp }
  {{- end }}
  containers:
    - name: floodgate
      image: {{ include "floodgate.image" (list $root $role) }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command: ["floodgate"]
      args:
        - serve
        - --listen
        - "0.0.0.0:8080"
        - --role
        - {{ $role }}
        - --log-format
        - {{ $root.Values.logFormat }}
      env:
        {{- include "floodgate.env" (list $root $role) | nindent 8 }}
      ports:
        - name: http
          containerPort: 8080
          protocol: TCP
      {{- include "floodgate.probes" (list $v.probes) | nindent 6 }}
      lifecycle:
        preStop:
          exec:
            command: ["sleep", "{{ $root.Values.preStopSleepSeconds }}"]
      securityContext:
        {{- toYaml $root.Values.containerSecurityContext | nindent 8 }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      volumeMounts:
        - { name: config, mountPath: /etc/floodgate, readOnly: true }
        - { name: models, mountPath: /var/lib/floodgate }
        - { name: state, mountPath: /var/lib/floodgate-state }
        - { name: tmp, mountPath: /tmp }
  volumes:
    - name: config
      configMap:
        name: {{ include "floodgate.componentName" (list $root "config") }}
        items:
          - key: {{ $role }}.toml
            path: floodgate.toml
    - name: state
      emptyDir:
        sizeLimit: {{ $v.stateVolume.sizeLimit }}
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
    {{- if eq $role "worker" }}
    {{- if ne $v.kind "StatefulSet" }}
    - name: models
      {{- if $v.modelCache.existingClaim }}
      persistentVolumeClaim:
        claimName: {{ $v.modelCache.existingClaim }}
      {{- else }}
      emptyDir:
        sizeLimit: {{ $v.modelCache.sizeLimit }}
      {{- end }}
    {{- end }}
    {{- else }}
    # Gateways and analytics keep no models; the home still holds guard and router files.
    - name: models
      emptyDir:
        sizeLimit: 1Gi
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
