"""Pure mapping from the validated `StackConfig` to the `LLMStack` autoscaling seam: one
`EnginePolicy` per model (its replica range from the model, its signal from
`llm-stack:autoscaling.models`), KEDA on the system pool, the router HPA when configured."""

from __future__ import annotations

import pulumi

from contracts import LABEL_ROLE, ROLE_ROUTER
from infra.config.autoscaling import ModelScalingConfig
from infra.config.models import ModelConfig
from infra.config.pools import NODE_POOL_LABEL
from infra.config.rules import gpus_at_max_replicas
from infra.config.stack import StackConfig
from policies.autoscaling.keda import PrometheusAuth
from policies.autoscaling.policy import EnginePolicy
from stack_components.autoscaling import AutoscalingArgs, AutoscalingExtension, RouterScaling
from stack_components.capacity import find_model, weights_bytes

DEFAULT_KV_TARGET = 0.8
STARTUP_S = 60
"""Container start, CUDA init and graph capture, before the weights (believed, not measured)."""
SECONDS_PER_WEIGHT_GB = 2.0
"""Download from the model store and load onto the GPUs, per GB of weights (~0.5 GB/s; believed)."""


def estimated_load_time_s(model: ModelConfig) -> int:
    """Seconds from pod start to ready when the stack file gives no measured figure."""
    gigabytes = weights_bytes(find_model(model.model_id)) / 1e9
    return min(1800, round(STARTUP_S + SECONDS_PER_WEIGHT_GB * gigabytes))


def model_load_time_s(config: StackConfig, name: str) -> int:
    """Model `name`'s load time: its measured `loadTimeSeconds`, else the estimate."""
    entry = config.autoscaling.models.get(name, ModelScalingConfig())
    return entry.load_time_seconds or estimated_load_time_s(config.models[name])


def engine_policy(config: StackConfig, name: str) -> EnginePolicy:
    """One model's policy from its replica range and its autoscaling entry."""
    model = config.models[name]
    auto = config.autoscaling
    entry = auto.models.get(name, ModelScalingConfig())
    default_target = {"queue": auto.target_waiting_per_engine, "kvCache": DEFAULT_KV_TARGET}
    return EnginePolicy(
        metric=entry.metric,
        target=entry.target if entry.target is not None else default_target[entry.metric],
        quantile=entry.quantile,
        min_replicas=model.min_replicas, max_replicas=model.max_replicas,
        activation_rps=entry.activation_rps,
        load_time_s=model_load_time_s(config, name),
        scale_down_window_s=auto.scale_down_stabilization_seconds,
        polling_interval_s=auto.polling_interval_seconds,
    )


def autoscaling_extension(config: StackConfig) -> AutoscalingExtension | None:
    """The autoscaling seam of the stack, or None when autoscaling is off."""
    auto = config.autoscaling
    if not auto.enabled:
        return None
    router = None
    if auto.router_max_replicas is not None:
        router = RouterScaling(min_replicas=min(config.router.replicas, auto.router_max_replicas),
                               max_replicas=auto.router_max_replicas,
                               cpu_utilization=auto.router_cpu_utilization)
    secret = auto.prometheus_token_secret
    return AutoscalingExtension(args=AutoscalingArgs(
        policies={name: engine_policy(config, name) for name in config.models},
        prometheus_url=auto.prometheus_url,
        prometheus_auth=PrometheusAuth(secret_name=secret) if secret else None,
        keda_node_selector={NODE_POOL_LABEL: config.cluster.system_node_pool},
        router=router,
    ))


def pool_limits(config: StackConfig) -> dict[str, dict[str, int]]:
    """Per GPU pool: its maxSize (the node autoscaler's limit, and so the pool's cost cap), the
    GPUs that gives, and the GPUs its models need at their maxReplicas (never more: the config
    rule `nodePools.<pool>.maxSize` refuses a stack where they do not fit)."""
    limits = {}
    for name, pool in sorted(config.node_pools.items()):
        if pool.gpus == 0:
            continue
        limits[name] = {"maxNodes": pool.max_size, "gpusAtMaxNodes": pool.max_size * pool.gpus,
                        "gpusAtMaxReplicas": gpus_at_max_replicas(config, name)}
    return limits


def ignore_router_replicas(
        args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
    """A transformation for the stack: the router Deployment's `spec.replicas` belongs to its
    HPA, so Pulumi must not reset it on the next `up` (engines get the same through
    `replicas_managed_externally`)."""
    if args.type_ != "kubernetes:apps/v1:Deployment":
        return None
    metadata = args.props.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    if not isinstance(labels, dict) or labels.get(LABEL_ROLE) != ROLE_ROUTER:
        return None
    ignore = pulumi.ResourceOptions(ignore_changes=["spec.replicas"])
    return pulumi.ResourceTransformationResult(args.props, pulumi.ResourceOptions.merge(args.opts, ignore))


def stack_transformations(config: StackConfig) -> list:
    """Transformations for the `LLMStack` component (inherited by its children)."""
    scaled = config.autoscaling.enabled and config.autoscaling.router_max_replicas is not None
    return [ignore_router_replicas] if scaled else []
