{{/*
Names, labels and small shared pieces of the synapsor-runner chart.

Every object is named "<base>-<component>", where <base> is .Values.fullnameOverride or the
release name (truncated so that the longest suffix still fits in 63 characters). So release
"synapsor" gives the Deployment "synapsor-controller", the Services "synapsor-webhook" and
"synapsor-metrics", and the sidecar ServiceAccount "synapsor-sidecar".
*/}}

{{/* The chart name, for the app.kubernetes.io/name label. */}}
{{- define "synapsor-runner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The base of every object name. 36 characters leave room for the longest suffix, "-controller-leader-election". */}}
{{- define "synapsor-runner.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 36 | trimSuffix "-" -}}
{{- end -}}

{{/* helm.sh/chart label value. */}}
{{- define "synapsor-runner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Common labels. Call with (dict "ctx" $ "component" "controller").
*/}}
{{- define "synapsor-runner.labels" -}}
{{- $ctx := .ctx -}}
helm.sh/chart: {{ include "synapsor-runner.chart" $ctx }}
{{ include "synapsor-runner.selectorLabels" . }}
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | replace "+" "_" | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
app.kubernetes.io/part-of: synapsor-runner
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Selector labels (stable across upgrades). Call with (dict "ctx" $ "component" "controller").
*/}}
{{- define "synapsor-runner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "synapsor-runner.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Common annotations, if any, as a YAML block (without the "annotations:" key). */}}
{{- define "synapsor-runner.commonAnnotations" -}}
{{- with .Values.commonAnnotations }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/* Image reference: repository, then @digest if given, else :tag (default .Chart.AppVersion). */}}
{{- define "synapsor-runner.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Controller object names. */}}
{{- define "synapsor-runner.controllerName" -}}
{{- printf "%s-controller" (include "synapsor-runner.fullname" .) -}}
{{- end -}}

{{- define "synapsor-runner.controllerServiceAccountName" -}}
{{- if .Values.controller.serviceAccount.create -}}
{{- default (include "synapsor-runner.controllerName" .) .Values.controller.serviceAccount.name -}}
{{- else -}}
{{- required "controller.serviceAccount.name is required when controller.serviceAccount.create is false" .Values.controller.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The coordination.k8s.io Lease used for leader election. */}}
{{- define "synapsor-runner.leaseName" -}}
{{- default (include "synapsor-runner.controllerName" .) .Values.controller.leaderElection.leaseName -}}
{{- end -}}

{{/* Services. */}}
{{- define "synapsor-runner.webhookServiceName" -}}
{{- printf "%s-webhook" (include "synapsor-runner.fullname" .) -}}
{{- end -}}

{{- define "synapsor-runner.metricsServiceName" -}}
{{- printf "%s-metrics" (include "synapsor-runner.fullname" .) -}}
{{- end -}}

{{/* The kubernetes.io/tls Secret the webhook serves with. */}}
{{- define "synapsor-runner.webhookTlsSecretName" -}}
{{- if eq .Values.webhook.tls.mode "secret" -}}
{{- required "webhook.tls.secret.name is required when webhook.tls.mode is \"secret\"" .Values.webhook.tls.secret.name -}}
{{- else -}}
{{- printf "%s-webhook-tls" (include "synapsor-runner.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The cert-manager Certificate (webhook.tls.mode certManager). */}}
{{- define "synapsor-runner.webhookCertificateName" -}}
{{- printf "%s-webhook" (include "synapsor-runner.fullname" .) -}}
{{- end -}}

{{/* The Secret holding the approval signing key, and the key inside it. */}}
{{- define "synapsor-runner.approvalKeySecretName" -}}
{{- default (printf "%s-approval-key" (include "synapsor-runner.fullname" .)) .Values.approvalKey.existingSecret -}}
{{- end -}}

{{/* The ConfigMap holding synapsor.runner.json. */}}
{{- define "synapsor-runner.configMapName" -}}
{{- default (printf "%s-config" (include "synapsor-runner.fullname" .)) .Values.runnerConfig.configMapName -}}
{{- end -}}

{{/*
The runner config as JSON text, or "" when the chart does not create the ConfigMap.
runnerConfig.json is the file's text (--set-file); runnerConfig.inline the same document as YAML.
*/}}
{{- define "synapsor-runner.configJson" -}}
{{- $json := .Values.runnerConfig.json -}}
{{- $inline := .Values.runnerConfig.inline -}}
{{- if and (trim $json) $inline -}}
{{- fail "set runnerConfig.json or runnerConfig.inline, not both" -}}
{{- end -}}
{{- if $inline -}}
{{- toPrettyJson $inline -}}
{{- else if trim $json -}}
{{- $parsed := fromJson $json -}}
{{- if or (not $parsed) (hasKey $parsed "Error") -}}
{{- fail "runnerConfig.json is not a JSON object; pass the file with --set-file runnerConfig.json=synapsor.runner.json" -}}
{{- end -}}
{{- $json -}}
{{- end -}}
{{- end -}}

{{/* Sidecar object names. */}}
{{- define "synapsor-runner.sidecarName" -}}
{{- printf "%s-sidecar" (include "synapsor-runner.fullname" .) -}}
{{- end -}}

{{- define "synapsor-runner.sidecarServiceAccountName" -}}
{{- default (include "synapsor-runner.sidecarName" .) .Values.sidecar.serviceAccount.name -}}
{{- end -}}

{{/*
Namespaces where the sidecar ServiceAccount, Role and RoleBinding go, as a JSON list:
sidecar.namespaces, else watchNamespace, else the release namespace.
*/}}
{{- define "synapsor-runner.sidecarNamespaces" -}}
{{- $ns := .Values.sidecar.namespaces -}}
{{- if not $ns -}}
{{- $ns = list (default .Release.Namespace .Values.watchNamespace) -}}
{{- end -}}
{{- toJson (uniq $ns) -}}
{{- end -}}

{{/*
Namespaces that need a copy of the runner ConfigMap: the release namespace (controller) and
every sidecar namespace, as a JSON list.
*/}}
{{- define "synapsor-runner.configNamespaces" -}}
{{- $ns := list .Release.Namespace -}}
{{- if .Values.sidecar.rbac.create -}}
{{- $ns = concat $ns (include "synapsor-runner.sidecarNamespaces" . | fromJsonArray) -}}
{{- end -}}
{{- toJson (uniq $ns) -}}
{{- end -}}

{{/* RBAC subjects from a values block with users and groups. Call with the block. */}}
{{- define "synapsor-runner.subjects" -}}
{{- range .users }}
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: {{ . | quote }}
{{- end }}
{{- range .groups }}
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Checks across values that the JSON Schema cannot express. Included by the Deployment. */}}
{{- define "synapsor-runner.validate" -}}
{{- if and .Values.watchNamespace .Values.sidecar.namespaces -}}
{{- range .Values.sidecar.namespaces -}}
{{- if ne . $.Values.watchNamespace -}}
{{- fail (printf "sidecar.namespaces contains %q, but the controller only watches watchNamespace %q: proposals created there would never be reconciled" . $.Values.watchNamespace) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.controller.ledger.persistence.enabled (gt (int .Values.controller.replicas) 1) -}}
{{- fail "controller.ledger.persistence.enabled needs controller.replicas: 1 (the SQLite ledger file cannot be shared between pods)" -}}
{{- end -}}
{{- if and (eq .Values.webhook.tls.mode "secret") (not .Values.webhook.tls.secret.name) -}}
{{- fail "webhook.tls.secret.name is required when webhook.tls.mode is \"secret\"" -}}
{{- end -}}
{{- end -}}
