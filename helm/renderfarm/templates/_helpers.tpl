{{- define "renderfarm.env" -}}
- name: RENDERFARM_POSTGRES
  valueFrom: {secretKeyRef: {name: {{ .Release.Name }}-connections, key: postgres}}
- name: RENDERFARM_RABBITMQ
  valueFrom: {secretKeyRef: {name: {{ .Release.Name }}-connections, key: rabbitmq}}
- name: RENDERFARM_S3_ENDPOINT
  value: {{ .Values.connections.s3.endpoint | quote }}
- name: RENDERFARM_S3_BUCKET
  value: {{ .Values.connections.s3.bucket | quote }}
- name: RENDERFARM_S3_SECURE
  value: {{ .Values.connections.s3.secure | quote }}
{{- with .Values.connections.s3.publicEndpoint }}
- name: RENDERFARM_S3_PUBLIC_ENDPOINT
  value: {{ . | quote }}
- name: RENDERFARM_S3_PUBLIC_SECURE
  value: {{ $.Values.connections.s3.publicSecure | quote }}
{{- end }}
- name: RENDERFARM_S3_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ .Release.Name }}-connections, key: s3AccessKey}}
- name: RENDERFARM_S3_SECRET_KEY
  valueFrom: {secretKeyRef: {name: {{ .Release.Name }}-connections, key: s3SecretKey}}
# MassTransit's usage telemetry is off in code (RenderFarm.Messaging); the variable keeps it off whatever else is set.
- name: MASSTRANSIT_USAGE_TELEMETRY
  value: "false"
{{- with .Values.connections.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end -}}
