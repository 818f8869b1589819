"""Cross-field rules over a parsed `StackConfig`: what no single section can check alone.

Each rule raises `ConfigError` with the full key of the value to change. The GPU arithmetic is
`stack_components.capacity`'s, so a config that passes here never fails in the engine component.
"""

from __future__ import annotations

from collections.abc import Callable

from infra.config.adapter_sources import check_adapter_sources
from infra.config.autoscaling import check_autoscaling
from infra.config.catalog import INSTANCES, InstanceType
from infra.config.cluster_rules import CLUSTER_RULES
from infra.config.models import ModelConfig
from infra.config.sizing import (
    GIB_PER_GB,
    cache_clients,
    engine_memory_gib,
    engine_memory_share_gib,
    shm_gib,
)
from infra.config.stack import StackConfig
from infra.errors import NAMESPACE, require
from stack_components import capacity
from stack_components.errors import ArgsError, CapacityError
from stack_components.host_memory import process_memory_gib
from stack_components.lmcache_server import PROCESS_OVERHEAD_GIB


def key(path: str) -> str:
    """The full config key of `path` (`models.llama8b.tensorParallelSize`)."""
    return f"{NAMESPACE}:{path}"


def check_rules(config: StackConfig) -> None:
    """Every cross-field rule, in a fixed order (the first failure is reported)."""
    for rule in RULES:
        rule(config)


def _system_pool(config: StackConfig) -> None:
    name = config.cluster.system_node_pool
    require(name in config.node_pools, key("cluster.systemNodePool"), name,
            f"must name a pool in {NAMESPACE}:nodePools ({', '.join(sorted(config.node_pools))})")
    pool = config.node_pools[name]
    require(pool.gpus == 0, key("cluster.systemNodePool"), name,
            f"must name a pool without GPUs (its {pool.instance_type} has {pool.gpus})")


def _model_pools(config: StackConfig) -> None:
    for name, model in config.models.items():
        require(model.node_pool in config.node_pools, key(f"models.{name}.nodePool"), model.node_pool,
                f"must name a pool in {NAMESPACE}:nodePools ({', '.join(sorted(config.node_pools))})")
        instance = instance_of(config, model)
        require(instance.gpus > 0, key(f"models.{name}.nodePool"), model.node_pool,
                f"must name a GPU pool (its {instance.name} has no GPU)")
        require(instance.gpus % model.tensor_parallel_size == 0, key(f"models.{name}.tensorParallelSize"),
                model.tensor_parallel_size,
                f"must divide the {instance.gpus} GPUs of a {instance.name} node (pool '{model.node_pool}')")


def _model_fits_gpus(config: StackConfig) -> None:
    for name, model in config.models.items():
        spec = _model_spec(name, model)
        gpu = capacity.find_gpu(instance_of(config, model).gpu or "")
        tokens = engine_gpu_tokens(name, model, spec, gpu)
        length = model.max_model_len
        require(length <= spec.max_context, key(f"models.{name}.maxModelLen"), length,
                f"must be <= the model's context length {spec.max_context}")
        require(length <= tokens, key(f"models.{name}.maxModelLen"), length,
                f"must fit the engine's KV cache: {tokens} tokens on {model.tensor_parallel_size} × "
                f"{gpu.name} at this gpuMemoryUtilization (lower it, or raise tensorParallelSize)")


def _model_spec(name: str, model: ModelConfig) -> capacity.ModelSpec:
    try:
        return capacity.find_model(model.model_id)
    except ArgsError:
        require(False, key(f"models.{name}.modelId"), model.model_id,
                f"must be a model in the catalogue ({', '.join(capacity.MODELS)})")
        raise


def engine_gpu_tokens(name: str, model: ModelConfig, spec: capacity.ModelSpec, gpu: capacity.GpuSpec) -> int:
    """KV tokens one engine holds on its GPUs, or a `ConfigError` when the weights do not fit."""
    try:
        return capacity.gpu_cache_tokens(spec, gpu, tensor_parallel_size=model.tensor_parallel_size,
                                         gpu_memory_utilization=model.gpu_memory_utilization)
    except CapacityError as err:
        require(False, key(f"models.{name}.tensorParallelSize"), model.tensor_parallel_size,
                f"must leave room for the weights: {err}")
        raise


def _lmcache_fits_nodes(config: StackConfig) -> None:
    lm = config.lmcache
    if not lm.enabled:
        return
    for name, model in config.models.items():
        if not config.uses_lmcache(name):
            continue
        instance = instance_of(config, model)
        tp = model.tensor_parallel_size
        engines = instance.gpus // tp
        share = engine_memory_share_gib(instance, tp)
        need = engine_memory_gib(lm.cpu_buffer_gib, tp)
        require(need <= share, key("lmcache.cpuBufferGiB"), lm.cpu_buffer_gib,
                f"must fit each engine's RAM share on pool '{model.node_pool}' ({instance.name}: "
                f"{engines} engines of model '{name}' per node, {share:.1f} GiB each, holding {tp} "
                f"buffer(s) (one per TP rank), {process_memory_gib(tp)} GiB for the engine's processes "
                f"and {shm_gib(tp)} GiB of /dev/shm)")
        disk = lm.disk_buffer_gib
        nvme_gib = instance.nvme_gb * GIB_PER_GB
        require(disk * instance.gpus <= nvme_gib, key("lmcache.diskBufferGiB"), disk,
                f"must fit the NVMe on pool '{model.node_pool}' ({instance.name}: {nvme_gib:.0f} GiB "
                f"for {instance.gpus} GPUs, one disk buffer per TP rank)")


def gpus_at_max_replicas(config: StackConfig, pool_name: str) -> int:
    """The GPUs a pool's models need with every model at its maxReplicas."""
    return sum(m.max_replicas * m.tensor_parallel_size for m in config.models.values()
               if m.node_pool == pool_name)


