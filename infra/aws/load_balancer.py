"""The AWS Load Balancer Controller (Helm, IRSA with AWS's published policy) and the router
Service annotations it reads.

Only this controller reads `aws-load-balancer-scheme`; it reconciles Services whose
`aws-load-balancer-type` is `external` and leaves `nlb` to the legacy in-tree provider, which
ignores the scheme and makes an internet-facing NLB. Sources: kubernetes-sigs/aws-load-balancer-
controller v3.5.0 (helm/aws-load-balancer-controller, docs/install/iam_policy.json,
docs/guide/service/annotations.md, docs/deploy/installation.md: chart repo aws.github.io/eks-charts).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from infra.aws.helm import HelmChart
from infra.config.exposure import ExposureConfig
from infra.config.pools import NODE_POOL_LABEL

LOAD_BALANCER_CONTROLLER = HelmChart(name="aws-load-balancer-controller", version="3.5.0",
                                     repo="https://aws.github.io/eks-charts")
SERVICE_ACCOUNT = ("kube-system", "aws-load-balancer-controller")
POLICY_FILE = "aws-load-balancer-controller-v3.5.0.json"
"""docs/install/iam_policy.json at tag v3.5.0, vendored unchanged (sha256 16f232c9...)."""
_PREFIX = "service.beta.kubernetes.io/"
READINESS_GATE_LABEL = {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}
"""On the namespace: the controller's webhook injects a readiness gate into new pods behind an
`ip`-target NLB, Ready only once their target is healthy (docs/deploy/pod_readiness_gate.md)."""
NLB_PRESTOP_S = 30
"""A terminating router pod's wait before SIGTERM behind an NLB: the endpoint change reaches the
controller, it deregisters the target, and the NLB stops opening new flows to it (believed;
in-cluster only, 5 s covers the endpoints)."""
MAX_DEREGISTRATION_DELAY_S = 3600
"""ELB's range for `deregistration_delay.timeout_seconds` is 0-3600 s, default 300 (AWS API
reference, TargetGroupAttribute)."""


def controller_policy() -> str:
    """AWS's published IAM policy for the controller (commercial partitions)."""
    text = resources.files("infra.aws").joinpath("policies", POLICY_FILE).read_text()
    return json.dumps(json.loads(text), sort_keys=True)


def controller_values(*, cluster_name: str, region: str, vpc_id: Any, role_arn: Any,
                      system_pool: str) -> dict[str, Any]:
    """Chart values: the cluster, region and VPC given (no IMDS lookups: nodes allow one hop),
    IRSA on the controller's service account, two replicas on the system pool.

    The chart's Service mutator webhook is off. It is on by default (values.yaml
    `enableServiceMutatorWebhook: true`, `serviceMutatorWebhookConfig.failurePolicy: Fail`, on
    every Service CREATE: templates/webhook.yaml `mservice.elbv2.k8s.aws`), so while the
    controller's pods are not ready it rejects every new Service: metrics-server's and the
    autoscaler's, installed beside it, and their atomic releases roll back
    (kubernetes-sigs/aws-load-balancer-controller#4140). All it does is set
    `spec.loadBalancerClass` on LoadBalancer Services that have none (webhooks/core/
    service_mutator.go `MutateCreate`); ours opt in by the `aws-load-balancer-type: external`
    annotation instead (`service_annotations`; docs/guide/service/nlb.md)."""
    account = SERVICE_ACCOUNT[1]
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "replicaCount": 2,
        "serviceAccount": {"create": True, "name": account,
                           "annotations": {"eks.amazonaws.com/role-arn": role_arn}},
        "nodeSelector": {NODE_POOL_LABEL: system_pool},
        "enableServiceMutatorWebhook": False,
    }


def service_annotations(exposure: ExposureConfig, port_name: str, *, drain_s: int = 300) -> dict[str, str]:
    """The router Service's annotations for `exposure`: none in-cluster; else an NLB with IP
    targets, its scheme, a deregistration delay that lets a draining router finish its open
    streams (its preStop wait + `drain_s`), TLS on the router's port when a certificate is given,
    and the allowed source ranges."""
    if exposure.kind == "cluster":
        return {}
    scheme = "internet-facing" if exposure.kind == "public" else "internal"
    delay = min(MAX_DEREGISTRATION_DELAY_S, NLB_PRESTOP_S + drain_s)
    out = {_PREFIX + "aws-load-balancer-type": "external",
           _PREFIX + "aws-load-balancer-nlb-target-type": "ip",
           _PREFIX + "aws-load-balancer-scheme": scheme,
           _PREFIX + "aws-load-balancer-target-group-attributes":
               f"deregistration_delay.timeout_seconds={delay}"}
    if exposure.tls_certificate_arn:
        out |= {_PREFIX + "aws-load-balancer-ssl-cert": exposure.tls_certificate_arn,
                _PREFIX + "aws-load-balancer-ssl-ports": port_name}
    if exposure.source_ranges:
        out[_PREFIX + "load-balancer-source-ranges"] = ",".join(exposure.source_ranges)
    return out


def nlb_endpoint(exposure: ExposureConfig, host: str | None, port: int) -> str | None:
    """The router's base URL through its NLB: `https` when the NLB terminates TLS on the
    router's port (`service_annotations`), else `http`; None in-cluster or before the Service
    has an address."""
    if exposure.kind == "cluster" or not host:
        return None
    scheme = "https" if exposure.tls_certificate_arn else "http"
    return f"{scheme}://{host}:{port}"
