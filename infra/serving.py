"""Pure mapping from the validated `StackConfig` to `stack_components.LLMStackArgs`.

Secrets arrive as Pulumi inputs (never read here); placement follows the node pools: engines
select their pool by the `llmstack.io/node-pool` label and tolerate the GPU taint, everything
else runs on the system pool.

One set of rules: the components' Args (and the router's policy) validate themselves; this
module builds them from the config before any resource exists (the config's last rule does,
see `infra.config.rules`) and re-raises their errors as `ConfigError` under the stack key
(`extra_args[0]` of model `llama8b` → `llm-stack:models.llama8b.extraArgs[0]`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.autoscaling import model_load_time_s
from infra.aws.load_balancer import NLB_PRESTOP_S, READINESS_GATE_LABEL, service_annotations
from infra.aws.model_store import service_account_name
from infra.config.catalog import INSTANCES
from infra.config.models import ModelConfig
from infra.config.parse import camel
from infra.config.placement import SERVING_PRIORITY_CLASS, engine_priority_class
from infra.config.pools import NODE_POOL_LABEL
from infra.config.sizing import cache_clients, engine_cpu, engine_memory_gib, shm_gib
from infra.config.stack import StackConfig
from infra.errors import NAMESPACE, ConfigError
from router.routing.policies.registry import build_policy, takes_param
from router.settings import PolicySettings, SettingsError
from stack_components import (
    GPU_TOLERATION,
    BenchmarkJobArgs,
    LLMStackArgs,
    LMCacheArgs,
    LMCacheServerArgs,
    LoraAdapter,
    LoraArgs,
    LoraRollout,
    ModelCacheVolume,
    ModelStore,
    Placement,
    RouterArgs,
    SecretRef,
    TopologySpread,
    VllmEngineArgs,
)
from stack_components.capacity import find_model, weights_bytes
from stack_components.drain import longest_request_s
from stack_components.errors import ArgsError
from stack_components.lora import version_name
from stack_components.monitoring import (
    MonitoringArgs,
    MonitoringExtension,
    PoolLimit,
    Receiver,
    ReplicaBounds,
)
from stack_components.router import DEFAULT_PRESTOP_S
from stack_components.router_manifests import PORT_NAME as ROUTER_PORT_NAME

BUILT_IMAGE_PLACEHOLDER = "llm-stack/router:built-by-pulumi-up"
"""Stands in for the built router image while the config is validated (never deployed)."""
BUILT_BENCHMARK_IMAGE_PLACEHOLDER = "llm-stack/benchmark:built-by-pulumi-up"
"""Stands in for the built benchmark image while the config is validated (never deployed)."""
ROLE_PLACEHOLDER = "arn:aws:iam::000000000000:role/created-by-pulumi-up"
"""Stands in for the model store's role while the config is validated (never deployed)."""
ENGINE_FIELD_KEYS = {"model": "modelId", "served_model_name": "servedName"}
"""`VllmEngineArgs` fields whose config key is not their camelCase name."""

ENGINE_UID = 10001  # a high uid (checkov CKV_K8S_40); the engine's HOME is /tmp, so any uid works
HF_TOKEN_SECRET = SecretRef(name="hf-token", key="token")
API_KEYS_SECRET = SecretRef(name="router-api-keys", key="keys")
BENCHMARK_KEY_SECRET = SecretRef(name="benchmark-api-key", key="key")


