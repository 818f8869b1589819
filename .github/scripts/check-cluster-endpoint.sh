#!/usr/bin/env bash
# Fail early, and say why, when this runner cannot reach the stack's Kubernetes API. Usage:
#   check-cluster-endpoint.sh PULUMI_STACK
# Reads the stack's `clusterEndpoint` output (absent before the first deploy, or with
# cluster.mode 'existing': nothing to check then) and opens a TLS connection to it. Any HTTP
# answer, 401 and 403 included, means reachable; no credentials are sent. A timeout, a refused
# connection or an unresolvable name means the endpoint admits no traffic from here: EKS's
# public endpoint takes only cluster.eks.publicAccessCidrs, its private one only the VPC, and
# GitHub-hosted runners are in neither (their ranges are too many to allow-list).
set -uo pipefail

stack="$1"
connect_s="${ENDPOINT_CONNECT_TIMEOUT_S:-10}"

if ! endpoint="$(pulumi stack output clusterEndpoint --stack "$stack" 2>/dev/null)" || [ -z "$endpoint" ]; then
  echo "check-cluster-endpoint: stack $stack has no clusterEndpoint output yet; nothing to check"
  exit 0
fi

code="$(curl --silent --insecure --output /dev/null --write-out '%{http_code}' \
  --connect-timeout "$connect_s" --max-time $((connect_s * 2)) "$endpoint/version")"
status=$?
if [ "$status" -eq 0 ]; then
  echo "check-cluster-endpoint: $endpoint answers (HTTP $code)"
  exit 0
fi
cat >&2 <<EOF
::error::This runner cannot reach the cluster API $endpoint (curl exit $status). EKS admits only cluster.eks.publicAccessCidrs on its public endpoint and the VPC on its private one; a GitHub-hosted runner is in neither. Run this workflow on a runner inside the VPC: set the repository variable LLMSTACK_RUNNER_LABELS to a self-hosted or ARC runner's labels (a JSON array, e.g. ["self-hosted","llm-stack"]) or LLMSTACK_CODEBUILD_PROJECT to a CodeBuild project in the VPC (README, CI/CD: runners that reach the cluster).
EOF
exit 1
