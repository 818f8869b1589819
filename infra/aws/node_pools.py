"""GPU and system node pools: per `llm-stack:nodePools` key one launch template and one EKS
managed node group per zone of the pool. GPU pools run the AL2023 NVIDIA AMI and carry the GPU
taint; each pool runs in its zones only (a GPU pool in one zone by default) and may launch into
a capacity reservation or Capacity Block. The cluster autoscaler (`autoscaler.py`) moves each
group between its min and max size.

A pool in several zones (the system pool) gets one node group per zone, as the autoscaler's AWS
README says for pods with EBS volumes ("use a single AZ ASG ... or an ASG-per-AZ while enabling
--balance-similar-node-groups"): Prometheus's gp3 volume is zonal, and a multi-zone group
replaces a lost node in whichever zone it likes and cannot be asked for a node in a given zone,
so Prometheus (and with it KEDA's triggers and the alerts) could stay Pending. Per zone, the
autoscaler grows exactly the zone a pending pod's volume needs. A single-zone pool keeps one
group under the pool's own name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.iam import NODE_POLICIES, AttachedRole, role, service_trust_policy
from infra.aws.user_data import user_data
from infra.config.catalog import INSTANCES
from infra.config.pools import NODE_POOL_LABEL, NodePoolConfig, capacity_block_start

GPU_TAINT: aws.eks.NodeGroupTaintArgsDict = {
    "key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE",
}
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"  # the NVIDIA device plugin chart's default node affinity
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
"""Set before the device plugin reports GPUs, so the cluster autoscaler does not scale out twice
(kubernetes/autoscaler, cluster-autoscaler/cloudprovider/aws/README.md, "Special note on GPU instances")."""
IMDS_HOP_LIMIT = 1
"""IMDSv2 response hop limit 1: pods (one hop further) cannot read the node role's credentials;
everything that needs AWS uses IRSA, and host-network pods (VPC CNI) are not a hop away."""
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
    subnets_by_zone: Mapping[str, pulumi.Input[str]]
    """Private subnet of each cluster zone; a pool gets those of its zones."""
    zones: Mapping[str, tuple[str, ...]]
    """Each pool's zones, as the preflight chose them from EC2's offerings (`preflight.zones`)."""
    cluster_ready: Sequence[pulumi.Resource] = ()
    """What nodes need before they can join (the cluster, NAT routes) and must outlive them."""
    now: datetime | None = None
    """The time of this run (UTC): a Capacity Block start already past gets no scheduled action
    (EC2 Auto Scaling refuses one in the past). None: every configured start is scheduled."""


def node_labels(name: str, pool: NodePoolConfig) -> dict[str, str]:
    """Labels of a pool's nodes: the pool name, GPU presence, and the configured extras."""
    labels = {NODE_POOL_LABEL: name}
    instance = INSTANCES[pool.instance_type]
    if instance.gpus:
        labels[GPU_PRESENT_LABEL] = "true"
        models = dict.fromkeys((INSTANCES[t].gpu or "gpu").split("-")[0].lower() for t in pool.instance_types)
        labels[ACCELERATOR_LABEL] = "nvidia-" + "-".join(models)  # a group's label: every model it may run
    return labels | dict(pool.labels)


def node_taints(pool: NodePoolConfig) -> list[aws.eks.NodeGroupTaintArgsDict]:
    """Taints of a pool's nodes (EKS API spelling): the GPU taint first, then the configured ones."""
    taints: list[aws.eks.NodeGroupTaintArgsDict] = [GPU_TAINT.copy()] if pool.gpus else []
    return taints + [{"key": t.key, "value": t.value, "effect": _EFFECTS[t.effect]} for t in pool.taints]


def launch_template_args(name: str, pool: NodePoolConfig) -> dict:
    """Launch-template inputs: encrypted gp3 root disk, IMDSv2 only (hop limit 1), nodeadm user
    data, and the capacity reservation or Capacity Block when the pool names one."""
    instance = INSTANCES[pool.instance_type]
    return {
        "description": f"llm-stack node pool {name} ({pool.instance_type})",
        "block_device_mappings": [{"device_name": "/dev/xvda", "ebs": {
            "volume_size": pool.disk_gib, "volume_type": "gp3", "iops": 3000,
            "throughput": 250 if pool.gpus else 125, "encrypted": "true", "delete_on_termination": "true"}}],
        "metadata_options": {"http_endpoint": "enabled", "http_tokens": "required",
                             "http_put_response_hop_limit": IMDS_HOP_LIMIT},
        "user_data": user_data(nvme=instance.nvme_gb > 0),
        "update_default_version": True,
    } | reservation_args(pool)


def reservation_args(pool: NodePoolConfig) -> dict[str, Any]:
    """Launch-template inputs for a capacity reservation; a Capacity Block also needs the
    `capacity-block` market type and the instance type in the template (EKS user guide,
    "Create a managed node group with Capacity Blocks for ML")."""
    if pool.capacity_reservation_id is None:
        return {}
    target = {"capacity_reservation_target": {"capacity_reservation_id": pool.capacity_reservation_id}}
    args: dict[str, Any] = {"capacity_reservation_specification": target}
    if pool.capacity_type == "CAPACITY_BLOCK":
        args |= {"instance_market_options": {"market_type": "capacity-block"},
                 "instance_type": pool.instance_type}
    return args


CAPACITY_BLOCK_START_ACTION = "llm-stack Capacity Block start"