@dataclass(frozen=True, kw_only=True)
class ServingSecrets:
    """Secret values as Pulumi inputs (Outputs marked secret), keyed by purpose."""

    hf_token: pulumi.Input[str] | None
    """`llm-stack:hfToken`."""
    router_api_keys: pulumi.Input[str] | None = None
    """`llm-stack:routerApiKeys`, comma-separated."""
    grafana_admin_password: pulumi.Input[str] | None = None
    """`llm-stack:grafanaAdminPassword`."""
    alert_receiver_secrets: pulumi.Input[str] | None = None
    """`llm-stack:alertReceiverSecrets`: a JSON object, receiver name -> URL or routing key."""
    router_image: pulumi.Input[str] | None = None
    """The router image the program built (infra/aws/images.py), when the config names none."""
    benchmark_image: pulumi.Input[str] | None = None
    """The benchmark image the program built (infra/aws/images.py), when the config names none."""
    model_store_role_arn: pulumi.Input[str] | None = None
    """The engines' read-only S3 role the program created (infra/aws/model_store.py), with `modelStore`."""
    pool_zones: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Each node pool's zones as the program placed them (the preflight's choice, mode `eks`);
    empty: not known (an existing cluster), nothing is pinned to a zone."""


def split_keys(text: str) -> list[str]:
    """The comma-separated API keys of `llm-stack:routerApiKeys`, trimmed, empties dropped."""
    return [k.strip() for k in text.split(",") if k.strip()]


ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"


def system_placement(config: StackConfig) -> Placement:
    """Where the router, cache server and benchmark run."""
    return Placement(node_selector={NODE_POOL_LABEL: config.cluster.system_node_pool})


def serving_priority(config: StackConfig) -> str | None:
    """The serving PriorityClass, which mode `eks` creates (an existing cluster may lack it)."""
    return SERVING_PRIORITY_CLASS if config.cluster.mode == "eks" else None


def router_placement(config: StackConfig) -> Placement:
    """Routers on the system pool, spread over its zones (one zone's loss keeps the endpoint up),
    at the serving priority. The zone spread is a hard rule on EKS, whose nodes all carry the
    zone label; elsewhere a preference (a node without the label would refuse a hard rule's pods)."""
    hard = "DoNotSchedule" if config.cluster.mode == "eks" else "ScheduleAnyway"
    return dataclasses.replace(
        system_placement(config), priority_class_name=serving_priority(config),
        topology_spread=(TopologySpread(topology_key=ZONE_KEY, when_unsatisfiable=hard),
                         TopologySpread(topology_key=HOST_KEY)))


def engine_placement(config: StackConfig, model: ModelConfig) -> Placement:
    """Engines on their GPU pool, spread over its nodes where room allows (a node's loss takes the
    fewest engines), at the serving priority of their size so batch work never preempts them and
    larger engines are placed first (infra/config/placement.py)."""
    priority = engine_priority_class(model.tensor_parallel_size) if serving_priority(config) else None
    return Placement(node_selector={NODE_POOL_LABEL: model.node_pool}, tolerations=(GPU_TOLERATION,),
                     topology_spread=(TopologySpread(topology_key=HOST_KEY),),
                     priority_class_name=priority)


def config_key(section: str, field_name: str) -> str:
    """The stack key of a component field: `extra_args[0]` under `models.x` → `models.x.extraArgs[0]`;
    `lmcache.*` fields are the top-level `lmcache` section's."""
    head, sep, index = field_name.partition("[")
    if head.startswith("lmcache."):
        section, head = "lmcache", head.removeprefix("lmcache.")
    mapped = ENGINE_FIELD_KEYS.get(head) or camel(head)
    return f"{NAMESPACE}:{section}.{mapped}{sep}{index}"


def checked_engine_args(config: StackConfig, name: str, model: ModelConfig,
                        role_arn: pulumi.Input[str] | None = None) -> VllmEngineArgs:
    """`engine_args`, its `ArgsError` re-raised as a `ConfigError` under `models.<name>`."""
    try:
        return engine_args(config, name, model, role_arn)
    except ArgsError as err:
        if err.field_name == "lora" or err.field_name.startswith("lora."):
            raise lora_config_error(name, model, err) from None
        raise ConfigError(config_key(f"models.{name}", err.field_name), err.value, err.allowed) from None


_ADAPTER_INDEX = re.compile(r"^lora\.adapters\[(\d+)\]\.(\w+)$")
_ROLLOUT_INDEX = re.compile(r"^lora\.rollouts\[(\d+)\]")


def lora_config_error(name: str, model: ModelConfig, err: ArgsError) -> ConfigError:
    """A `LoraArgs` / `VllmEngineArgs.lora` error under its stack key: `lora.adapters[1].rank` →
    `models.<m>.adapters.<second adapter>.rank`, `lora.max_loras` → `models.<m>.lora.maxLoras`,
    the LMCache conflict → `models.<m>.adapters` naming `lmcache.enabled`."""
    section = f"{NAMESPACE}:models.{name}"
    found = _ADAPTER_INDEX.match(err.field_name)
    if found:
        where = model.served_adapters()[int(found[1])][1]
        return ConfigError(f"{section}.{where}.{camel(found[2])}", err.value, err.allowed)
    rollout = _ROLLOUT_INDEX.match(err.field_name)
    if rollout:
        stable = [a for a, spec in model.adapters.items() if spec.versions][int(rollout[1])]
        return ConfigError(f"{section}.adapters.{stable}", err.value, err.allowed)
    if err.field_name == "lora":
        return ConfigError(f"{section}.adapters", err.value,
                           f"cannot be served while {NAMESPACE}:lmcache.enabled is true: LMCache 0.5.6 keys "
                           "its KV chunks without the adapter, so one adapter would reuse another's KV "
                           f"(set {section}.lmcache: false, which serves this model without LMCache, or "
                           "lmcache.enabled: false for the whole stack)")
    if err.field_name == "lora.adapters":
        return ConfigError(f"{section}.adapters", err.value, err.allowed)
    slot = camel(err.field_name.removeprefix("lora."))
    return ConfigError(f"{section}.lora.{slot}", err.value, err.allowed)


def lora_args(name: str, model: ModelConfig) -> LoraArgs | None:
    """The model's adapters and slots as the engine's `LoraArgs`; None without adapters. An
    adapter's own error is raised under `models.<m>.adapters.<adapter>.<field>`."""
    if not model.adapters:
        return None
    section = f"{NAMESPACE}:models.{name}"
    adapters = []
    for served, where, source, rank in model.served_adapters():
        try:
            base = model.adapters[where.split(".")[1]].base_model
            adapters.append(LoraAdapter(name=served, source=source, rank=rank, base_model=base))
        except ArgsError as err:
            field_name = "" if err.field_name == "name" else f".{camel(err.field_name)}"
            raise ConfigError(f"{section}.{where}{field_name}", err.value, err.allowed) from None
    slots = model.lora
    return LoraArgs(adapters=tuple(adapters), max_loras=slots.max_loras, max_cpu_loras=slots.max_cpu_loras,
                    max_lora_rank=slots.max_lora_rank, rollouts=_rollouts(section, model))


def _rollouts(section: str, model: ModelConfig) -> tuple[LoraRollout, ...]:
    """Each adapter with versions as a `LoraRollout`; its errors under `adapters.<a>.versions...`."""
    out = []
    for adapter, spec in model.adapters.items():
        if not spec.versions:
            continue
        weights = {version_name(adapter, v): version.weight for v, version in spec.versions.items()}
        try:
            out.append(LoraRollout(name=adapter, weights=weights))
        except ArgsError as err:
            key = f"{section}.adapters.{adapter}"
            if err.field_name.startswith("weights."):
                version = err.field_name.removeprefix("weights." + version_name(adapter, ""))
                key = f"{key}.versions.{version}.weight"
            elif err.field_name == "weights":
                key = f"{key}.versions"
            raise ConfigError(key, err.value, err.allowed) from None
    return tuple(out)


def router_max_pods(config: StackConfig) -> int:
    """The most router pods that can run at once (outside a rollout's surge): the router HPA's
    maximum where `infra.autoscaling` makes one, else `router.replicas`."""
    auto = config.autoscaling
    if auto.enabled and auto.router_max_replicas is not None:
        return auto.router_max_replicas
    return config.router.replicas


def router_policy(config: StackConfig) -> PolicySettings:
    """`router.policy` as the router gets it: `prefix` on a stack with one router pod at most
    (and one worker, `RouterArgs.workers`' default) is told it is the sole router, so it places
    new conversations by load even without live KV events (its own index sees every later
    round; router/routing/policies/prefix.py, step 4). An explicit `sole_router` is kept."""
    policy = config.router.policy
    params = dict(policy.params)
    if takes_param(policy.kind, "sole_router") and router_max_pods(config) == 1:
        params.setdefault("sole_router", True)
    return PolicySettings(kind=policy.kind, params=params)


def check_router_policy(config: StackConfig) -> None:
    """The router builds its policy from these settings at start; build it now, so a bad
    `router.policy` fails `pulumi up` before any resource instead of the router pod."""
    settings = router_policy(config)
    try:
        build_policy(settings)
    except SettingsError as err:
        field_name = err.field_name.removeprefix("policy.")
        raise ConfigError(f"{NAMESPACE}:router.policy.{field_name}", err.value,
                          f"is refused by the router: {err}") from None
    pods = router_max_pods(config)
    if settings.sole_router and pods > 1:
        raise ConfigError(f"{NAMESPACE}:router.policy.params.sole_router", True,
                          f"needs one router pod at most, and up to {pods} can run (router.replicas, "
                          "autoscaling.routerMaxReplicas): each would place new conversations by its "
                          "own load and split their caches")


def model_cache(nvme: bool, weights_gib: float) -> ModelCacheVolume:
    """Weights cached on the node: with instance NVMe, a hostPath on its RAID0 array that
    survives pod restarts and is shared by every engine on the node (one download per node and
    model revision; huggingface_hub locks concurrent downloads); without, an emptyDir."""
    if nvme:
        return ModelCacheVolume(kind="hostPath")
    return ModelCacheVolume(kind="emptyDir", size_gib=max(50, math.ceil(weights_gib * 1.5)))


def engine_args(config: StackConfig, name: str, model: ModelConfig,
                role_arn: pulumi.Input[str] | None = None) -> VllmEngineArgs:
    """One model's engine: GPU, placement, host sizing and LMCache tiers from the config."""
    instance = INSTANCES[config.node_pools[model.node_pool].instance_type]
    tp = model.tensor_parallel_size
    lm = config.lmcache
    weights_gib = weights_bytes(find_model(model.model_id)) / 2**30
    optional: dict[str, Any] = {"image": model.image} if model.image else {}
    return VllmEngineArgs(
        model=model.model_id, revision=model.revision, served_model_name=config.served_name(name),
        gpu=instance.gpu or "", replicas=model.replicas, tensor_parallel_size=tp,
        max_model_len=model.max_model_len, gpu_memory_utilization=model.gpu_memory_utilization,
        extra_args=model.extra_args, kv_events=config.kv_events.enabled,
        lmcache=LMCacheArgs(chunk_size=lm.chunk_size, cpu_buffer_gib=lm.cpu_buffer_gib,
                            disk_buffer_gib=lm.disk_buffer_gib) if config.uses_lmcache(name) else None,
        placement=engine_placement(config, model),
        model_cache=model_cache(instance.nvme_gb > 0, weights_gib),
        shm_size_gib=shm_gib(tp), cpu=float(engine_cpu(instance, tp)),
        memory_gib=engine_memory_gib(lm.cpu_buffer_gib if config.uses_lmcache(name) else 0.0, tp),
        run_as_user=ENGINE_UID,
        replicas_managed_externally=config.autoscaling.enabled,  # KEDA owns spec.replicas
        load_time_s=model_load_time_s(config, name),
        # a rollout replaces every engine KEDA runs then: up to maxReplicas
        rollout_max_replicas=model.max_replicas if config.autoscaling.enabled else None,
        model_store=model_store(config, name, role_arn),
        lora=lora_args(name, model),
        **optional,
    )


def model_store(config: StackConfig, name: str, role_arn: pulumi.Input[str] | None) -> ModelStore | None:
    """Model `name`'s S3 source (`llm-stack:modelStore`), or None: weights from the Hugging Face hub."""
    store, eks = config.model_store, config.cluster.eks
    if store is None:
        return None
    region = store.region or (eks.region if eks else "")
    return ModelStore(bucket=store.bucket, prefix=store.prefix, region=region,
                      service_account=service_account_name(name), role_arn=role_arn or ROLE_PLACEHOLDER)


def router_image(config: StackConfig, secrets: ServingSecrets) -> pulumi.Input[str]:
    """The configured router image, else the one the program builds (a placeholder while the
    config is only being validated)."""
    return config.router.image or secrets.router_image or BUILT_IMAGE_PLACEHOLDER


def router_args(config: StackConfig, secrets: ServingSecrets) -> RouterArgs:
    """The router: policy, replicas, API keys and exposure from the config (a load balancer Service
    only for `internal`/`public` exposure, annotated for the AWS Load Balancer Controller)."""
    router = config.router
    exposure = router.exposure
    drain = router_drain_s(config)
    return RouterArgs(
        image=router_image(config, secrets), replicas=router.replicas,
        policy=router_policy(config),
        api_keys=_api_keys(config, secrets), placement=router_placement(config),
        service_type="ClusterIP" if exposure.kind == "cluster" else "LoadBalancer",
        service_annotations=service_annotations(exposure, ROUTER_PORT_NAME, drain_s=drain),
        drain_s=drain,
        prestop_s=DEFAULT_PRESTOP_S if exposure.kind == "cluster" else NLB_PRESTOP_S,
        kv_scoring=config.kv_events.scoring,
    )


def router_drain_s(config: StackConfig) -> int:
    """How long a router drains: the longest request of any model (`LLMStack` would raise it to
    that too; the NLB's deregistration delay needs it here)."""
    return max(longest_request_s(m.max_model_len) for m in config.models.values())


def _key_secret(ref: SecretRef, config: StackConfig, secrets: ServingSecrets,
                render: Callable[[list[str]], str]) -> SecretRef | None:
    """A Secret made from the router's API keys (rendered by `render`, still a Pulumi secret),
    or None when the router does not require keys."""
    if not config.router.require_api_keys or secrets.router_api_keys is None:
        return None
    value = pulumi.Output.from_input(secrets.router_api_keys).apply(lambda text: render(split_keys(text)))
    return SecretRef(name=ref.name, key=ref.key, value=value)


def _api_keys(config: StackConfig, secrets: ServingSecrets) -> SecretRef | None:
    """Every key, one per line, as the router reads its keys file."""
    return _key_secret(API_KEYS_SECRET, config, secrets, "\n".join)


def _benchmark_key(config: StackConfig, secrets: ServingSecrets) -> SecretRef | None:
    """The first key alone: the one the benchmark Job sends."""
    return _key_secret(BENCHMARK_KEY_SECRET, config, secrets, lambda keys: keys[0] if keys else "")


def benchmark_args(config: StackConfig, secrets: ServingSecrets) -> BenchmarkJobArgs | None:
    """The post-deploy benchmark Job, or None when disabled."""
    bench = config.benchmark
    if not bench.enabled:
        return None
    return BenchmarkJobArgs(
        image=bench.image or secrets.benchmark_image or BUILT_BENCHMARK_IMAGE_PLACEHOLDER,
        model=config.served_name(bench.model) if bench.model else None,
        users=bench.users, rounds=bench.rounds, system_prompt_tokens=bench.system_prompt_tokens,
        history_tokens=bench.history_tokens, answer_tokens=bench.answer_tokens, qps=bench.qps,
        api_key=_benchmark_key(config, secrets),
        placement=system_placement(config),
    )


def cache_zone(config: StackConfig, pool_zones: Mapping[str, tuple[str, ...]]) -> str | None:
    """The zone the shared cache tier belongs in: the zone of the GPU pools its engines run on
    (every put and get from another zone is cross-zone traffic, billed, and slower). Pools over
    several zones: the zone holding most of the models' GPUs at maximum replicas, ties to the
    earliest-listed zone. None when the zones are not known."""
    gpus: dict[str, int] = {}
    for model in config.models.values():
        zones = pool_zones.get(model.node_pool, ())
        for zone in zones:
            gpus[zone] = gpus.get(zone, 0) + model.max_replicas * model.tensor_parallel_size
    return max(gpus, key=lambda z: gpus[z]) if gpus else None


def cache_server_args(config: StackConfig,
                      pool_zones: Mapping[str, tuple[str, ...]]) -> LMCacheServerArgs | None:
    """The shared LMCache server on the system pool, in its engines' zone (`cache_zone`), or None."""
    server = config.lmcache.server
    if not (config.lmcache.enabled and server.enabled):
        return None
    placement = system_placement(config)
    zone = cache_zone(config, pool_zones)
    if zone is not None:
        placement = dataclasses.replace(placement, node_selector={**placement.node_selector, ZONE_KEY: zone})
    return LMCacheServerArgs(max_memory_gib=server.memory_gib, clients=cache_clients(config),
                             placement=placement)


MONITORING_NAMESPACE = "monitoring"


def monitoring_args(config: StackConfig, secrets: ServingSecrets) -> MonitoringArgs | None:
    """Monitoring from `llm-stack:monitoring` (None when disabled): thresholds, receivers, the
    models' replica bounds and the pools' limits for the Capacity dashboard and pool alert."""
    mon = config.monitoring
    if not mon.enabled:
        return None
    receiver_secrets = None
    if mon.receivers and secrets.alert_receiver_secrets is not None:
        receiver_secrets = pulumi.Output.from_input(secrets.alert_receiver_secrets).apply(json.loads)
    return MonitoringArgs(
        namespace=MONITORING_NAMESPACE, stack_namespace=config.namespace,
        scrape_interval_s=mon.scrape_interval_seconds, retention_days=mon.retention_days,
        storage_gib=mon.storage_gib, ttft_objective_s=mon.ttft_objective_seconds,
        max_waiting_per_engine=mon.max_waiting_per_engine,
        lora=any(model.adapters for model in config.models.values()),
        models={config.served_name(k): ReplicaBounds(min=m.min_replicas, max=m.max_replicas)
                for k, m in config.models.items()},
        pools={k: PoolLimit(max_nodes=p.max_size, gpus_per_node=INSTANCES[p.instance_type].gpus)
               for k, p in config.node_pools.items()},
        node_pool_label=NODE_POOL_LABEL, placement=system_placement(config),
        grafana_admin_password=secrets.grafana_admin_password,
        receivers={k: Receiver(kind=r.kind, channel=r.channel, severities=r.severities)
                   for k, r in mon.receivers.items()},
        receiver_secrets=receiver_secrets,
    )


def stack_args(config: StackConfig, secrets: ServingSecrets,
               extensions: Mapping[str, Any] | None = None) -> LLMStackArgs:
    """Everything `LLMStack` needs, from the config and the secret inputs."""
    hf = secrets.hf_token
    return LLMStackArgs(
        models={name: checked_engine_args(config, name, model, secrets.model_store_role_arn)
                for name, model in config.models.items()},
        router=router_args(config, secrets),
        namespace=config.namespace,
        # behind an ip-target NLB, a new router pod is Ready only once its target is healthy
        namespace_labels={} if config.router.exposure.kind == "cluster" else READINESS_GATE_LABEL,
        hf_token=SecretRef(name=HF_TOKEN_SECRET.name, key=HF_TOKEN_SECRET.key, value=hf) if hf else None,
        lmcache_server=cache_server_args(config, secrets.pool_zones),
        benchmark=benchmark_args(config, secrets),
        **_monitoring(config, secrets),
        **dict(extensions or {}),
    )


def _monitoring(config: StackConfig, secrets: ServingSecrets) -> dict[str, Any]:
    """The monitoring seam and the namespace the engines must trust for scraping, when enabled."""
    mon = monitoring_args(config, secrets)
    if mon is None:
        return {}
    return {"monitoring": MonitoringExtension(mon), "trusted_namespaces": (mon.namespace,)}
