"""Node autoscaling: the Kubernetes cluster autoscaler over the EKS managed node groups.

Each pool's node group is an Auto Scaling group EKS tags for the autoscaler's auto-discovery;
the autoscaler adds nodes when pods are Pending for lack of room (a GPU pool scales up from 0:
it reads labels and taints from `eks:DescribeNodegroup` and the GPU count from the instance
type) and removes idle ones, never leaving a group's min..max (the pool's `minSize`/`maxSize`;
`maxSize` is the pool's cost cap). Sources: kubernetes/autoscaler at tag
cluster-autoscaler-chart-9.59.0 (charts/cluster-autoscaler/values.yaml and
cloudprovider/aws/README.md), the EKS user guide (managed-node-groups.adoc).
"""

from __future__ import annotations

import json
from typing import Any

from infra.aws.helm import HelmChart
from infra.config.pools import NODE_POOL_LABEL

CLUSTER_AUTOSCALER = HelmChart(name="cluster-autoscaler", version="9.59.0",
                               repo="https://kubernetes.github.io/autoscaler")
SERVICE_ACCOUNT = ("kube-system", "cluster-autoscaler")
IMAGE_TAGS = {"1.35": "v1.35.2", "1.34": "v1.34.5", "1.33": "v1.33.6", "1.32": "v1.32.7", "1.31": "v1.31.5",
              "1.30": "v1.30.7", "1.29": "v1.29.5", "1.28": "v1.28.7"}
"""The autoscaler release per Kubernetes minor (it must match the control plane's minor); the
newest patch tag of each `cluster-autoscaler-1.N` line in kubernetes/autoscaler."""


def image_tag(kubernetes_version: str) -> str:
    """The autoscaler image tag for a control-plane minor: the pinned patch, else `v1.N.0`, the first
    release of that minor's line (the autoscaler's README: "Starting from Kubernetes 1.12, versioning
    scheme was changed to match Kubernetes minor releases exactly")."""
    return IMAGE_TAGS.get(kubernetes_version) or f"v{kubernetes_version}.0"


def image_tag_warning(kubernetes_version: str, key: str) -> str | None:
    """A warning when the tag is derived, not pinned (None when pinned), naming the config key."""
    if kubernetes_version in IMAGE_TAGS:
        return None
    return (f"{key} = {kubernetes_version}: no cluster-autoscaler patch pinned for it "
            f"(infra/aws/autoscaler.py IMAGE_TAGS); deploying {image_tag(kubernetes_version)}, the first "
            f"release of its line, on chart {CLUSTER_AUTOSCALER.version}: pin the line's newest patch "
            f"(and a chart that supports it) when you can")


def ownership_tag(cluster_name: str) -> str:
    """The tag EKS puts on every managed node group's Auto Scaling group (value `owned`), which
    the chart's auto-discovery (`autoDiscovery.clusterName`) also selects groups by."""
    return f"k8s.io/cluster-autoscaler/{cluster_name}"


def autoscaler_policy(cluster_name: str) -> str:
    """The IAM policy of the autoscaler's IRSA role: the README's "Full Cluster Autoscaler
    Features Policy" (auto-discovery, dynamic instance list, scale from zero via DescribeNodegroup),
    with its second block restricted as the README "strongly recommends": resizing and terminating
    only Auto Scaling groups tagged as this cluster's (not every group in the account)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Resource": ["*"], "Action": [
            "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
            "ec2:DescribeImages", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplateVersions",
            "ec2:GetInstanceTypesFromInstanceRequirements", "eks:DescribeNodegroup"]},
        {"Effect": "Allow", "Resource": ["*"], "Action": [
            "autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
         "Condition": {"StringEquals": {f"aws:ResourceTag/{ownership_tag(cluster_name)}": "owned"}}},
    ]}, sort_keys=True)


def autoscaler_values(*, cluster_name: str, region: str, kubernetes_version: str, role_arn: Any,
                      system_pool: str) -> dict[str, Any]:
    """Chart values: auto-discovery of this cluster's node groups, IRSA, on the system pool.

    `skip-nodes-with-local-storage: false` lets idle GPU nodes go although engines keep their
    model cache in an emptyDir; `balance-similar-node-groups` spreads a multi-zone pool's growth
    over its per-zone groups (`node_pools.zone_groups`); `least-waste` picks the group that
    leaves the fewest idle GPUs."""
    account = SERVICE_ACCOUNT[1]
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "image": {"tag": image_tag(kubernetes_version)},
        "rbac": {"serviceAccount": {"name": account,
                                    "annotations": {"eks.amazonaws.com/role-arn": role_arn}}},
        "nodeSelector": {NODE_POOL_LABEL: system_pool},
        "extraArgs": {"balance-similar-node-groups": True, "expander": "least-waste",
                      "skip-nodes-with-local-storage": False},
    }
