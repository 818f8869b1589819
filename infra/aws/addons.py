"""Cluster add-ons: EKS-managed ones (VPC CNI with network policy enforcement, kube-proxy,
CoreDNS, EBS CSI with IRSA), Helm releases with pinned chart versions (NVIDIA device plugin,
metrics-server, cluster autoscaler, AWS Load Balancer Controller), the default gp3
StorageClass and the serving PriorityClasses (one per engine size: infra/config/placement.py).

Add-ons whose pods must run wait for the system pool only: a GPU pool that cannot get capacity
never blocks them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.aws.autoscaler import CLUSTER_AUTOSCALER, autoscaler_policy, autoscaler_values
from infra.aws.autoscaler import SERVICE_ACCOUNT as AUTOSCALER_ACCOUNT
from infra.aws.helm import HelmChart, release
from infra.aws.iam import EBS_CSI_POLICY, AttachedRole, irsa_trust_policy, role
from infra.aws.load_balancer import LOAD_BALANCER_CONTROLLER, controller_policy, controller_values
from infra.aws.load_balancer import SERVICE_ACCOUNT as LBC_ACCOUNT
from infra.aws.node_pools import GPU_PRESENT_LABEL
from infra.aws.teardown import volume_tag_parameters
from infra.config.placement import engine_priority_class, priority_value
from infra.config.pools import NODE_POOL_LABEL

# Chart versions: the newest releases when pinned (2026-12): k8s-device-plugin tag v0.20.0 (2026-08-19),
# metrics-server tag metrics-server-helm-chart-3.13.1 (2026-06-11, metrics-server 0.8.1); every value
# below is in both charts' values.yaml at those tags (read from the repositories' tags).
NVIDIA_DEVICE_PLUGIN = HelmChart(name="nvidia-device-plugin", version="0.20.0",
                                 repo="https://nvidia.github.io/k8s-device-plugin")
METRICS_SERVER = HelmChart(name="metrics-server", version="3.13.1",
                           repo="https://kubernetes-sigs.github.io/metrics-server/")
MANAGED_ADDONS = ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver")
NEED_NODES = ("coredns", "aws-ebs-csi-driver")  # their pods must schedule before the add-on is ACTIVE
EBS_CSI_SERVICE_ACCOUNT = ("kube-system", "ebs-csi-controller-sa")


def addon_configuration(addon: str) -> str | None:
    """EKS add-on configuration values: the VPC CNI enforces NetworkPolicies only with its network
    policy agent enabled (EKS user guide, "Configure your cluster for Kubernetes network policies":
    `{"enableNetworkPolicy": "true"}`); without it the engines' policies are accepted and ignored."""
    return json.dumps({"enableNetworkPolicy": "true"}) if addon == "vpc-cni" else None


DEVICE_LIST_STRATEGY = "envvar"
"""How the device plugin tells the NVIDIA runtime a container's GPUs (chart value
`deviceListStrategy`, the plugin's DEVICE_LIST_STRATEGY: k8s-device-plugin v0.20.0
cmd/nvidia-device-plugin/main.go, default envvar, and templates/daemonset-device-plugin.yml),
pinned at its default. `volume-mounts` would stop a pod's own NVIDIA_VISIBLE_DEVICES=all only
with the toolkit's accept-nvidia-visible-devices-as-volume-mounts = true and
accept-nvidia-visible-devices-envvar-when-unprivileged = false on every GPU node; without them
every CUDA image's NVIDIA_VISIBLE_DEVICES=all would reach the runtime (worse than now), and with
them the plugin and dcgm-exporter (unprivileged, relying on that variable) lose their GPUs. The
guardrail `gpu-visibility` (policies/guardrails/gpu_visibility.py) holds the
line for this program's pods instead."""


