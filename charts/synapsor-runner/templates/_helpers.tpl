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

{{/*
Image reference of one binary: repository, then @digest if given, else :tag (default
.Chart.AppVersion). Call with (dict "ctx" $ "image" .Values.image.controller).
*/}}
{{- define "synapsor-runner.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "synapsor-runner.controllerImage" -}}
{{- include "synapsor-runner.image" (dict "ctx" . "image" .Values.image.controller) -}}
{{- end -}}

{{- define "synapsor-runner.runnerImage" -}}
{{- include "synapsor-runner.image" (dict "ctx" . "image" .Values.image.runner) -}}
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

{{/*
The variables a sidecar's environment needs, as a JSON list: each source's read_url_env, then
for contexts read from the environment the MCP bearer token and the tenant and principal
variables (defaults SYNAPSOR_TENANT_ID and SYNAPSOR_PRINCIPAL), and for jwt contexts (a tenant
per session, from verified tokens) the HMAC secret the tokens are checked with, if the config
names one. From the config the chart holds; without it, the generic names.
*/}}
{{- define "synapsor-runner.sidecarEnvKeys" -}}
{{- $keys := list -}}
{{- $json := include "synapsor-runner.configJson" . -}}
{{- $cfg := dict -}}
{{- if $json -}}
{{- $cfg = fromJson $json -}}
{{- end -}}
{{- range $name, $src := ($cfg.sources | default dict) -}}
{{- if and (kindIs "map" $src) $src.read_url_env -}}
{{- $keys = append $keys $src.read_url_env -}}
{{- end -}}
{{- end -}}
{{- if not $keys -}}
{{- $keys = list "<read_url_env of each source>" -}}
{{- end -}}
{{- $contexts := list -}}
{{- if kindIs "map" $cfg.trusted_context -}}
{{- $contexts = append $contexts $cfg.trusted_context -}}
{{- end -}}
{{- range $name, $ctx := ($cfg.contexts | default dict) -}}
{{- if kindIs "map" $ctx -}}
{{- $contexts = append $contexts $ctx -}}
{{- end -}}
{{- end -}}
{{- if not $contexts -}}
{{- $contexts = list dict -}}
{{- end -}}
{{- range $ctx := $contexts -}}
{{- if has $ctx.provider (list "jwt" "http_claims") -}}
{{- $identity := $cfg.identity | default dict -}}
{{- with ($identity.keys | default dict).hmac_secret_env -}}
{{- $keys = append $keys . -}}
{{- end -}}
{{- else -}}
{{- $values := $ctx.values | default dict -}}
{{- $keys = append $keys "SYNAPSOR_RUNNER_HTTP_TOKEN" -}}
{{- $keys = append $keys ($values.tenant_id_env | default "SYNAPSOR_TENANT_ID") -}}
{{- $keys = append $keys ($values.principal_env | default "SYNAPSOR_PRINCIPAL") -}}
{{- end -}}
{{- end -}}
{{- toJson (uniq $keys) -}}
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
every sidecar namespace (when the chart creates the sidecar RBAC or injects sidecars), as a
JSON list.
*/}}
{{- define "synapsor-runner.configNamespaces" -}}
{{- $ns := list .Release.Namespace -}}
{{- if or .Values.sidecar.rbac.create .Values.sidecar.injection.enabled -}}
{{- $ns = concat $ns (include "synapsor-runner.sidecarNamespaces" . | fromJsonArray) -}}
{{- end -}}
{{- toJson (uniq $ns) -}}
{{- end -}}

{{/* A resource quantity as text: YAML numbers come in as float64 (1 and 134217728 stay whole). */}}
{{- define "synapsor-runner.quantity" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap the injected sidecar mounts when the pod names none. */}}
{{- define "synapsor-runner.injectConfigMap" -}}
{{- default (include "synapsor-runner.configMapName" .) .Values.sidecar.injection.configMap -}}
{{- end -}}

{{/*
The webhook's clientConfig for one path. Call with (dict "ctx" $ "path" "/mutate-proposals"
"caBundle" $caBundle): the Service, or webhook.url + path when that is set.
*/}}
{{- define "synapsor-runner.webhookClientConfig" -}}
{{- $ctx := .ctx -}}
{{- if $ctx.Values.webhook.url -}}
url: {{ printf "%s%s" (trimSuffix "/" $ctx.Values.webhook.url) .path | quote }}
{{- else -}}
service:
  name: {{ include "synapsor-runner.webhookServiceName" $ctx }}
  namespace: {{ $ctx.Release.Namespace }}
  path: {{ .path }}
  port: {{ $ctx.Values.webhook.service.port }}
{{- end }}
{{- if .caBundle }}
caBundle: {{ .caBundle }}
{{- end }}
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
{{- if and .Values.webhook.url (ne .Values.webhook.tls.mode "secret") -}}
{{- fail "webhook.url needs webhook.tls.mode: secret: the API server checks the URL's host against the certificate, and the chart's own certificates are only valid for the Service (docs/kubernetes.md, \"Running the controller outside the cluster\")" -}}
{{- end -}}
{{- if and (eq (int .Values.controller.replicas) 0) (not .Values.webhook.url) -}}
{{- fail "controller.replicas: 0 is only for webhook.url (a controller run outside the cluster): without a controller, no proposal can be created or approved" -}}
{{- end -}}
{{- if .Values.receipts.init.enabled -}}
{{- if not .Values.receipts.init.adminSecret -}}
{{- fail "receipts.init.enabled needs receipts.init.adminSecret: the Secret (in the release namespace) whose keys are variables holding admin database URLs" -}}
{{- end -}}
{{- if not .Values.receipts.init.adminUrlEnv -}}
{{- fail "receipts.init.enabled needs receipts.init.adminUrlEnv: the variable of receipts.init.adminSecret that holds the admin URL (passed as --admin-url-env)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
