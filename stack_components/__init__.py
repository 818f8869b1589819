"""Cloud-agnostic Pulumi components for LLM Stack: vLLM + LMCache engines, the shared LMCache
server, the prefix-aware router, the post-deploy benchmark Job, `LLMStack` composing them, and
`Monitoring` (Prometheus, GPU metrics, dashboards, alerts) for its monitoring seam.
Each takes one frozen Args dataclass and any Kubernetes provider through its resource options."""

from stack_components.benchmark_job import BenchmarkJob, BenchmarkJobArgs
from stack_components.capacity import GPUS, MODELS, GpuSpec, ModelSpec, cpu_cache_tokens, gpu_cache_tokens
from stack_components.common import (
    GPU_PLACEMENT,
    GPU_TOLERATION,
    ModelCacheVolume,
    Placement,
    SecretRef,
    Toleration,
    TopologySpread,
)
from stack_components.engine import EngineCapacity, VllmEngine, VllmEngineArgs, engine_capacity
from stack_components.errors import ArgsError, CapacityError, ComponentError
from stack_components.lmcache import LMCacheArgs
from stack_components.lmcache_server import LMCacheServer, LMCacheServerArgs
from stack_components.lora import LoraAdapter, LoraArgs, LoraRollout
from stack_components.model_store import ModelStore
from stack_components.monitoring import Monitoring, MonitoringArgs, MonitoringExtension
from stack_components.router import Router, RouterArgs
from stack_components.stack import LLMStack, LLMStackArgs, StackContext, StackExtension

__all__ = [
    "GPUS",
    "GPU_PLACEMENT",
    "GPU_TOLERATION",
    "MODELS",
    "ArgsError",
    "BenchmarkJob",
    "BenchmarkJobArgs",
    "CapacityError",
    "ComponentError",
    "EngineCapacity",
    "GpuSpec",
    "LLMStack",
    "LLMStackArgs",
    "LMCacheArgs",
    "LMCacheServer",
    "LMCacheServerArgs",
    "LoraAdapter",
    "LoraArgs",
    "LoraRollout",
    "ModelCacheVolume",
    "ModelSpec",
    "ModelStore",
    "Monitoring",
    "MonitoringArgs",
    "MonitoringExtension",
    "Placement",
    "Router",
    "RouterArgs",
    "SecretRef",
    "StackContext",
    "StackExtension",
    "Toleration",
    "TopologySpread",
    "VllmEngine",
    "VllmEngineArgs",
    "cpu_cache_tokens",
    "engine_capacity",
    "gpu_cache_tokens",
]
