"""Cluster add-ons: EKS-managed ones (VPC CNI, kube-proxy, CoreDNS, EBS CSI with IRSA), the
NVIDIA device plugin and metrics-server as Helm releases with pinned chart versions, and the
default gp3 StorageClass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.aws.iam import EBS_CSI_POLICY, irsa_trust_policy, role
from infra.aws.node_pools import GPU_PRESENT_LABEL


@dataclass(frozen=True, kw_only=True)
class HelmChart:
    """A pinned Helm chart."""

    name: str
    """Chart name."""
    version: str
    """Exact chart version (never a range)."""
    repo: str
    """Chart repository URL."""
    namespace: str = "kube-system"
    """Release namespace."""


NVIDIA_DEVICE_PLUGIN = HelmChart(name="nvidia-device-plugin", version="0.17.1",
                                 repo="https://nvidia.github.io/k8s-device-plugin")
METRICS_SERVER = HelmChart(name="metrics-server", version="3.12.2",
                           repo="https://kubernetes-sigs.github.io/metrics-server/")
MANAGED_ADDONS = ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver")
NEED_NODES = ("coredns", "aws-ebs-csi-driver")  # their pods must schedule before the add-on is ACTIVE
EBS_CSI_SERVICE_ACCOUNT = ("kube-system", "ebs-csi-controller-sa")


def device_plugin_values() -> dict[str, Any]:
    """The device plugin runs on GPU nodes only (their label), tolerating the GPU taint."""
    return {
        "nodeSelector": {GPU_PRESENT_LABEL: "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "priorityClassName": "system-node-critical",
        "gfd": {"enabled": False},
        "nfd": {"enabled": False},
    }


def metrics_server_values() -> dict[str, Any]:
    """Two metrics-server replicas with a disruption budget (HPA's resource metrics)."""
    return {"replicas": 2, "podDisruptionBudget": {"enabled": True, "minAvailable": 1}}


def gp3_storage_class() -> dict[str, Any]:
    """The default StorageClass: encrypted gp3 volumes bound where the pod lands."""
    return {
        "metadata": {"name": "gp3", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true"},
        "reclaim_policy": "Delete",
        "volume_binding_mode": "WaitForFirstConsumer",
        "allow_volume_expansion": True,
    }


@dataclass(frozen=True, kw_only=True)
class AddonsArgs:
    """Where the add-ons go."""

    cluster_name: pulumi.Input[str]
    """EKS cluster name."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IRSA OIDC provider."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL."""
    provider: k8s.Provider
    """Kubernetes provider of the cluster (for Helm releases and the StorageClass)."""
    node_groups: Sequence[pulumi.Resource]
    """Node groups the workload add-ons wait for."""


class Addons(pulumi.ComponentResource):
    """Every add-on the serving stack relies on."""

    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-stack:aws:Addons", name, None, opts)
        ebs_role = role(f"{name}-ebs-csi", pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
            lambda v: irsa_trust_policy(v[0], v[1], *EBS_CSI_SERVICE_ACCOUNT)), [EBS_CSI_POLICY],
            description="EBS CSI controller (IRSA)", parent=self)
        nodes = list(args.node_groups)
        after_nodes = pulumi.ResourceOptions(parent=self, depends_on=nodes)
        first = pulumi.ResourceOptions(parent=self)
        for addon in MANAGED_ADDONS:
            aws.eks.Addon(
                f"{name}-{addon}", cluster_name=args.cluster_name, addon_name=addon,
                resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                service_account_role_arn=ebs_role.arn if addon == "aws-ebs-csi-driver" else None,
                opts=after_nodes if addon in NEED_NODES else first)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=nodes)
        self._release(NVIDIA_DEVICE_PLUGIN, device_plugin_values(), on_cluster)
        self._release(METRICS_SERVER, metrics_server_values(), on_cluster)
        k8s.storage.v1.StorageClass(f"{name}-gp3", **gp3_storage_class(), opts=on_cluster)
        self.register_outputs({})

    def _release(self, chart: HelmChart, values: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        k8s.helm.v3.Release(
            chart.name, name=chart.name, chart=chart.name, version=chart.version, namespace=chart.namespace,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo), values=values, atomic=True,
            timeout=600, opts=opts)
