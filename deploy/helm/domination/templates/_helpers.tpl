{{/* Names and labels. */}}
{{- define "domination.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "domination.fullname" -}}
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

{{- define "domination.selectorLabels" -}}
app.kubernetes.io/name: {{ include "domination.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The worker pods: the Service, the Deployment and the budget select these. */}}
{{- define "domination.workerSelectorLabels" -}}
{{ include "domination.selectorLabels" . }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "domination.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "domination.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "domination.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "domination.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "domination.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret the passwords are read from. */}}
{{- define "domination.secretName" -}}
{{- default (include "domination.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
The migration job runs before the release's own resources exist, so without
an existing Secret it reads a hook Secret of its own.
*/}}
{{- define "domination.migrateSecretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- printf "%s-migrate" (include "domination.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "domination.secretData" -}}
{{ .Values.secrets.clickhousePasswordKey }}: {{ .Values.clickhouse.password | b64enc | quote }}
{{- if .Values.kafka.sasl.mechanism }}
{{ .Values.secrets.kafkaSaslPasswordKey }}: {{ .Values.kafka.sasl.password | b64enc | quote }}
{{- end }}
{{- with .Values.web.tokens }}
{{ $.Values.secrets.webTokensKey }}: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.web.metricsToken }}
{{ $.Values.secrets.metricsTokenKey }}: {{ . | b64enc | quote }}
{{- end }}
{{- end }}

{{/* Whether the worker gets bearer tokens, and a metrics token. */}}
{{- define "domination.hasTokens" -}}
{{- if .Values.secrets.existingSecret }}{{ if .Values.web.tokensInExistingSecret }}true{{ end }}{{ else if .Values.web.tokens }}true{{ end }}
{{- end }}
{{- define "domination.hasMetricsToken" -}}
{{- if .Values.secrets.existingSecret }}{{ if .Values.web.metricsTokenInExistingSecret }}true{{ end }}{{ else if .Values.web.metricsToken }}true{{ end }}
{{- end }}

{{/* The scheme of the web server: HTTPS with web.tls.secretName. */}}
{{- define "domination.webScheme" -}}
{{- if .Values.web.tls.secretName }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/*
The environment shared by the worker and the migration job: every address,
topic and group, so both agree. Takes a dict with "ctx" (the root context)
and "secret" (the Secret to read passwords from).
*/}}
{{- define "domination.commonEnv" -}}
{{- $v := .ctx.Values -}}
- name: DOMINATION_LOG_LEVEL
  value: {{ $v.worker.logLevel | quote }}
- name: DOMINATION_LOG_FORMAT
  value: {{ $v.worker.logFormat | quote }}
- name: DOMINATION_KAFKA_BROKERS
  value: {{ required "kafka.brokers is required" $v.kafka.brokers | quote }}
{{- if $v.kafka.tls.enabled }}
- name: DOMINATION_KAFKA_TLS
  value: "true"
{{- if $v.kafka.tls.secretName }}
- name: DOMINATION_KAFKA_TLS_CA
  value: /etc/domination/kafka-tls/ca.crt
{{- if $v.kafka.tls.clientCertificate }}
- name: DOMINATION_KAFKA_TLS_CERT
  value: /etc/domination/kafka-tls/tls.crt
- name: DOMINATION_KAFKA_TLS_KEY
  value: /etc/domination/kafka-tls/tls.key
{{- end }}
{{- end }}
{{- if $v.kafka.tls.insecureSkipVerify }}
- name: DOMINATION_KAFKA_TLS_INSECURE
  value: "true"
{{- end }}
{{- end }}
{{- if $v.kafka.sasl.mechanism }}
- name: DOMINATION_KAFKA_SASL_MECHANISM
  value: {{ $v.kafka.sasl.mechanism | quote }}
- name: DOMINATION_KAFKA_SASL_USERNAME
  value: {{ required "kafka.sasl.username is required with a SASL mechanism" $v.kafka.sasl.username | quote }}
- name: DOMINATION_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ $v.secrets.kafkaSaslPasswordKey }}
{{- end }}
- name: DOMINATION_CLICKHOUSE_ADDR
  value: {{ required "clickhouse.addr is required" $v.clickhouse.addr | quote }}
- name: DOMINATION_CLICKHOUSE_DATABASE
  value: {{ $v.clickhouse.database | quote }}
- name: DOMINATION_CLICKHOUSE_USER
  value: {{ $v.clickhouse.user | quote }}
- name: DOMINATION_CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ $v.secrets.clickhousePasswordKey }}
{{- if $v.clickhouse.tls.enabled }}
- name: DOMINATION_CLICKHOUSE_TLS
  value: "true"
{{- if $v.clickhouse.tls.secretName }}
- name: DOMINATION_CLICKHOUSE_TLS_CA
  value: /etc/domination/clickhouse-tls/ca.crt
{{- end }}
{{- if $v.clickhouse.tls.insecureSkipVerify }}
- name: DOMINATION_CLICKHOUSE_TLS_INSECURE
  value: "true"
{{- end }}
{{- end }}
- name: DOMINATION_RATINGS_TOPIC
  value: {{ $v.topics.ratings | quote }}
- name: DOMINATION_SHADOW_TOPIC
  value: {{ $v.topics.shadow | quote }}
- name: DOMINATION_RATINGS_DLQ_TOPIC
  value: {{ $v.topics.ratingsDeadLetter | quote }}
- name: DOMINATION_VISITS_TOPIC
  value: {{ $v.topics.visits | quote }}
- name: DOMINATION_VISITS_DLQ_TOPIC
  value: {{ $v.topics.visitsDeadLetter | quote }}
- name: DOMINATION_ACTIVE_VISITORS_TOPIC
  value: {{ $v.topics.activeVisitors | quote }}
- name: DOMINATION_SHADOW_CONSUMER_GROUP
  value: {{ $v.consumerGroups.clickhouseShadow | quote }}
- name: DOMINATION_ACTIVE_VISITORS_CONSUMER_GROUP
  value: {{ $v.consumerGroups.clickhouseActiveVisitors | quote }}
- name: DOMINATION_TOPIC_REPLICATION_FACTOR
  value: {{ $v.topics.replicationFactor | quote }}
- name: DOMINATION_TOPIC_MIN_INSYNC_REPLICAS
  value: {{ $v.topics.minInsyncReplicas | quote }}
{{- end }}

{{/* The TLS volumes and their mounts, for pods that talk to the services. */}}
{{- define "domination.tlsVolumes" -}}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.secretName }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.secretName }}
{{- end }}
{{- if and .Values.clickhouse.tls.enabled .Values.clickhouse.tls.secretName }}
- name: clickhouse-tls
  secret:
    secretName: {{ .Values.clickhouse.tls.secretName }}
{{- end }}
{{- end }}

{{- define "domination.tlsMounts" -}}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.secretName }}
- name: kafka-tls
  mountPath: /etc/domination/kafka-tls
  readOnly: true
{{- end }}
{{- if and .Values.clickhouse.tls.enabled .Values.clickhouse.tls.secretName }}
- name: clickhouse-tls
  mountPath: /etc/domination/clickhouse-tls
  readOnly: true
{{- end }}
{{- end }}
