#!/usr/bin/env bash
# Wait for the stack's benchmark Job to reach a terminal condition and say whether its results
# belong to this deploy. Usage:
#   wait-benchmark-job.sh NAMESPACE DEPLOY_STARTED_EPOCH TIMEOUT_S OUT_FILE
# Appends `gate=run|skip` and `job=<name>` to OUT_FILE ($GITHUB_OUTPUT in the workflow).
#
# Terminal means a Job condition `Complete` or `Failed` with status True (Kubernetes docs,
# concepts/workloads/controllers/job.md "Terminal Job conditions"): a failed pod alone is not,
# since the Job controller retries it until `.spec.backoffLimit`, and `.status.failed` counts
# those retries. `kubectl wait --for=condition=Complete` cannot stop on `Failed` too (one
# condition per wait), so the conditions are polled instead.
#
# The Job is replaced only when the serving digest (its pod template's llmstack.io/serving-sha256)
# changes; a Job created before this deploy started is the previous deploy's, and its results
# are not this deploy's to gate on: gate=skip, exit 0.
# Exit 1: no Job, the Job failed, it vanished, or it did not finish within TIMEOUT_S.
set -euo pipefail

ns="$1" started="$2" timeout_s="$3" out="$4"
poll_s="${BENCH_POLL_S:-30}"

if ! jobs="$(kubectl -n "$ns" get jobs -l llmstack.io/role=benchmark -o name)"; then
  echo "::error::could not list the Jobs in namespace $ns (kubectl failed: see above)" >&2
  exit 1
fi
job="${jobs%%$'\n'*}"
if [ -z "$job" ]; then
  echo "::error::no benchmark Job (label llmstack.io/role=benchmark) in namespace $ns" >&2
  exit 1
fi
echo "job=${job#*/}" >> "$out"

created="$(kubectl -n "$ns" get "$job" -o jsonpath='{.metadata.creationTimestamp}')"
digest="$(kubectl -n "$ns" get "$job" \
  -o jsonpath='{.spec.template.metadata.annotations.llmstack\.io/serving-sha256}')"
if [ "$(date -u -d "$created" +%s)" -lt "$started" ]; then
  echo "::notice::$job was created at $created, before this deploy: the serving digest" \
       "(${digest:-none}) did not change, so the benchmark did not run again and its earlier" \
       "results are not this deploy's; not gating" >&2
  echo "gate=skip" >> "$out"
  exit 0
fi

deadline=$((SECONDS + timeout_s))
while :; do
  if ! conditions="$(kubectl -n "$ns" get "$job" \
        -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')"; then
    echo "::error::$job could not be read (deleted while waiting?)" >&2
    exit 1
  fi
  case " $conditions " in
    *" Complete "*) break ;;
    *" Failed "*)
      reason="$(kubectl -n "$ns" get "$job" \
        -o jsonpath='{.status.conditions[?(@.type=="Failed")].reason}' || true)"
      echo "::error::$job failed (${reason:-no reason given}); its pods' logs are in the artifact" >&2
      exit 1 ;;
  esac
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "::error::$job did not finish in ${timeout_s}s (conditions: ${conditions:-none})" >&2
    exit 1
  fi
  sleep "$poll_s"
done
echo "gate=run" >> "$out"
