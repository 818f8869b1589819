"""Compose the AWS pieces: provider → VPC → EKS → node pools → Kubernetes provider → add-ons."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.aws.addons import Addons, AddonsArgs
from infra.aws.cluster import EksCluster, EksClusterArgs
from infra.aws.model_store import ModelStoreAccess, ModelStoreAccessArgs, service_account_name
from infra.aws.network import Network, NetworkArgs
from infra.aws.node_pools import NodePools, NodePoolsArgs
from infra.aws.registry import docker_hub_cache
from infra.aws.tags import base_tags
from infra.config.placement import tensor_parallel_sizes
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
    """Resources the serving stack must wait for: the system pool, the add-ons and the Docker Hub
    cache rule its images are pulled through (not the GPU pools: engines wait for GPU nodes as
    Pending pods, which the autoscaler answers)."""
    model_store_role_arn: pulumi.Output[str] | None = None
    """The engines' read-only S3 role (`llm-stack:modelStore`, EKS mode only)."""


def build_eks(config: StackConfig, stack: str, zones: Mapping[str, tuple[str, ...]]) -> ClusterHandle:
    """A new EKS cluster with its VPC, node pools (each in its `zones`) and add-ons, and a provider for it."""
    cluster_cfg, eks = config.cluster, config.cluster.eks
    assert eks is not None  # mode 'eks' is checked by the config model
    version = cluster_cfg.kubernetes_version or ""
    tags = base_tags(stack=stack, cluster=cluster_cfg.name, extra=cluster_cfg.tags)
    aws_provider = aws.Provider("aws", region=eks.region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags))
    on_aws = pulumi.ResourceOptions(provider=aws_provider)
    network = Network("vpc", NetworkArgs(cluster_name=cluster_cfg.name, eks=eks), on_aws)
    cluster = EksCluster("eks", EksClusterArgs(cluster=cluster_cfg, subnet_ids=network.private_subnet_ids,
                                               today=config.today, network_ready=network.ready), on_aws)
    pools = NodePools("pools", NodePoolsArgs(
        cluster_name=cluster.name, kubernetes_version=version, pools=config.node_pools,
        subnets_by_zone=network.private_subnets_by_zone, zones=zones,
        cluster_ready=[*cluster.ready, *network.ready], now=datetime.now(UTC)),
        on_aws)
    credential = eks.docker_hub_credential_arn
    cache = [docker_hub_cache("docker-hub-cache", region=eks.region, credential_arn=credential,
                              node_role=pools.node_role, parent=pools)] if credential else []
    provider = k8s.Provider("eks", kubeconfig=cluster.kubeconfig,
                            opts=pulumi.ResourceOptions(depends_on=cluster.ready))
    system_nodes = pools.node_groups[cluster_cfg.system_node_pool]
    addons = Addons("addons", AddonsArgs(
        cluster_name=cluster_cfg.name, cluster=cluster.ready[0], region=eks.region, vpc_id=network.vpc_id,
        kubernetes_version=version, oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer=cluster.oidc_issuer, provider=provider, system_pool=cluster_cfg.system_node_pool,
        system_nodes=system_nodes, tensor_parallel_sizes=tensor_parallel_sizes(config)), on_aws)
    store = model_store_access(config, cluster, on_aws)
    return ClusterHandle(provider=provider, kubeconfig=cluster.kubeconfig, name=cluster.name,
                         endpoint=cluster.endpoint, ready=(*system_nodes, addons, *cache),
                         model_store_role_arn=store.role_arn if store else None)


def model_store_access(config: StackConfig, cluster: EksCluster,
                       opts: pulumi.ResourceOptions) -> ModelStoreAccess | None:
    """The model store's role, when `llm-stack:modelStore` is set (the S3 gateway endpoint is the
    network's)."""
    store, eks = config.model_store, config.cluster.eks
    if store is None or eks is None:
        return None
    return ModelStoreAccess("model-store", ModelStoreAccessArgs(
        bucket=store.bucket, prefix=store.prefix, namespace=config.namespace,
        service_accounts=tuple(service_account_name(k) for k in config.models),
        oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer), opts)
