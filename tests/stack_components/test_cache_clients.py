"""The shared cache server's client limits: one value is one LMCache chunk of one rank's KV
(32 MiB for an 8B rank, 20 MiB for a 70B TP-4 rank), every rank's full connection pool is
admitted, one client holds at most two values, and all clients together at most the budget the
pod is sized for."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack_components.cache_clients import (
    GIB,
    PROTO_MAX_BULK_BYTES,
    REDIS_CONNECTOR_POOL,
    CacheClients,
    chunk_value_bytes,
    client_flags,
)
from stack_components.capacity import MODELS, kv_bytes_per_token
from stack_components.errors import ArgsError

MIB = 1 << 20


def test_a_value_is_one_chunk_of_one_ranks_kv():
    """8B at TP 1 and 70B at TP 4, 256-token chunks: 32 MiB and 20 MiB; a TP wider than the KV
    heads keeps one head per GPU (vLLM replicates them)."""
    small, large = MODELS["Llama-3.1-8B"], MODELS["Llama-3.1-70B"]
    assert chunk_value_bytes(small, 256, 1) == 32 * MIB == 256 * kv_bytes_per_token(small)
    assert chunk_value_bytes(large, 256, 4) == 20 * MIB
    assert chunk_value_bytes(large, 256, 16) == chunk_value_bytes(large, 256, 8)


def test_prod_shaped_clients_render_their_limits():
    """48 ranks of 32 MiB values: every pool admitted (48 × 150 + 32), 12 GiB for all clients,
    64 MiB per client for queries and replies (hard limit only)."""
    clients = CacheClients(engine_ranks=48, max_value_bytes=32 * MIB)
    flags = client_flags(clients)
    assert flags == ["--maxclients", "7232", "--maxmemory-clients", str(12 * GIB),
                     "--client-query-buffer-limit", str(64 * MIB),
                     "--client-output-buffer-limit", "normal", str(64 * MIB), "0", "0"]
    assert clients.client_memory_gib == 12 and clients.max_clients == 48 * REDIS_CONNECTOR_POOL + 32


@given(ranks=st.integers(1, 2000), value=st.integers(1, PROTO_MAX_BULK_BYTES), in_flight=st.integers(1, 150))
def test_the_budget_never_undercounts_and_one_value_always_fits(ranks, value, in_flight):
    """The budget in whole GiB covers ranks × in-flight values; one client may hold at least one
    value each way, so a SET or GET of the largest value is never refused by its own cap."""
    clients = CacheClients(engine_ranks=ranks, max_value_bytes=value, in_flight_per_rank=in_flight)
    assert clients.client_memory_gib * GIB >= ranks * in_flight * value
    assert clients.client_memory_gib * GIB < ranks * in_flight * value + GIB
    assert clients.buffer_limit_bytes >= value and clients.max_clients > ranks * REDIS_CONNECTOR_POOL


@pytest.mark.parametrize(("kwargs", "name"), [({"engine_ranks": 0}, "clients.engine_ranks"),
                                              ({"max_value_bytes": PROTO_MAX_BULK_BYTES + 1},
                                               "clients.max_value_bytes"),
                                              ({"in_flight_per_rank": 151}, "clients.in_flight_per_rank")])
def test_bad_clients_name_the_field(kwargs, name):
    """A value larger than a SET may carry, no ranks, or more in flight than a pool has: refused,
    naming the field."""
    with pytest.raises(ArgsError, match=name):
        CacheClients(**kwargs)