def capacity_block_schedule(pool: NodePoolConfig, now: datetime | None) -> dict[str, Any] | None:
    """Scheduled-action inputs (aws.autoscaling.Schedule) that grow a Capacity Block pool's group
    to `maxSize` at the block's start, or None (no start configured, or already past on `now`).

    The EKS user guide ("Create a managed node group with Capacity Blocks for ML") creates such a
    group at desiredSize 0 and names a scheduled scaling action at the reservation's start as one
    way to scale it up; at the end EKS adds its own ("Amazon EKS Node Group Capacity Scaledown
    Before Reservation End", 40 minutes before: EC2 shuts the instances down at 30). min stays 0,
    so the cluster autoscaler may still remove nodes no engine uses."""
    if pool.capacity_type != "CAPACITY_BLOCK" or pool.capacity_block_start is None:
        return None
    start = capacity_block_start(pool.capacity_block_start)
    if now is not None and start <= now:
        return None
    return {"scheduled_action_name": CAPACITY_BLOCK_START_ACTION,
            "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "min_size": 0, "desired_capacity": pool.max_size, "max_size": pool.max_size}


def scaling_config(pool: NodePoolConfig) -> aws.eks.NodeGroupScalingConfigArgsDict:
    """The node group's size bounds: the autoscaler keeps it within min..max (max is the pool's cost
    cap, and the bound the config's node-fit rule checks the models' max replicas against)."""
    return {"min_size": pool.min_size, "desired_size": pool.desired_size, "max_size": pool.max_size}


def _share(total: int, parts: int) -> list[int]:
    """`total` split over `parts` as evenly as integers allow, the remainder to the first ones."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def zone_groups(name: str, pool: NodePoolConfig, zones: tuple[str, ...]
                ) -> list[tuple[str, str | None, aws.eks.NodeGroupScalingConfigArgsDict]]:
    """(node group name, its zone or None for all, its size bounds) per group of a pool: one
    group named as the pool for a single zone; else `<pool>-<zone>` per zone, the pool's sizes
    shared out (the first zones get the remainder) and every zone allowed at least one node, so
    the autoscaler can always add a node where a volume is (the sum of the maxima then exceeds
    `maxSize` by the zones it could not cover)."""
    if len(zones) <= 1:
        return [(name, zones[0] if zones else None, scaling_config(pool))]
    sizes = zip(_share(pool.min_size, len(zones)), _share(pool.desired_size, len(zones)),
                _share(pool.max_size, len(zones)), strict=True)
    return [(f"{name}-{zone}", zone, {"min_size": lo, "desired_size": want, "max_size": max(hi, 1)})
            for zone, (lo, want, hi) in zip(zones, sizes, strict=True)]


class NodePools(pulumi.ComponentResource):
    """The node role and one managed node group per pool."""

    node_groups: dict[str, tuple[aws.eks.NodeGroup, ...]]
    """Each pool's node groups (one per zone of a multi-zone pool)."""
    node_role: aws.iam.Role
    """The nodes' role (add-ons grant it more, e.g. filling the image cache)."""

    def __init__(self, name: str, args: NodePoolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-stack:aws:NodePools", name, None, opts)
        node_role = role(f"{name}-node", service_trust_policy("ec2.amazonaws.com"), NODE_POLICIES,
                         description="EKS worker nodes of llm-stack", parent=self)
        self.node_role = node_role.role
        self.node_groups = {
            pool_name: self._pool(name, pool_name, pool, args, node_role)
            for pool_name, pool in args.pools.items()
        }
        self.register_outputs({"nodeGroups": {k: [g.node_group_name for g in groups]
                                               for k, groups in self.node_groups.items()}})

    def _pool(self, prefix: str, name: str, pool: NodePoolConfig, args: NodePoolsArgs,
              node_role: AttachedRole) -> tuple[aws.eks.NodeGroup, ...]:
        child = pulumi.ResourceOptions(parent=self)
        template = aws.ec2.LaunchTemplate(f"{prefix}-{name}", **launch_template_args(name, pool), opts=child)
        zones = args.zones[name]
        in_template = pool.capacity_type == "CAPACITY_BLOCK"  # the instance type is the template's
        groups = tuple(aws.eks.NodeGroup(
            f"{prefix}-{group}", cluster_name=args.cluster_name, node_group_name=group,
            version=args.kubernetes_version, node_role_arn=node_role.arn,
            subnet_ids=[args.subnets_by_zone[z] for z in ((zone,) if zone else zones)],
            ami_type="AL2023_x86_64_NVIDIA" if pool.gpus else "AL2023_x86_64_STANDARD",
            instance_types=None if in_template else list(pool.instance_types),
            capacity_type=pool.capacity_type,
            scaling_config=scaling, update_config={"max_unavailable": 1},
            labels=node_labels(name, pool), taints=node_taints(pool),
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            tags={"llm-stack/node-pool": name},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*node_role.ready, *args.cluster_ready],
                                        ignore_changes=["scalingConfig.desiredSize"]))
            for group, zone, scaling in zone_groups(name, pool, zones))
        schedule = capacity_block_schedule(pool, args.now)
        for group in groups if schedule is not None else ():  # a block's pool has one zone: one group
            aws.autoscaling.Schedule(
                f"{prefix}-{name}-block-start", autoscaling_group_name=group.resources.apply(_asg_name),
                **(schedule or {}), opts=pulumi.ResourceOptions(parent=group))
        return groups


def _asg_name(resources: Sequence[Any] | None) -> str:
    """The Auto Scaling group behind a managed node group (EKS reports one)."""
    groups = resources[0].autoscaling_groups if resources else None
    assert groups and groups[0].name, f"EKS reported no Auto Scaling group ({resources!r})"
    return groups[0].name
