"""The pack's policies, in one list: name, description, level, check, config keys."""

from __future__ import annotations

from policies.guardrails import (
    encryption,
    exposure,
    gpu_visibility,
    iam,
    isolation,
    node_pools,
    plain_secrets,
    versions,
    workloads,
)
from policies.guardrails.model import Guardrail

GUARDRAILS: tuple[Guardrail, ...] = (
    Guardrail(
        name="gpu-workloads",
        level="mandatory",
        resource_check=workloads.check_gpu_workload,
        description="GPU containers request and limit nvidia.com/gpu, tolerate the GPU taint and select "
        "a GPU pool.",
        config_keys=("gpuTaintKey",),
    ),
    Guardrail(
        name="gpu-visibility",
        level="mandatory",
        resource_check=gpu_visibility.check_gpu_visibility,
        description="No container but dcgm-exporter sets NVIDIA_VISIBLE_DEVICES (the device plugin's envvar "
        "strategy would give it those GPUs); a GPU-node DaemonSet without a GPU request sets it to void.",
        config_keys=("gpuTaintKey",),
    ),
    Guardrail(
        name="container-resources",
        level="mandatory",
        resource_check=workloads.check_container_resources,
        description="Every container sets CPU and memory requests and limits.",
    ),
    Guardrail(
        name="pinned-images",
        level="mandatory",
        resource_check=workloads.check_pinned_images,
        description="Images carry a version tag or digest (never latest) from an allowed registry.",
        config_keys=("allowedRegistries",),
    ),
    Guardrail(
        name="no-plain-secrets",
        level="mandatory",
        resource_check=plain_secrets.check_plain_secrets,
        description="Credentials reach pods only from Secrets, never as plain env, args, ConfigMap "
        "data or Helm values.",
    ),
    Guardrail(
        name="no-open-public-endpoint",
        level="mandatory",
        stack_check=exposure.check_public_endpoints,
        description="A public endpoint (internet-facing load balancer) terminates TLS and requires API keys.",
    ),
    Guardrail(
        name="engines-isolated",
        level="mandatory",
        stack_check=isolation.check_engine_isolation,
        description="Engines admit traffic only from the router and monitoring, through a NetworkPolicy.",
        config_keys=("monitoringNamespaces", "roleLabel", "engineRole", "routerRole"),
    ),
    Guardrail(
        name="node-pool-max-size",
        level="mandatory",
        resource_check=node_pools.check_max_size,
        description="Every node pool has a max size (Karpenter NodePools: limits).",
    ),
    Guardrail(
        name="ebs-encrypted",
        level="mandatory",
        resource_check=encryption.check_ebs_encrypted,
        description="EBS volumes (node disks, volumes, EBS StorageClasses) are encrypted.",
    ),
    Guardrail(
        name="s3-encrypted",
        level="mandatory",
        stack_check=encryption.check_s3_encrypted,
        description="S3 buckets have a server-side encryption configuration.",
    ),
    Guardrail(
        name="eks-secrets-encrypted",
        level="mandatory",
        resource_check=encryption.check_eks_secrets_encrypted,
        description="The EKS cluster encrypts Kubernetes Secrets with a KMS key.",
    ),
    Guardrail(
        name="iam-no-wildcard-admin",
        level="mandatory",
        resource_check=iam.check_iam_wildcards,
        description="Our IAM policies never allow * actions on * resources.",
    ),
    Guardrail(
        name="gpu-pool-zones",
        level="advisory",
        resource_check=node_pools.check_gpu_zones,
        description="GPU pools stay in one availability zone.",
        config_keys=("gpuTaintKey",),
    ),
    Guardrail(
        name="k8s-extended-support",
        level="advisory",
        resource_check=versions.check_extended_support,
        description="The cluster's Kubernetes version is in EKS standard support.",
        config_keys=("today",),
    ),
    Guardrail(
        name="gpu-budget",
        level="advisory",
        stack_check=node_pools.check_gpu_budget,
        description="The GPU pools at max size cost no more than the stack's hourly budget.",
        config_keys=("gpuBudgetUsdPerHour", "instanceHourlyUsd", "gpuTaintKey"),
    ),
)
"""Every policy of the pack."""
