{{- define "tensorwasmd.fullname" -}}
{{- printf "%s-tensorwasmd" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tensorwasmd.labels" -}}
app.kubernetes.io/name: tensorwasmd
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
