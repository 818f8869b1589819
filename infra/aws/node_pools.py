"""GPU and system node pools: one EKS managed node group (with its launch template) per
`llm-stack:nodePools` key. GPU pools run the AL2023 NVIDIA AMI and carry the GPU taint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.iam import NODE_POLICIES, role, service_trust_policy
from infra.aws.user_data import user_data
from infra.config.catalog import INSTANCES
from infra.config.pools import NODE_POOL_LABEL, NodePoolConfig

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"  # the NVIDIA device plugin chart's default node affinity
_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}


@dataclass(frozen=True, kw_only=True)
class NodePoolsArgs:
    """The pools and where they go."""

    cluster_name: pulumi.Input[str]
    """EKS cluster name."""
    kubernetes_version: str
    """Kubelet version of every pool."""
    pools: Mapping[str, NodePoolConfig]
    """Pools keyed by name (resource names derive from the key)."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets the nodes run in."""


def node_labels(name: str, pool: NodePoolConfig) -> dict[str, str]:
    """Labels of a pool's nodes: the pool name, GPU presence, and the configured extras."""
    labels = {NODE_POOL_LABEL: name}
    if pool.gpus:
        labels[GPU_PRESENT_LABEL] = "true"
    return labels | dict(pool.labels)


def node_taints(pool: NodePoolConfig) -> list[dict[str, str]]:
    """Taints of a pool's nodes (EKS API spelling): the GPU taint first, then the configured ones."""
    taints = [dict(GPU_TAINT)] if pool.gpus else []
    return taints + [{"key": t.key, "value": t.value, "effect": _EFFECTS[t.effect]} for t in pool.taints]


def launch_template_args(name: str, pool: NodePoolConfig) -> dict:
    """Launch-template inputs: encrypted gp3 root disk, IMDSv2 only, nodeadm user data."""
    instance = INSTANCES[pool.instance_type]
    return {
        "description": f"llm-stack node pool {name} ({pool.instance_type})",
        "block_device_mappings": [{"device_name": "/dev/xvda", "ebs": {
            "volume_size": pool.disk_gib, "volume_type": "gp3", "iops": 3000,
            "throughput": 250 if pool.gpus else 125, "encrypted": "true", "delete_on_termination": "true"}}],
        "metadata_options": {"http_endpoint": "enabled", "http_tokens": "required",
                             "http_put_response_hop_limit": 2},
        "user_data": user_data(nvme=instance.nvme_gb > 0),
        "update_default_version": True,
    }


class NodePools(pulumi.ComponentResource):
    """The node role and one managed node group per pool."""

    node_groups: dict[str, aws.eks.NodeGroup]

    def __init__(self, name: str, args: NodePoolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-stack:aws:NodePools", name, None, opts)
        node_role = role(f"{name}-node", service_trust_policy("ec2.amazonaws.com"), NODE_POLICIES,
                         description="EKS worker nodes of llm-stack", parent=self)
        self.node_groups = {
            pool_name: self._pool(name, pool_name, pool, args, node_role)
            for pool_name, pool in args.pools.items()
        }
        self.register_outputs({"nodeGroups": {k: g.node_group_name for k, g in self.node_groups.items()}})

    def _pool(self, prefix: str, name: str, pool: NodePoolConfig, args: NodePoolsArgs,
              node_role: aws.iam.Role) -> aws.eks.NodeGroup:
        child = pulumi.ResourceOptions(parent=self)
        template = aws.ec2.LaunchTemplate(f"{prefix}-{name}", **launch_template_args(name, pool), opts=child)
        return aws.eks.NodeGroup(
            f"{prefix}-{name}", cluster_name=args.cluster_name, node_group_name=name,
            version=args.kubernetes_version, node_role_arn=node_role.arn, subnet_ids=list(args.subnet_ids),
            ami_type="AL2023_x86_64_NVIDIA" if pool.gpus else "AL2023_x86_64_STANDARD",
            instance_types=[pool.instance_type], capacity_type=pool.capacity_type,
            scaling_config={"min_size": pool.min_size, "desired_size": pool.desired_size,
                            "max_size": pool.max_size},
            update_config={"max_unavailable": 1},
            labels=node_labels(name, pool), taints=node_taints(pool),
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            tags={"k8s.io/cluster-autoscaler/enabled": "true", "llm-stack/node-pool": name},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[node_role],
                                        ignore_changes=["scalingConfig.desiredSize"]))
