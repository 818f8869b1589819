"""Compose the AWS pieces: provider → VPC → EKS → node pools → Kubernetes provider → add-ons."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.aws.addons import Addons, AddonsArgs
from infra.aws.cluster import EksCluster, EksClusterArgs
from infra.aws.network import Network, NetworkArgs
from infra.aws.node_pools import NodePools, NodePoolsArgs
from infra.aws.tags import base_tags
from infra.config.stack import StackConfig


@dataclass(frozen=True, kw_only=True)
class ClusterHandle:
    """What the serving stack needs from a cluster, however it was obtained."""

    provider: k8s.Provider
    """Kubernetes provider every serving resource uses."""
    kubeconfig: pulumi.Output[str]
    """Kubeconfig (secret)."""
    name: pulumi.Input[str]
    """Cluster name."""
    endpoint: pulumi.Input[str] | None = None
    """API server URL (EKS only)."""
    ready: tuple[pulumi.Resource, ...] = ()
    """Resources the serving stack must wait for (node pools, add-ons)."""


def build_eks(config: StackConfig, stack: str) -> ClusterHandle:
    """A new EKS cluster with its VPC, node pools and add-ons, and a provider for it."""
    cluster_cfg, eks = config.cluster, config.cluster.eks
    assert eks is not None  # mode 'eks' is checked by the config model
    tags = base_tags(stack=stack, cluster=cluster_cfg.name, extra=cluster_cfg.tags)
    aws_provider = aws.Provider("aws", region=eks.region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags))
    on_aws = pulumi.ResourceOptions(provider=aws_provider)
    network = Network("vpc", NetworkArgs(cluster_name=cluster_cfg.name, eks=eks), on_aws)
    subnets = network.private_subnet_ids
    cluster = EksCluster("eks", EksClusterArgs(cluster=cluster_cfg, subnet_ids=subnets), on_aws)
    pools = NodePools("pools", NodePoolsArgs(
        cluster_name=cluster.name, kubernetes_version=cluster_cfg.kubernetes_version,
        pools=config.node_pools, subnet_ids=subnets), on_aws)
    provider = k8s.Provider("eks", kubeconfig=cluster.kubeconfig,
                            opts=pulumi.ResourceOptions(depends_on=[cluster]))
    addons = Addons("addons", AddonsArgs(
        cluster_name=cluster.name, oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer=cluster.oidc_issuer,
        provider=provider, node_groups=tuple(pools.node_groups.values())), on_aws)
    return ClusterHandle(provider=provider, kubeconfig=cluster.kubeconfig, name=cluster.name,
                         endpoint=cluster.endpoint, ready=(pools, addons))
