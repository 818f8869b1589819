"""`LMCacheServer` under the recording mocks."""

from __future__ import annotations

from component_helpers import validate_all

from stack_components import LMCacheServer, LMCacheServerArgs

ARGS = LMCacheServerArgs(namespace="llm", port=65432, memory_gib=96)


def test_objects_validate_and_run_lmcache_server(deploy, k8s_objects) -> None:
    """Deployment and Service validate; the container runs `lmcache_server 0.0.0.0 PORT` sized as asked."""
    deploy(lambda: LMCacheServer("cache", ARGS))
    assert validate_all(k8s_objects()) == 2
    container = k8s_objects("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["lmcache_server", "0.0.0.0", "65432"]
    assert container["resources"]["limits"]["memory"] == "96Gi"
    assert k8s_objects("Service")[0]["spec"]["ports"][0]["port"] == 65432


def test_url_output_is_an_lm_url(deploy) -> None:
    """`url` is the lm:// address engines put in LMCACHE_REMOTE_URL."""
    seen: list[str] = []
    deploy(lambda: LMCacheServer("cache", ARGS).url.apply(seen.append))
    assert seen == ["lm://cache.llm.svc.cluster.local:65432"]
