"""The Pulumi program: read the config once, build or adopt the cluster, deploy the serving
stack, export the outputs. Nothing runs at import time; `__main__.py` calls `main()`, and
`llm-stack render` / the tests call it under the mock runtime."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import pulumi

from infra.autoscaling import autoscaling_extension, pool_limits, stack_transformations
from infra.aws.eks_stack import ClusterHandle, build_eks
from infra.aws.prices import pool_capacity
from infra.aws.versions import extended_support_warning, untabled_warning
from infra.config import StackConfig, load_stack_config
from infra.config.adapter_sources import production_pin_error
from infra.config.alerting import is_production, no_receiver_warning
from infra.config.placement import placement_line, placement_warnings, pool_placements
from infra.engine_validation import validate_engines
from infra.errors import NAMESPACE
from infra.existing_cluster import use_existing
from infra.serving import ServingSecrets, stack_args

if TYPE_CHECKING:
    from infra.aws.preflight import PreflightResult
    from stack_components import LLMStack


def read_secrets(config: StackConfig) -> dict[str, pulumi.Output[str]]:
    """The configured secrets as secret Outputs (only keys the config model saw set)."""
    reader = pulumi.Config(NAMESPACE)
    return {key: reader.require_secret(key) for key in sorted(config.secret_keys)}


def build_cluster(config: StackConfig, secrets: dict[str, pulumi.Output[str]],
                  checked: PreflightResult | None) -> ClusterHandle:
    """The cluster the stack lands on: a new EKS cluster (its pools in the preflight's zones), or
    the existing one."""
    if config.cluster.mode == "existing" or checked is None:
        return use_existing(config, secrets["kubeconfig"])
    return build_eks(config, pulumi.get_stack(), checked.zones)


def image_transformations(config: StackConfig) -> list:
    """With the Docker Hub pull-through cache configured, every Docker Hub image of the serving
    stack is pulled through it (infra/aws/image_mirror.py)."""
    from infra.aws.image_mirror import mirror_for, mirror_images

    eks = config.cluster.eks
    if config.cluster.mode != "eks" or eks is None or not eks.docker_hub_credential_arn:
        return []
    return [mirror_images(mirror_for(eks.docker_hub_credential_arn))]


def offline_runtime() -> bool:
    """Whether the program runs under the mock runtime (`llm-stack render`, the tests): no AWS."""
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.settings import SETTINGS

    return isinstance(SETTINGS.monitor, MockMonitor)


def cluster_preflight(config: StackConfig) -> PreflightResult | None:
    """Mode eks: the read-only AWS checks (the deploying identity, quotas, zone offerings), before
    any resource; their warnings and notes logged. Offline: skipped, saying so. Mode existing: none."""
    from infra.aws.preflight import offline, preflight
    from infra.aws.preflight.lookups import AwsLookups

    eks = config.cluster.eks
    if config.cluster.mode != "eks" or eks is None:
        return None
    result = offline(config) if offline_runtime() else preflight(config, AwsLookups(eks.region),
                                                                dry_run=pulumi.runtime.is_dry_run())
    for finding in result.warnings:
        pulumi.log.warn(finding.text())
    for note in result.notes:
        pulumi.log.info(note)
    return result


def build_images(config: StackConfig) -> dict[str, pulumi.Output[str]]:
    """Build router/Dockerfile and, with the benchmark on, bench/Dockerfile, each pushed to an
    ECR repository of the stack (EKS mode), unless the config names the image: ServingSecrets
    field -> the pushed digest reference. The context is the project's root, written relative to
    the working directory, which the CLI sets to `main`'s directory (`infra/`): see build_paths.
    A missing Dockerfile fails here, before any resource."""
    from infra.aws.build_paths import build_paths, project_root
    from infra.aws.images import BenchmarkImage, ImageArgs, RouterImage

    wanted: dict[str, type[RouterImage | BenchmarkImage]] = {}  # ServingSecrets field -> image kind
    if config.router.image is None:
        wanted["router_image"] = RouterImage
    if config.benchmark.enabled and config.benchmark.image is None:
        wanted["benchmark_image"] = BenchmarkImage
    if not wanted:
        return {}
    cwd = Path.cwd()
    root = project_root(pulumi.get_root_directory(), cwd)
    paths = {field: build_paths(root, cwd, kind.DOCKERFILE) for field, kind in wanted.items()}
    import pulumi_aws as aws

    assert config.cluster.eks is not None  # rules: an image left to the build only with mode 'eks'
    opts = pulumi.ResourceOptions(providers=[aws.Provider("images", region=config.cluster.eks.region)])
    refs = {}
    for field, kind in wanted.items():
        args = ImageArgs(repository_name=f"{config.cluster.name}/{kind.NAME}", tag=kind.NAME,
                         context_dir=paths[field].context, dockerfile=paths[field].dockerfile)
        refs[field] = kind(kind.NAME, args, opts).ref
    return refs


def main() -> None:
    """Validate the config (failing before any resource), then build everything."""
    from stack_components import LLMStack, MonitoringExtension

    config = load_stack_config()
    unpinned = production_pin_error(config, is_production(pulumi.get_stack()))
    if unpinned is not None:
        raise unpinned
    for text in [*version_warnings(config), *placement_warnings(config)]:
        pulumi.log.warn(text)
    unpaged = no_receiver_warning(config, pulumi.get_stack())
    if unpaged:
        pulumi.log.warn(unpaged)
    secrets = read_secrets(config)
    serving = ServingSecrets(
        hf_token=secrets.get("hfToken"), router_api_keys=secrets.get("routerApiKeys"),
        grafana_admin_password=secrets.get("grafanaAdminPassword"),
        alert_receiver_secrets=secrets.get("alertReceiverSecrets"))
    extensions = {"autoscaling": autoscaling_extension(config)}
    # Every component's Args, and vLLM/LMCache's own checks, before the first resource.
    validate_engines(stack_args(config, serving, extensions).models, pulumi.log.warn)
    checked = cluster_preflight(config)  # AWS quotas and offerings, still before the first resource
    images = build_images(config)
    serving = dataclasses.replace(serving, router_image=images.get("router_image", serving.router_image),
                                  benchmark_image=images.get("benchmark_image", serving.benchmark_image))
    cluster = build_cluster(config, secrets, checked)
    if checked is not None:  # the cache server follows the GPU pools' zone (`cache_zone`)
        serving = dataclasses.replace(serving, pool_zones=checked.zones)
    serving = dataclasses.replace(serving, model_store_role_arn=cluster.model_store_role_arn)
    args = stack_args(config, serving, extensions)
    transformations = stack_transformations(config) + image_transformations(config)
    opts = pulumi.ResourceOptions(provider=cluster.provider, depends_on=list(cluster.ready),
                                  transformations=transformations)
    stack = LLMStack("llm", args, opts)
    export_outputs(config, cluster, stack)
    if isinstance(args.monitoring, MonitoringExtension):
        pulumi.export("grafanaDashboards", args.monitoring.dashboard_paths())


def version_warnings(config: StackConfig) -> list[str]:
    """Mode eks: the Kubernetes version in extended support, newer than the EKS table, or without
    a pinned autoscaler patch (each names `cluster.kubernetesVersion`)."""
    from infra.aws.autoscaler import image_tag_warning

    version = config.cluster.kubernetes_version or ""
    if config.cluster.mode != "eks":
        return []
    field = f"{NAMESPACE}:cluster.kubernetesVersion"
    found = (extended_support_warning(version, config.today), untabled_warning(version, field),
             image_tag_warning(version, field))
    return [w for w in found if w]


def stack_region(config: StackConfig) -> str:
    """The region prices are read for: the EKS cluster's (mode existing: the table's own)."""
    from infra.aws.prices import PRICES_REGION

    return config.cluster.eks.region if config.cluster.eks is not None else PRICES_REGION


def pools_output(config: StackConfig) -> dict[str, dict[str, object]]:
    """Per pool: instance type, GPUs and USD/hour at min and max size (for the stack's region and
    the pool's capacity type), the price's source, and for a pool with engines the placement
    arithmetic at the models' maxReplicas."""
    out: dict[str, dict[str, object]] = {}
    placements = pool_placements(config)
    for name, pool in config.node_pools.items():
        cap = pool_capacity(pool, stack_region(config))
        out[name] = {"instanceType": pool.instance_type, "capacityType": pool.capacity_type,
                     "gpusMin": cap.gpus_min, "gpusMax": cap.gpus_max,
                     "usdPerHourMin": cap.usd_per_hour_min, "usdPerHourMax": cap.usd_per_hour_max,
                     "priceBasis": cap.basis, "priceSource": cap.price_source}
        if name in placements:
            p = placements[name]
            out[name]["placement"] = {
                "gpusAtMaxReplicas": p.gpus, "nodesGuaranteeing": p.nodes_needed,
                "nodesInAnyOrder": p.nodes_any_order, "guaranteed": p.guaranteed, "text": placement_line(p)}
    return out


def capacity_output(config: StackConfig) -> dict[str, object]:
    """The `capacity` output: the pools, the fixed part of the rest of the bill (control plane, NAT
    gateways, NLB, gp3, interface endpoints) and its per-unit prices, with the tables' dates."""
    from infra.aws.bill import fixed_lines, per_unit, rates_for, stack_bill

    pools = pools_output(config)
    out: dict[str, object] = {"region": stack_region(config), "pools": pools}
    bill = stack_bill(config)
    fixed = fixed_lines(bill) if bill else []
    out["fixed"] = [{"item": f.item, "usdPerHourMin": round(f.usd_per_hour_min, 3),
                     "usdPerHourMax": round(f.usd_per_hour_max, 3)} for f in fixed]
    out["perUnitUsd"] = per_unit(bill) if bill else {}
    out["fixedPriceSource"] = rates_for(bill.region)[1] if bill else "none (mode existing: not this stack's)"
    caps = [pool_capacity(pool, stack_region(config)) for pool in config.node_pools.values()]
    low = sum(c.usd_per_hour_min for c in caps) + sum(f.usd_per_hour_min for f in fixed)
    high = sum(c.usd_per_hour_max for c in caps) + sum(f.usd_per_hour_max for f in fixed)
    out["usdPerHourMin"], out["usdPerHourMax"] = round(low, 2), round(high, 2)
    return out


def router_endpoint(config: StackConfig, stack: LLMStack) -> pulumi.Output[str]:
    """Where clients reach the router: through its NLB with exposure internal or public (the
    address in the Service's status), else the in-cluster URL."""
    from contracts import ROUTER_PORT
    from infra.aws.load_balancer import nlb_endpoint

    host = stack.router.load_balancer_host
    if host is None:
        return stack.endpoint
    exposure = config.router.exposure
    return pulumi.Output.all(host, stack.endpoint).apply(
        lambda v: nlb_endpoint(exposure, v[0], ROUTER_PORT) or v[1])


def export_outputs(config: StackConfig, cluster: ClusterHandle, stack: LLMStack) -> None:
    """Stack outputs: the router endpoint, the kubeconfig (secret), engine capacities, benchmark."""
    pulumi.export("clusterName", cluster.name)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("routerEndpoint", router_endpoint(config, stack))
    pulumi.export("routerInClusterEndpoint", stack.endpoint)
    pulumi.export("namespace", config.namespace)
    pulumi.export("engineGpuCacheTokens", stack.gpu_cache_tokens)
    pulumi.export("engineCpuCacheTokens", stack.cpu_cache_tokens)
    pulumi.export("benchmarkResults", stack.benchmark_results_hint)
    pulumi.export("gpuPoolLimits", pool_limits(config))
    pulumi.export("capacity", capacity_output(config))
    if cluster.endpoint is not None:
        pulumi.export("clusterEndpoint", cluster.endpoint)
    if (sweeps := after_destroy(config)) is not None:
        pulumi.export("afterDestroy", sweeps)


def after_destroy(config: StackConfig) -> list[str] | None:
    """Mode eks: the commands that find what `pulumi destroy` leaves (`infra/aws/teardown.py`)."""
    from infra.aws.teardown import sweeps

    eks = config.cluster.eks
    if config.cluster.mode != "eks" or eks is None:
        return None
    return sweeps(cluster_name=config.cluster.name, region=eks.region,
                  pull_through_cache=eks.docker_hub_credential_arn is not None)
