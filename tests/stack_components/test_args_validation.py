"""Every Args rule rejects a bad value with an ArgsError naming the field, the value and the rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from router.settings import PolicySettings
from stack_components import (
    ArgsError,
    BenchmarkJobArgs,
    EngineCapacity,
    GpuSpec,
    LLMStackArgs,
    LMCacheArgs,
    LMCacheServerArgs,
    ModelCacheVolume,
    ModelSpec,
    Placement,
    RouterArgs,
    SecretRef,
    Toleration,
    VllmEngineArgs,
)

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SPEC = {"name": "m", "num_layers": 2, "num_kv_heads": 2, "head_dim": 64, "params_billion": 1.0}


def engine(**kw: Any) -> VllmEngineArgs:
    return VllmEngineArgs(**({"model": MODEL} | kw))


def router(**kw: Any) -> RouterArgs:
    return RouterArgs(**({"image": "r:1"} | kw))


def bench(**kw: Any) -> BenchmarkJobArgs:
    return BenchmarkJobArgs(**({"image": "b:1"} | kw))


def stack(**kw: Any) -> LLMStackArgs:
    return LLMStackArgs(**({"models": {"m": engine()}, "router": router()} | kw))


CASES: list[tuple[str, Callable[[], Any]]] = [
    ("secret.name", lambda: SecretRef(name="Bad_Name", key="k")),
    ("secret.key", lambda: SecretRef(name="s", key="")),
    ("secret.key", lambda: SecretRef(name="s", key="a/b")),
    ("toleration.key", lambda: Toleration(key="")),
    ("toleration.operator", lambda: Toleration(key="k", operator="In")),
    ("toleration.effect", lambda: Toleration(key="k", effect="Sometimes")),
    ("toleration.value", lambda: Toleration(key="k", value="v")),
    ("toleration.value", lambda: Toleration(key="k", operator="Equal")),
    ("placement.node_selector['pool']", lambda: Placement(node_selector={"pool": "bad value!"})),
    ("placement.tolerations", lambda: Placement(tolerations=("nvidia.com/gpu",))),
    ("model_cache.kind", lambda: ModelCacheVolume(kind="nfs")),
    ("model_cache.size_gib", lambda: ModelCacheVolume(size_gib=0)),
    ("model_cache.host_path", lambda: ModelCacheVolume(host_path="relative")),
    ("model_cache.mount_path", lambda: ModelCacheVolume(mount_path="models")),
    ("model_cache.storage_class", lambda: ModelCacheVolume(storage_class="")),
    ("model_spec.name", lambda: ModelSpec(**(SPEC | {"name": ""}))),
    ("model_spec.num_layers", lambda: ModelSpec(**(SPEC | {"num_layers": 0}))),
    ("model_spec.params_billion", lambda: ModelSpec(**(SPEC | {"params_billion": 0}))),
    ("model_spec.dtype_bytes", lambda: ModelSpec(**(SPEC | {"dtype_bytes": 3}))),
    ("gpu_spec.name", lambda: GpuSpec(name="", memory_gb=80)),
    ("gpu_spec.memory_gb", lambda: GpuSpec(name="g", memory_gb=0)),
    ("lmcache.chunk_size", lambda: LMCacheArgs(chunk_size=8)),
    ("lmcache.cpu_buffer_gib", lambda: LMCacheArgs(cpu_buffer_gib=-1)),
    ("lmcache.disk_buffer_gib", lambda: LMCacheArgs(disk_buffer_gib=-1)),
    ("lmcache.disk_path", lambda: LMCacheArgs(disk_path="lmcache")),
    ("lmcache.remote_url", lambda: LMCacheArgs(remote_url="http://cache:1")),
    ("lmcache.remote_serde", lambda: LMCacheArgs(remote_serde="pickle")),
    ("model", lambda: engine(model="")),
    ("model", lambda: engine(model="mistralai/Mistral-7B")),
    ("gpu", lambda: engine(gpu="V100")),
    ("revision", lambda: engine(revision="")),
    ("served_model_name", lambda: engine(served_model_name=" ")),
    ("namespace", lambda: engine(namespace="Bad")),
    ("image", lambda: engine(image="")),
    ("command", lambda: engine(command=())),
    ("replicas", lambda: engine(replicas=-1)),
    ("tensor_parallel_size", lambda: engine(tensor_parallel_size=3)),
    ("max_model_len", lambda: engine(max_model_len=0)),
    ("gpu_memory_utilization", lambda: engine(gpu_memory_utilization=0.99)),
    ("gpu_memory_utilization", lambda: engine(gpu_memory_utilization=0)),
    ("extra_args[0]", lambda: engine(extra_args=("--tensor-parallel-size", "2"))),
    ("shm_size_gib", lambda: engine(shm_size_gib=0)),
    ("cpu", lambda: engine(cpu=0)),
    ("startup_timeout_s", lambda: engine(startup_timeout_s=10)),
    ("max_unavailable", lambda: engine(max_unavailable=-1)),
    ("python_hash_seed", lambda: engine(python_hash_seed=-1)),
    ("run_as_user", lambda: engine(run_as_user=0)),
    ("activation_reserve_gb", lambda: engine(activation_reserve_gb=-1)),
    ("labels['team']", lambda: engine(labels={"team": "a b"})),
    ("memory_gib", lambda: engine(memory_gib=40, lmcache=LMCacheArgs(cpu_buffer_gib=120))),
    ("served_model_name", lambda: EngineCapacity(served_model_name="", gpu_cache_tokens=1)),
    ("gpu_cache_tokens", lambda: EngineCapacity(served_model_name="m", gpu_cache_tokens=0)),
    (
        "cpu_cache_tokens",
        lambda: EngineCapacity(served_model_name="m", gpu_cache_tokens=1, cpu_cache_tokens=-1),
    ),
    ("image", lambda: router(image="")),
    ("namespace", lambda: router(namespace="Bad")),
    ("replicas", lambda: router(replicas=-1)),
    ("policy", lambda: router(policy="prefix")),
    ("policy.params.sole_router",
     lambda: router(replicas=2, policy=PolicySettings(kind="prefix", params={"sole_router": True}))),
    ("engines", lambda: router(engines={"m": 400_000})),
    (
        "engines['Bad Key']",
        lambda: router(engines={"Bad Key": EngineCapacity(served_model_name="m", gpu_cache_tokens=1)}),
    ),
    ("cpu", lambda: router(cpu=0)),
    ("memory_gib", lambda: router(memory_gib=0)),
    ("workers", lambda: router(workers=0)),
    ("log_level", lambda: router(log_level="trace")),
    ("service_type", lambda: router(service_type="ExternalName")),
    ("run_as_user", lambda: router(run_as_user=0)),
    ("labels['x']", lambda: router(labels={"x": "-bad-"})),
    ("namespace", lambda: LMCacheServerArgs(namespace="Bad")),
    ("image", lambda: LMCacheServerArgs(image="")),
    ("command", lambda: LMCacheServerArgs(command=())),
    ("port", lambda: LMCacheServerArgs(port=0)),
    ("cpu", lambda: LMCacheServerArgs(cpu=0)),
    ("max_memory_gib", lambda: LMCacheServerArgs(max_memory_gib=0)),
    ("run_as_user", lambda: LMCacheServerArgs(run_as_user=0)),
    ("labels['x']", lambda: LMCacheServerArgs(labels={"x": "a b"})),
    ("image", lambda: bench(image="")),
    ("namespace", lambda: bench(namespace="Bad")),
    ("base_url", lambda: bench(base_url="ftp://router")),
    ("model", lambda: bench(model=" ")),
    ("users", lambda: bench(users=0)),
    ("rounds", lambda: bench(rounds=0)),
    ("system_prompt_tokens", lambda: bench(system_prompt_tokens=-1)),
    ("history_tokens", lambda: bench(history_tokens=-1)),
    ("answer_tokens", lambda: bench(answer_tokens=0)),
    ("qps", lambda: bench(qps=())),
    ("qps", lambda: bench(qps=(1.0, -0.5))),
    ("duration_s", lambda: bench(duration_s=0)),
    ("seed", lambda: bench(seed=-1)),
    ("results_s3_uri", lambda: bench(results_s3_uri="gs://bucket")),
    ("backoff_limit", lambda: bench(backoff_limit=-1)),
    ("ttl_seconds_after_finished", lambda: bench(ttl_seconds_after_finished=-1)),
    ("active_deadline_seconds", lambda: bench(active_deadline_seconds=10)),
    ("cpu", lambda: bench(cpu=0)),
    ("memory_gib", lambda: bench(memory_gib=0)),
    ("run_as_user", lambda: bench(run_as_user=0)),
    ("labels['x']", lambda: bench(labels={"x": "a b"})),
    ("namespace", lambda: stack(namespace="Bad")),
    ("models", lambda: stack(models={})),
    ("models['Bad_Key']", lambda: stack(models={"Bad_Key": engine()})),
    ("models['m']", lambda: stack(models={"m": "meta-llama/Llama-3.1-8B"})),
    ("router", lambda: stack(router={"image": "r:1"})),
    ("monitoring", lambda: stack(monitoring=object())),
    ("autoscaling", lambda: stack(autoscaling="keda")),
    ("benchmark.model", lambda: stack(benchmark=bench(model="not-served"))),
    ("labels['x']", lambda: stack(labels={"x": "a b"})),
    ("trusted_namespaces", lambda: stack(trusted_namespaces=("Monitoring",))),
]


@pytest.mark.parametrize(("field_name", "build"), CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
def test_invalid_value_names_field_value_and_rule(field_name: str, build: Callable[[], Any]) -> None:
    """The error carries the field, quotes it and the value, and says what is allowed."""
    with pytest.raises(ArgsError) as info:
        build()
    error = info.value
    assert error.field_name == field_name
    assert f"'{field_name}'" in str(error) and repr(error.value) in str(error)
    assert error.allowed


def test_valid_defaults_construct() -> None:
    """The documented defaults are themselves valid (the seed's shape for the benchmark)."""
    args = stack(
        benchmark=bench(), lmcache_server=LMCacheServerArgs(), router=router(policy=PolicySettings())
    )
    assert args.models["m"].served_name == MODEL
    assert (args.benchmark.users, args.benchmark.rounds, args.benchmark.history_tokens) == (320, 10, 20_000)