def _pool_capacity(config: StackConfig) -> None:
    for pool_name, pool in config.node_pools.items():
        users = {n: m for n, m in config.models.items() if m.node_pool == pool_name}
        needed = gpus_at_max_replicas(config, pool_name)
        have = pool.max_size * pool.gpus
        detail = ", ".join(f"{n} {m.max_replicas}×{m.tensor_parallel_size}" for n, m in sorted(users.items()))
        require(needed <= have, key(f"nodePools.{pool_name}.maxSize"), pool.max_size,
                f"must hold the models' maximum replicas: {needed} GPUs ({detail}) but "
                f"{pool.max_size} × {pool.instance_type} give {have}")


def _served_names(config: StackConfig) -> None:
    seen: dict[str, str] = {}
    for name in config.models:
        served = config.served_name(name)
        require(served not in seen, key(f"models.{name}.servedName"), served,
                f"must be unique (model '{seen.get(served)}' serves it too)")
        seen[served] = name
    for name, model in config.models.items():
        stable = [(a, f"adapters.{a}") for a, spec in model.adapters.items() if spec.versions]
        for adapter, where in [*stable, *((n, w) for n, w, _, _ in model.served_adapters())]:
            require(adapter not in seen, key(f"models.{name}.{where}"), adapter,
                    f"must be unique among served models and adapters ('{seen.get(adapter)}' serves it too): "
                    "clients name either as `model` (a version is served as <adapter>--<version>)")
            seen[adapter] = f"{name}.{where}"


def _secrets(config: StackConfig) -> None:
    required = {"hfToken": "the Hugging Face token that downloads the weights"}
    if config.router.require_api_keys:
        required["routerApiKeys"] = "the router's API keys (router.requireApiKeys is true)"
    if config.cluster.mode == "existing":
        required["kubeconfig"] = "the kubeconfig of the existing cluster (cluster.mode is 'existing')"
    if config.monitoring.enabled and config.monitoring.receivers:
        required["alertReceiverSecrets"] = "each Alertmanager receiver's URL or key (monitoring.receivers)"
    for name, why in required.items():
        require(name in config.secret_keys, key(name), None,
                f"must be set as a secret ({why}): pulumi config set --secret {NAMESPACE}:{name} ...")


def _benchmark(config: StackConfig) -> None:
    chosen = config.benchmark.model
    require(chosen is None or chosen in config.models, key("benchmark.model"), chosen,
            f"must name a model in {NAMESPACE}:models ({', '.join(sorted(config.models))})")


def _cache_server(config: StackConfig) -> None:
    server = config.lmcache.server
    if not (config.lmcache.enabled and server.enabled):
        return
    system = INSTANCES[config.node_pools[config.cluster.system_node_pool].instance_type]
    clients = cache_clients(config)
    budget = clients.client_memory_gib
    require(server.memory_gib + budget + PROCESS_OVERHEAD_GIB <= system.usable_memory_gib,
            key("lmcache.server.memoryGiB"), server.memory_gib,
            f"must fit a system-pool node ({system.name}: {system.usable_memory_gib:.0f} GiB usable) beside "
            f"{budget} GiB of client buffers ({clients.engine_ranks} engine ranks x "
            f"{clients.in_flight_per_rank} values of {clients.max_value_bytes / 2**20:.0f} MiB) and "
            f"{PROCESS_OVERHEAD_GIB} GiB for the server process: at most "
            f"{int(system.usable_memory_gib) - budget - PROCESS_OVERHEAD_GIB}")


def _router_image(config: StackConfig) -> None:
    require(config.router.image is not None or config.cluster.mode == "eks", key("router.image"), None,
            "must be set with cluster.mode 'existing' (the program builds the router image into ECR "
            "only for clusters it creates)")


def _benchmark_image(config: StackConfig) -> None:
    bench = config.benchmark
    require(not bench.enabled or bench.image is not None or config.cluster.mode == "eks",
            key("benchmark.image"), None,
            "must be set with cluster.mode 'existing' while the benchmark is enabled (the program builds "
            "bench/Dockerfile into ECR only for clusters it creates)")


def _model_store(config: StackConfig) -> None:
    require(config.model_store is None or config.cluster.mode == "eks", key("modelStore"),
            config.model_store and config.model_store.bucket,
            "needs cluster.mode 'eks' (the program creates the engines' S3 role and the gateway "
            "endpoint only for clusters it creates)")


def _component_args(config: StackConfig) -> None:
    """Build every component's Args and the router's policy from the config (the components'
    own rules, once), errors under the stack key."""
    from infra.serving import ServingSecrets, check_router_policy, stack_args

    check_router_policy(config)
    # Stand-ins for the secrets the config set (`_secrets` ran first): only their presence matters here.
    receivers = "{}" if "alertReceiverSecrets" in config.secret_keys else None
    stack_args(config, ServingSecrets(hf_token=None, alert_receiver_secrets=receivers))


def instance_of(config: StackConfig, model: ModelConfig) -> InstanceType:
    """The instance type of the node pool a model runs on."""
    return INSTANCES[config.node_pools[model.node_pool].instance_type]


RULES: tuple[Callable[[StackConfig], None], ...] = (
    *CLUSTER_RULES, _system_pool, _model_pools, _served_names, check_adapter_sources, _benchmark, _secrets,
    _router_image, _benchmark_image, _model_store, _component_args, _model_fits_gpus, _lmcache_fits_nodes,
    _pool_capacity, _cache_server, check_autoscaling,
)
"""In order: the cluster's rules, references (pools, names, required secrets), then the
components' own rules (their Args built from the config), then the sizing rules that need valid
Args values."""
