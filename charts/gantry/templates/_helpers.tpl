{{- define "gantry.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object of the release carries. */}}
{{- define "gantry.labels" -}}
app.kubernetes.io/name: gantry
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* What the Services, the PodDisruptionBudget and the anti-affinity select the Pods by. */}}
{{- define "gantry.selectorLabels" -}}
app.kubernetes.io/name: gantry
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gantry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gantry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The data plane's Service: the name --gateway-address-service points at. */}}
{{- define "gantry.dataPlaneServiceName" -}}
{{- include "gantry.fullname" . -}}
{{- end -}}

{{- define "gantry.metricsServiceName" -}}
{{- printf "%s-metrics" (include "gantry.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{- define "gantry.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* "true" when a listener port below 1024 needs NET_BIND_SERVICE, else "". */}}
{{- define "gantry.lowPorts" -}}
{{- $low := .Values.dataPlane.lowPorts -}}
{{- /* With a Service per Gateway the Pods bind data-plane ports from 10000 up. */ -}}
{{- if not .Values.gatewayServices.enabled -}}
{{- range .Values.dataPlane.service.ports -}}
{{- if lt (int (default .port .targetPort)) 1024 -}}{{- $low = true -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- if $low -}}true{{- end -}}
{{- end -}}

{{/* Name of the cluster-scoped objects (ClusterRole, ClusterRoleBinding): qualified by the
     release namespace, so that releases of the same name in two namespaces do not collide. */}}
{{- define "gantry.clusterScopedName" -}}
{{- $name := include "gantry.fullname" . -}}
{{- if eq .Release.Namespace $name -}}
{{- $name -}}
{{- else -}}
{{- printf "%s-%s" .Release.Namespace $name | trunc 253 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
