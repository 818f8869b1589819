"""Per stack, in the rendered engines: LMCache sizes are GiB per tensor-parallel rank, and every
figure built on them counts one buffer per rank — pod memory, the disk-tier emptyDir and the
KV capacity the router reads (the pod's cpu-cache-tokens annotation)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from stack_components.capacity import cpu_cache_tokens, find_model
from stack_components.host_memory import process_memory_gib

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _gi(quantity: str) -> float:
    assert quantity.endswith("Gi"), quantity
    return float(quantity[:-2])


def _engines(stack: str) -> list[dict]:
    found = []
    for path in sorted((GOLDEN / stack / "kubernetes").glob("*.deployment.*.yaml")):
        doc = yaml.safe_load(path.read_text())
        containers = doc["spec"]["template"]["spec"]["containers"]
        if containers[0]["name"] == "vllm":
            found.append(doc)
    return found


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_lmcache_buffers_are_counted_once_per_rank(stack) -> None:
    """Pod memory holds TP × the per-rank CPU buffer; the disk emptyDir TP × the disk buffer;
    the router's capacity annotation is LMCache's per-rank GiB × TP over the model's KV bytes
    (0 for an engine without LMCache: staging's LoRA engines)."""
    engines = _engines(stack)
    assert engines, f"no engine in tests/golden/{stack}"
    with_lmcache = 0
    for doc in engines:
        pod = doc["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        tp = int(container["resources"]["limits"]["nvidia.com/gpu"])
        per_rank = float(env.get("LMCACHE_MAX_LOCAL_CPU_SIZE") or 0)
        with_lmcache += per_rank > 0
        assert _gi(container["resources"]["limits"]["memory"]) >= tp * per_rank + 8
        model = find_model(container["args"][0])  # the positional model
        tokens = int(doc["spec"]["template"]["metadata"]["annotations"]["llmstack.io/cpu-cache-tokens"])
        assert tokens == cpu_cache_tokens(model, per_rank, tp)
        disk = env.get("LMCACHE_MAX_LOCAL_DISK_SIZE")
        if disk is not None:
            volume = next(v for v in pod["volumes"] if v["name"] == "lmcache-disk")
            assert _gi(volume["emptyDir"]["sizeLimit"]) >= tp * float(disk)
    assert with_lmcache >= 1


def test_prod_70b_pins_four_buffers_within_its_limit() -> None:
    """The defect this fixes: prod's TP-4 70B engine holds 4 per-rank buffers inside its limit."""
    (big,) = [d for d in _engines("prod") if d["metadata"]["name"] == "llm-llama70b"]
    container = big["spec"]["template"]["spec"]["containers"][0]
    per_rank = float({e["name"]: e.get("value") for e in container["env"]}["LMCACHE_MAX_LOCAL_CPU_SIZE"])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert _gi(container["resources"]["limits"]["memory"]) >= 4 * per_rank


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_engine_memory_holds_a_process_per_rank_plus_the_server_and_core(stack) -> None:
    """Pod memory = TP x the per-rank CPU buffer + the processes (API server, engine core, one
    worker per TP rank: 6 + 5 x TP GiB) + /dev/shm: a TP-4 pod reserves 26 GiB for processes,
    not the flat 10 GiB a TP-1 pod's would have been."""
    engines = _engines(stack)
    for doc in engines:
        container = doc["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        tp = int(container["resources"]["limits"]["nvidia.com/gpu"])
        shm = next(v for v in doc["spec"]["template"]["spec"]["volumes"] if v["name"] == "dshm")
        buffers = math.ceil(tp * float(env.get("LMCACHE_MAX_LOCAL_CPU_SIZE") or 0))  # 0: no LMCache
        limit = _gi(container["resources"]["limits"]["memory"])
        processes = limit - buffers - _gi(shm["emptyDir"]["sizeLimit"])
        assert processes == process_memory_gib(tp) == 6 + 5 * tp, doc["metadata"]["name"]
    assert engines
