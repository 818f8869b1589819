"""`LMCacheServer` under the recording mocks."""

from __future__ import annotations

from component_helpers import validate_all

from stack_components import LMCacheServer, LMCacheServerArgs
from stack_components.cache_clients import CacheClients

ARGS = LMCacheServerArgs(namespace="llm", port=6380, max_memory_gib=96)
MIB = 1 << 20


def test_objects_validate_and_run_a_bounded_evicting_server(deploy, k8s_objects) -> None:
    """Deployment and Service validate; the server is capped at max_memory_gib (in bytes) with
    LRU eviction and no persistence; the pod has the clients' budget (16 ranks x 8 values of
    32 MiB: 4 GiB) and 2 GiB more than the cap."""
    deploy(lambda: LMCacheServer("cache", ARGS))
    assert validate_all(k8s_objects()) == 2
    container = k8s_objects("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    flags = dict(zip(command[1::2], command[2::2], strict=False))
    assert command[0] == "valkey-server"
    assert flags["--maxmemory"] == str(96 * 2**30)
    assert flags["--maxmemory-policy"] == "allkeys-lru"
    assert flags["--port"] == "6380" and flags["--save"] == "" and flags["--appendonly"] == "no"
    assert container["resources"]["limits"]["memory"] == "102Gi"
    assert flags["--maxmemory-clients"] == str(4 * 2**30)
    assert k8s_objects("Service")[0]["spec"]["ports"][0]["port"] == 6380


def test_url_output_is_a_redis_url(deploy) -> None:
    """`url` is the redis:// address engines put in LMCACHE_REMOTE_URL (LMCache's RedisConnector)."""
    seen: list[str] = []
    deploy(lambda: LMCacheServer("cache", ARGS).url.apply(seen.append))
    assert seen == ["redis://cache.llm.svc.cluster.local:6380"]


def test_client_buffers_are_capped_and_counted_in_the_pod(deploy, k8s_objects) -> None:
    """The pod holds maxmemory + maxmemory-clients + 2 GiB; one client's query and output
    buffers are capped at two of the largest values, and every rank's pool is admitted."""
    clients = CacheClients(engine_ranks=4, max_value_bytes=20 * MIB)
    args = LMCacheServerArgs(namespace="llm", max_memory_gib=8, clients=clients)
    deploy(lambda: LMCacheServer("cache", args))
    container = k8s_objects("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    at = command.index("--client-output-buffer-limit")
    assert command[at + 1:at + 5] == ["normal", str(40 * MIB), "0", "0"]
    flags = dict(zip(command[1:at:2], command[2:at:2], strict=True))
    assert flags["--client-query-buffer-limit"] == str(40 * MIB)
    assert flags["--maxclients"] == str(4 * 150 + 32)
    assert flags["--maxmemory-clients"] == str(2**30)  # 4 x 8 x 20 MiB = 640 MiB, whole GiB
    resources = container["resources"]
    assert resources["limits"]["memory"] == resources["requests"]["memory"] == "11Gi"
