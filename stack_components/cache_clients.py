"""The shared cache server's clients: how much memory their buffers may hold, and the Valkey
limits that hold them to it (pure).

Every LMCache instance (one per engine tensor-parallel rank: each worker builds its own
connector with its own KV shard) reaches the server through LMCache 0.5.6's RedisConnector,
a redis-py pool of up to 150 connections (`max_connections = 150`,
lmcache/v1/storage_backend/connector/redis_connector.py), and every value it moves is one
LMCache chunk of that rank's KV: layers × 2 × chunk tokens × KV heads per GPU × head dim ×
dtype bytes (`kv_shape`, lmcache/integration/vllm/utils.py; KV heads per GPU is
max(1, heads // TP), vllm/config/model.py `get_num_kv_heads`): 32 MiB for an 8B rank, 20 MiB
for a 70B TP-4 rank at 256-token chunks. A SET holds its value in the client's query buffer
until it has all arrived, a GET its reply in the output buffer, and the server evicts keys only
when it runs a command, so buffers filled between commands go past `maxmemory`.

The limits (valkey.conf, CLIENTS and ADVANCED CONFIG): `maxclients` admits every pool in full;
`client-query-buffer-limit` and `client-output-buffer-limit normal` cap one client at two
values; `maxmemory-clients` caps all clients together at `client_memory_bytes`, beyond which
the server drops the clients holding the most ("client eviction"). A dropped or refused
operation is a miss to LMCache, never an error to a request (lmcache/v1/storage_backend/
remote_backend.py: `contains` returns False, `get_blocking` None, a failed put is logged), so
a burst costs hit rate while the pod, sized `maxmemory` + `client_memory_bytes` + process
overhead, is never OOM-killed with the whole shared tier in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stack_components import _validate as v
from stack_components.capacity import ModelSpec

REDIS_CONNECTOR_POOL = 150
"""Connections one LMCache 0.5.6 RedisConnector may open (its pool's `max_connections`)."""
IN_FLIGHT_PER_RANK = 8
"""Values each rank may have moving at once within the client budget: the concurrency LMCache
0.5.6 gives its own native RESP client (`resp_num_threads`, default 8, redis_adapter.py)."""
ADMIN_CONNECTIONS = 32
"""Connections beyond the pools: probes and operators."""
PROTO_MAX_BULK_BYTES = 512 << 20
"""Valkey's default `proto-max-bulk-len`: the largest value a SET may carry."""
GIB = 1 << 30


def chunk_value_bytes(model: ModelSpec, chunk_size: int, tensor_parallel_size: int) -> int:
    """Bytes of one LMCache chunk of one rank's KV, as the server stores it."""
    kv_heads = max(1, model.num_kv_heads // tensor_parallel_size)
    return model.num_layers * 2 * chunk_size * kv_heads * model.head_dim * model.dtype_bytes


@dataclass(frozen=True, kw_only=True)
class CacheClients:
    """Who connects to the cache server and the largest value they move."""

    engine_ranks: int = 16
    """LMCache instances that may connect at once: engine replicas × tensor-parallel size,
    summed over models at their maximum replica counts."""
    max_value_bytes: int = 32 << 20
    """Largest value one of them stores (`chunk_value_bytes` of the largest model rank)."""
    in_flight_per_rank: int = IN_FLIGHT_PER_RANK
    """Values per rank the client budget holds at once."""

    def __post_init__(self) -> None:
        v.int_in("clients.engine_ranks", self.engine_ranks, 1, 100_000)
        v.int_in("clients.max_value_bytes", self.max_value_bytes, 1, PROTO_MAX_BULK_BYTES)
        v.int_in("clients.in_flight_per_rank", self.in_flight_per_rank, 1, REDIS_CONNECTOR_POOL)

    @property
    def max_clients(self) -> int:
        """`maxclients`: every rank's full pool, plus probes and operators."""
        return self.engine_ranks * REDIS_CONNECTOR_POOL + ADMIN_CONNECTIONS

    @property
    def buffer_limit_bytes(self) -> int:
        """One client's query and output buffer cap: two values."""
        return 2 * self.max_value_bytes

    @property
    def client_memory_gib(self) -> int:
        """`maxmemory-clients` in whole GiB: ranks × in-flight values × the largest value."""
        return math.ceil(self.engine_ranks * self.in_flight_per_rank * self.max_value_bytes / GIB)


def client_flags(clients: CacheClients) -> list[str]:
    """valkey-server flags bounding the clients (each config's words as separate arguments)."""
    limit = str(clients.buffer_limit_bytes)
    return [
        "--maxclients", str(clients.max_clients),
        "--maxmemory-clients", str(clients.client_memory_gib * GIB),
        "--client-query-buffer-limit", limit,
        "--client-output-buffer-limit", "normal", limit, "0", "0",
    ]
