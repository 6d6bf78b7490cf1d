{{/* Names: the release name, or release-chart when the release name does not contain the chart's. */}}
{{- define "kibertas-async.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kibertas-async.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
The time budget (docs/deploy.md; tests/deploy/test_time_budget.py checks the rendering):
the Job's deadline is 5 minutes after the engine's run timeout and below run timeout + cleanup budget;
the grace period covers the cleanup budget (a check has at most 5 cleanup actions, the ingress check)
plus the notification, with a minute to spare.
*/}}
{{- define "kibertas-async.maxCleanupActions" -}}5{{- end -}}

{{- define "kibertas-async.activeDeadlineSeconds" -}}
{{- $t := .Values.timeouts -}}
{{- $deadline := add (int $t.run) 300 -}}
{{- if ge (int $deadline) (int (add (int $t.run) (mul (int $t.cleanup) (int (include "kibertas-async.maxCleanupActions" .))))) -}}
{{- fail "timeouts.cleanup is too short for the Job deadline (run + 300 s must stay below run + 5 x cleanup)" -}}
{{- end -}}
{{- $deadline -}}
{{- end -}}

{{- define "kibertas-async.terminationGracePeriodSeconds" -}}
{{- $t := .Values.timeouts -}}
{{- add (mul (int $t.cleanup) (int (include "kibertas-async.maxCleanupActions" .))) (int $t.notify) 60 -}}
{{- end -}}

{{/* Whether the Job is sharded (values shards >= 2; docs/sharding.md); refuses half a configuration. */}}
{{- define "kibertas-async.sharded" -}}
{{- if ge (int .Values.shards) 2 -}}
{{- if .Values.schedule -}}
{{- fail "shards and schedule cannot be combined (a CronJob creates one Job; the merge waits for a named one)" -}}
{{- end -}}
{{- if not (hasPrefix "s3://" .Values.sharding.reportS3) -}}
{{- fail "shards needs sharding.reportS3 (s3://BUCKET/PREFIX/), where the shards write and the merge reads" -}}
{{- end -}}
{{- if not .Values.sharding.clusters -}}
{{- fail "shards needs sharding.clusters, the kubeconfig contexts to check (comma-separated)" -}}
{{- end -}}
{{- if le (int .Values.sharding.mergeWait) (add (include "kibertas-async.activeDeadlineSeconds" .) (include "kibertas-async.terminationGracePeriodSeconds" .) | int) -}}
{{- fail "sharding.mergeWait must exceed the shards' activeDeadlineSeconds + terminationGracePeriodSeconds" -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{/* The Job spec, shared by the Job and the CronJob's jobTemplate. Keep it equal to deploy/base/job.yaml
(and, sharded, to deploy/components/sharded). */}}
{{- define "kibertas-async.jobSpec" -}}
{{- $sharded := include "kibertas-async.sharded" . -}}
{{- if $sharded -}}
# Shards: no retry of any index, and one shard's NG does not stop the others (docs/sharding.md).
completionMode: Indexed
completions: {{ int .Values.shards }}
parallelism: {{ int .Values.shards }}
backoffLimitPerIndex: 0
{{- else -}}
# No retries: a failed pod may still be cleaning up for up to terminationGracePeriodSeconds, and a
# retry would run a second set of checks beside it (docs/deploy.md).
backoffLimit: 0
{{- end }}
activeDeadlineSeconds: {{ include "kibertas-async.activeDeadlineSeconds" . }}
ttlSecondsAfterFinished: {{ .Values.ttlSecondsAfterFinished }}
template:
  metadata:
    labels:
      {{- include "kibertas-async.labels" . | nindent 6 }}
  spec:
    serviceAccountName: {{ include "kibertas-async.fullname" . }}
    restartPolicy: Never
    terminationGracePeriodSeconds: {{ include "kibertas-async.terminationGracePeriodSeconds" . }}
    securityContext:
      runAsNonRoot: true
      runAsUser: 65532
      runAsGroup: 65532
      seccompProfile:
        type: RuntimeDefault
    containers:
    - name: kibertas-async
      image: {{ printf "%s:%s" .Values.image.repository (toString .Values.image.tag) | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
      - run
      {{- if .Values.checks }}
      {{- range .Values.checks }}
      - {{ . | quote }}
      {{- end }}
      {{- else }}
      - --all
      {{- end }}
      - --log-format
      - json
      - --config
      - /etc/kibertas-async/kibertas-async.yaml
      - --run-timeout
      - {{ printf "%ds" (int .Values.timeouts.run) }}
      - --cleanup-timeout
      - {{ printf "%ds" (int .Values.timeouts.cleanup) }}
      - --notify-timeout
      - {{ printf "%ds" (int .Values.timeouts.notify) }}
      {{- range .Values.extraArgs }}
      - {{ . | quote }}
      {{- end }}
      env:
      {{- if $sharded }}
      - name: KIBERTAS_ASYNC_SHARDS
        value: {{ int .Values.shards | quote }}
      - name: KIBERTAS_ASYNC_RUN_ID
        valueFrom:
          fieldRef:
            fieldPath: metadata.labels['batch.kubernetes.io/controller-uid']
      - name: KIBERTAS_ASYNC_REPORT_S3
        value: {{ .Values.sharding.reportS3 | quote }}
      - name: KIBERTAS_ASYNC_CLUSTERS
        value: {{ .Values.sharding.clusters | quote }}
      - name: KUBECONFIG
        value: /etc/kibertas-async-kubeconfig/kubeconfig
      {{- end }}
      {{- /* The reference tool's Secret keys, all optional (docs/deploy.md, "The Secret"). */}}
      {{- range list "DD_API_KEY=dd-api-key" "DD_APP_KEY=dd-app-key" "CLUSTER_NAME=cluster-name" "DD_CLUSTER_NAME=cluster-name" "CHATWORK_ROOM_ID=chatwork-room-id" "CHATWORK_API_TOKEN=chatwork-api-token" }}
      {{- $pair := splitList "=" . }}
      - name: {{ index $pair 0 }}
        valueFrom:
          secretKeyRef:
            name: {{ $.Values.secretName }}
            key: {{ index $pair 1 }}
            optional: true
      {{- end }}
      {{- with .Values.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop:
          - ALL
      volumeMounts:
      - name: tmp
        mountPath: /tmp
      - name: config
        mountPath: /etc/kibertas-async
        readOnly: true
      {{- if $sharded }}
      - name: kubeconfig
        mountPath: /etc/kibertas-async-kubeconfig
        readOnly: true
      {{- end }}
    volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
    - name: config
      configMap:
        name: {{ include "kibertas-async.fullname" . }}-config
    {{- if $sharded }}
    - name: kubeconfig
      secret:
        secretName: {{ .Values.sharding.kubeconfigSecret }}
    {{- end }}
    {{- with .Values.nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.affinity }}
    affinity:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end -}}
