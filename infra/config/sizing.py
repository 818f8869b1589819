"""Pure per-engine host sizing shared by the config rules and the serving mapping, so what the
rules accept is exactly what the engine pods request."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from infra.config.catalog import InstanceType
from stack_components.cache_clients import CacheClients, chunk_value_bytes
from stack_components.capacity import find_model
from stack_components.host_memory import process_memory_gib

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

GIB_PER_GB = 1e9 / 2**30
SYSTEM_CPU_RESERVE = 2
"""vCPUs per node kept for kubelet and daemonsets."""


def shm_gib(tensor_parallel_size: int) -> int:
    """RAM-backed /dev/shm: NCCL needs room with tensor parallelism, little without."""
    return 4 if tensor_parallel_size == 1 else 16


def engine_memory_gib(cpu_buffer_gib: float, tensor_parallel_size: int) -> int:
    """Memory request (= limit) of one engine pod: one LMCache CPU buffer per TP rank + the
    pod's processes (the component's own rule, from the TP size) + /dev/shm."""
    buffers = math.ceil(cpu_buffer_gib * tensor_parallel_size)
    return buffers + process_memory_gib(tensor_parallel_size) + shm_gib(tensor_parallel_size)


def engine_memory_share_gib(instance: InstanceType, tensor_parallel_size: int) -> float:
    """The share of a node's usable RAM that belongs to one engine (its GPUs' share)."""
    return instance.usable_memory_gib * tensor_parallel_size / instance.gpus


def engine_cpu(instance: InstanceType, tensor_parallel_size: int) -> int:
    """CPU request of one engine pod: its GPUs' share of the node's vCPUs, at most 8 per GPU."""
    share = (instance.vcpus - SYSTEM_CPU_RESERVE) * tensor_parallel_size // instance.gpus
    return max(1, min(8 * tensor_parallel_size, share))


def cache_clients(config: StackConfig) -> CacheClients:
    """The shared cache server's clients at the models' maximum replica counts: one LMCache
    instance per engine rank, moving chunks of its rank's KV."""
    chunk = config.lmcache.chunk_size
    users = [m for name, m in config.models.items() if config.uses_lmcache(name)]
    users = users or list(config.models.values())
    ranks = sum(m.max_replicas * m.tensor_parallel_size for m in users)
    largest = max(chunk_value_bytes(find_model(m.model_id), chunk, m.tensor_parallel_size) for m in users)
    return CacheClients(engine_ranks=ranks, max_value_bytes=largest)
