"""`LMCacheServer` under the recording mocks."""

from __future__ import annotations

from component_helpers import validate_all

from stack_components import LMCacheServer, LMCacheServerArgs

ARGS = LMCacheServerArgs(namespace="llm", port=6380, max_memory_gib=96)


def test_objects_validate_and_run_a_bounded_evicting_server(deploy, k8s_objects) -> None:
    """Deployment and Service validate; the server is capped at max_memory_gib (in bytes) with
    LRU eviction and no persistence, and the pod has 2 GiB more than the cap."""
    deploy(lambda: LMCacheServer("cache", ARGS))
    assert validate_all(k8s_objects()) == 2
    container = k8s_objects("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    flags = dict(zip(command[1::2], command[2::2], strict=False))
    assert command[0] == "valkey-server"
    assert flags["--maxmemory"] == str(96 * 2**30)
    assert flags["--maxmemory-policy"] == "allkeys-lru"
    assert flags["--port"] == "6380" and flags["--save"] == "" and flags["--appendonly"] == "no"
    assert container["resources"]["limits"]["memory"] == "98Gi"
    assert k8s_objects("Service")[0]["spec"]["ports"][0]["port"] == 6380


def test_url_output_is_a_redis_url(deploy) -> None:
    """`url` is the redis:// address engines put in LMCACHE_REMOTE_URL (LMCache's RedisConnector)."""
    seen: list[str] = []
    deploy(lambda: LMCacheServer("cache", ARGS).url.apply(seen.append))
    assert seen == ["redis://cache.llm.svc.cluster.local:6380"]