def device_plugin_values() -> dict[str, Any]:
    """The device plugin runs on GPU nodes only (their label), tolerating the GPU taint, with the
    device-list strategy pinned (`DEVICE_LIST_STRATEGY`)."""
    return {
        "deviceListStrategy": DEVICE_LIST_STRATEGY,
        "nodeSelector": {GPU_PRESENT_LABEL: "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "priorityClassName": "system-node-critical",
        "gfd": {"enabled": False},
        "nfd": {"enabled": False},
    }


def metrics_server_values(system_pool: str) -> dict[str, Any]:
    """Two metrics-server replicas with a disruption budget (HPA's resource metrics), on the system pool."""
    return {"replicas": 2, "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
            "nodeSelector": {NODE_POOL_LABEL: system_pool}}


def gp3_storage_class(cluster_name: str) -> dict[str, Any]:
    """The default StorageClass: encrypted gp3 volumes bound where the pod lands, each tagged with
    the cluster's name so one `pulumi destroy` leaves behind can be found (`teardown.py`)."""
    return {
        "metadata": {"name": "gp3", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true", **volume_tag_parameters(cluster_name)},
        "reclaim_policy": "Delete",
        "volume_binding_mode": "WaitForFirstConsumer",
        "allow_volume_expansion": True,
    }


def serving_priority_class(tensor_parallel_size: int = 1) -> dict[str, Any]:
    """Engines and routers outrank default-priority (batch) pods, so those never preempt them; an
    engine on more GPUs outranks smaller ones, so it is placed first and may preempt them."""
    what = ("vLLM engines on one GPU and the router" if tensor_parallel_size == 1
            else f"vLLM engines on {tensor_parallel_size} GPUs (placed before, and preempting, smaller ones)")
    return {"metadata": {"name": engine_priority_class(tensor_parallel_size)},
            "value": priority_value(tensor_parallel_size), "global_default": False,
            "preemption_policy": "PreemptLowerPriority", "description": f"llm-stack serving: {what}"}


@dataclass(frozen=True, kw_only=True)
class AddonsArgs:
    """Where the add-ons go."""

    cluster_name: str
    """EKS cluster name (configured, so it is known to the Helm values)."""
    cluster: pulumi.Resource
    """The EKS cluster (managed add-ons wait for it)."""
    region: str
    """AWS region (given to controllers that would otherwise ask IMDS)."""
    vpc_id: pulumi.Input[str]
    """The cluster's VPC (for the load balancer controller)."""
    kubernetes_version: str
    """Control-plane minor version (the autoscaler's image follows it)."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IRSA OIDC provider."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL."""
    provider: k8s.Provider
    """Kubernetes provider of the cluster (for Helm releases and cluster objects)."""
    system_pool: str
    """Name of the system node pool (controllers run there)."""
    system_nodes: Sequence[pulumi.Resource]
    """The system pool's node group: add-ons with pods wait for it, and for nothing else."""
    tensor_parallel_sizes: tuple[int, ...] = (1,)
    """The engines' sizes: one serving PriorityClass each (1: the router's and one-GPU engines')."""


class Addons(pulumi.ComponentResource):
    """Every add-on the serving stack relies on."""

    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-stack:aws:Addons", name, None, opts)
        self._name, self._args = name, args
        ebs_role = self._irsa_role("ebs-csi", EBS_CSI_SERVICE_ACCOUNT, EBS_CSI_POLICY, "EBS CSI controller")
        nodes = list(args.system_nodes)
        for addon in MANAGED_ADDONS:
            aws.eks.Addon(
                f"{name}-{addon}", cluster_name=args.cluster_name, addon_name=addon,
                resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                configuration_values=addon_configuration(addon),
                service_account_role_arn=ebs_role.arn if addon == "aws-ebs-csi-driver" else None,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[
                    args.cluster, *ebs_role.ready, *(nodes if addon in NEED_NODES else [])]))
        self._helm(nodes)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider)
        k8s.storage.v1.StorageClass(f"{name}-gp3", **gp3_storage_class(args.cluster_name), opts=on_cluster)
        for tp in args.tensor_parallel_sizes:
            suffix = "" if tp == 1 else f"-tp{tp}"
            k8s.scheduling.v1.PriorityClass(f"{name}-serving-priority{suffix}", **serving_priority_class(tp),
                                            opts=on_cluster)
        self.register_outputs({})

    def _helm(self, nodes: list[pulumi.Resource]) -> None:
        args = self._args
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider)
        release(NVIDIA_DEVICE_PLUGIN, device_plugin_values(), on_cluster)  # GPU nodes only: waits for none
        on_system = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=nodes)
        release(METRICS_SERVER, metrics_server_values(args.system_pool), on_system)
        scaler_policy = self._policy("cluster-autoscaler", autoscaler_policy(args.cluster_name))
        scaler = self._irsa_role("cluster-autoscaler", AUTOSCALER_ACCOUNT, scaler_policy, "autoscaler")
        release(CLUSTER_AUTOSCALER, autoscaler_values(
            cluster_name=args.cluster_name, region=args.region,
            kubernetes_version=args.kubernetes_version, role_arn=scaler.arn, system_pool=args.system_pool),
            pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[*nodes, *scaler.ready]))
        lbc = self._irsa_role("load-balancer-controller", LBC_ACCOUNT,
                              self._policy("load-balancer-controller", controller_policy()),
                              "AWS Load Balancer Controller")
        release(LOAD_BALANCER_CONTROLLER, controller_values(
            cluster_name=args.cluster_name, region=args.region, vpc_id=args.vpc_id, role_arn=lbc.arn,
            system_pool=args.system_pool),
            pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[*nodes, *lbc.ready]))

    def _policy(self, short: str, document: str) -> pulumi.Output[str]:
        return aws.iam.Policy(f"{self._name}-{short}", policy=document, description=f"llm-stack {short}",
                              opts=pulumi.ResourceOptions(parent=self)).arn

    def _irsa_role(self, short: str, account: tuple[str, str], policy: pulumi.Input[str],
                   what: str) -> AttachedRole:
        args = self._args
        trust = pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
            lambda v: irsa_trust_policy(v[0], v[1], *account))
        return role(f"{self._name}-{short}", trust, [policy], description=f"{what} (IRSA)", parent=self)
