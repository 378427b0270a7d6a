{{/*
Names, labels, and berth.toml: what the templates share.
*/}}

{{- define "berth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-berth, or the release's name when it contains the chart's. */}}
{{- define "berth.fullname" -}}
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

{{- define "berth.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select berth's Pods (and that workspaces' NetworkPolicies admit). */}}
{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "berth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "berth.labels" -}}
helm.sh/chart: {{ include "berth.chart" . }}
{{ include "berth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: berth
{{- end }}

{{- define "berth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "berth.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "berth.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The namespace of the workspaces. */}}
{{- define "berth.workspacesNamespace" -}}
{{- default .Release.Namespace .Values.workspaces.namespace }}
{{- end }}

{{/* The Secret the chart makes from inline values, when it makes one. */}}
{{- define "berth.secretName" -}}
{{- include "berth.fullname" . }}
{{- end }}

{{/*
The database: exactly one of database.url and database.existingSecret. Every
template that needs it includes this, so a render without one fails with
this message (and not with a Deployment that crash-loops).
*/}}
{{- define "berth.checkDatabase" -}}
{{- $db := .Values.database }}
{{- if and $db.url $db.existingSecret }}
{{- fail "database: set only one of database.url and database.existingSecret" }}
{{- end }}
{{- if not (or $db.url $db.existingSecret) }}
{{- fail "database: berth on Kubernetes needs PostgreSQL: set database.url (postgres://USER:PASSWORD@HOST/DB) or database.existingSecret (a Secret holding that URL under database.existingSecretKey)" }}
{{- end }}
{{- if and $db.url (not (regexMatch "^postgres(ql)?://" $db.url)) }}
{{- fail "database.url must start with postgres:// or postgresql://" }}
{{- end }}
{{- range $key := list "database_url" "admin_password" }}
{{- if hasKey (default (dict) $.Values.config) $key }}
{{- fail (printf "config.%s: secrets do not belong in berth.toml (a ConfigMap); use database.* or adminPassword.*, which pass them from a Secret" $key) }}
{{- end }}
{{- end }}
{{- if and .Values.adminPassword.value .Values.adminPassword.existingSecret }}
{{- fail "adminPassword: set only one of adminPassword.value and adminPassword.existingSecret" }}
{{- end }}
{{- end }}

{{/*
berth.toml. The chart builds its settings as a map and writes it with
"berth.toml.table" rather than toToml: Helm reads every number in values as a
float64, and toToml writes 8589934592 as 8.589934592e+09 and 1 as 1.0, which
berth's integer settings refuse. Here an integral number is written as an
integer, except under the keys in "berth.toml.floatKeys", which berth reads as
floats; strings are written as JSON strings (valid TOML basic strings).
*/}}
{{- define "berth.config" -}}
{{- $fullname := include "berth.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- $port := 8000 }}
{{- $kube := dict
  "namespace" (include "berth.workspacesNamespace" .)
  "hub_url" (printf "http://%s.%s.svc:%d" $fullname $ns (int .Values.service.port))
  "image" .Values.workspaces.image
  "operator" true
  "lease_name" .Values.lease.name
  "lease_namespace" $ns
  "lease_secs" .Values.lease.seconds
  "berth_namespace" $ns
  "berth_pod_labels" (include "berth.selectorLabels" . | fromYaml)
  "cluster_cidrs" .Values.workspaces.clusterCidrs
}}
{{- with .Values.workspaces.storageClass }}
{{- $_ := set $kube "storage_class" . }}
{{- end }}
{{- $placement := dict }}
{{- range $name, $p := .Values.kubernetesProfiles }}
{{- if $p }}
{{- $_ := set $placement $name $p }}
{{- end }}
{{- end }}
{{- if $placement }}
{{- $_ := set $kube "profiles" $placement }}
{{- end }}
{{- $managed := dict
  "bind" (printf "0.0.0.0:%d" $port)
  "data_dir" "/var/lib/berth"
  "runtime" "kubernetes"
  "controller" (dict "lease_secs" .Values.lease.seconds)
  "kubernetes" $kube
}}
{{- with .Values.publicUrl }}
{{- $_ := set $managed "public_url" . }}
{{- end }}
{{- $profiles := dict }}
{{- range $name, $p := .Values.profiles }}
{{- if $p }}
{{- $_ := set $profiles $name $p }}
{{- end }}
{{- end }}
{{- if $profiles }}
{{- $_ := set $managed "profiles" $profiles }}
{{- end }}
{{- $config := mustMergeOverwrite (deepCopy (default (dict) .Values.config)) $managed }}
{{- include "berth.toml.table" (dict "table" $config "path" (list)) }}
{{- end }}

{{/* Keys berth reads as floating-point numbers. */}}
{{- define "berth.toml.floatKeys" -}}
cpu max_cpu cost_per_hour
{{- end }}

{{/* A key, bare when TOML allows, else quoted. */}}
{{- define "berth.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{/*
A table: its plain keys, then each sub-table under its own [header]; keys in
sorted order, null values left out. Arguments: "table" (a map), "path" (the
keys leading to it).
*/}}
{{- define "berth.toml.table" -}}
{{- $table := .table }}
{{- $path := .path }}
{{- $subtables := list }}
{{- range $key := keys $table | sortAlpha }}
{{- $value := get $table $key }}
{{- if kindIs "map" $value }}
{{- $subtables = append $subtables $key }}
{{- else if not (kindIs "invalid" $value) }}
{{ include "berth.toml.key" $key }} = {{ include "berth.toml.value" (dict "key" $key "value" $value) }}
{{- end }}
{{- end }}
{{- range $key := $subtables }}
{{- $sub := get $table $key }}
{{- $subpath := append $path (include "berth.toml.key" $key) }}
{{- $plain := false }}
{{- range $k, $v := $sub }}{{ if not (or (kindIs "map" $v) (kindIs "invalid" $v)) }}{{ $plain = true }}{{ end }}{{ end }}
{{- if $plain }}

[{{ join "." $subpath }}]
{{- end }}
{{- include "berth.toml.table" (dict "table" $sub "path" $subpath) }}
{{- end }}
{{- end }}

{{/* One value, inline. Arguments: "key" (its key, for floatKeys), "value". */}}
{{- define "berth.toml.value" -}}
{{- $key := .key }}
{{- $v := .value }}
{{- $float := has $key (splitList " " (include "berth.toml.floatKeys" .)) }}
{{- if kindIs "string" $v }}{{ toJson $v }}
{{- else if kindIs "bool" $v }}{{ $v }}
{{- else if or (kindIs "float64" $v) (kindIs "float32" $v) (kindIs "int" $v) (kindIs "int64" $v) (kindIs "int32" $v) (kindIs "uint64" $v) }}
{{- $f := float64 $v }}
{{- if ne $f (floor $f) }}{{ $f }}
{{- else if $float }}{{ printf "%.1f" $f }}
{{- else }}{{ printf "%d" (int64 $v) }}
{{- end }}
{{- else if kindIs "slice" $v }}[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "berth.toml.value" (dict "key" $key "value" $e) }}{{ end }}]
{{- else if kindIs "map" $v }}
{{- $present := list }}
{{- range $k := keys $v | sortAlpha }}{{ if not (kindIs "invalid" (get $v $k)) }}{{ $present = append $present $k }}{{ end }}{{ end -}}
{ {{- range $i, $k := $present }}{{ if $i }},{{ end }} {{ include "berth.toml.key" $k }} = {{ include "berth.toml.value" (dict "key" $k "value" (get $v $k)) }}{{ end }} }
{{- else }}{{ fail (printf "berth.toml: %s is a %s, which berth.toml cannot hold" $key (kindOf $v)) }}
{{- end }}
{{- end }}
