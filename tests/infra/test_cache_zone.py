"""The shared LMCache tier (Valkey) runs in its engines' zone: the GPU pools sit in one zone and
a cache server in another makes every put and get cross zones (billed, slower)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from infra.config import parse_stack_config
from infra.serving import ZONE_KEY, cache_zone
from infra.stackfile import parse_stack_yaml, raw_project_config, read_stack_file

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def _prod():
    return parse_stack_config(raw_project_config(read_stack_file(ROOT, "prod")))


def test_the_zone_of_the_gpu_pools():
    """One GPU zone: that zone; GPU pools over two zones: the one with most GPUs at max
    replicas; zones unknown (an existing cluster): none."""
    config = _prod()
    one = {"a100": ("us-east-1b",), "system": ("us-east-1a", "us-east-1b")}
    assert cache_zone(config, one) == "us-east-1b"
    (a, b) = sorted(config.models)
    split = dataclasses.replace(config, models={
        a: dataclasses.replace(config.models[a], node_pool="a100"),
        b: dataclasses.replace(config.models[b], node_pool="other")})
    gpus = {n: m.max_replicas * m.tensor_parallel_size for n, m in split.models.items()}
    busier = max(gpus, key=lambda n: gpus[n])
    zones = {"a100": ("us-east-1a",), "other": ("us-east-1c",)}
    assert cache_zone(split, zones) == zones[split.models[busier].node_pool][0]
    assert cache_zone(config, {}) is None


def _cache_server(mocks) -> dict:
    (server,) = [r for r in mocks.of_type(DEPLOYMENT) if r.inputs["metadata"]["name"].endswith("lmcache")]
    return server.inputs["spec"]["template"]["spec"]


def _gpu_zone(mocks, pool: str) -> str:
    (group,) = [g for g in mocks.of_type(NODE_GROUP) if g.name.startswith(f"pools-{pool}")]
    (subnet,) = group.inputs["subnetIds"]
    return subnet.removeprefix("vpc-private-").removesuffix("-id")


def test_prod_cache_server_follows_the_gpu_pool_into_its_zone(run_program):
    """The rendered prod program: the cache server's node selector names the GPU node group's
    zone, also when the pool is moved to another zone; it stays on the system pool."""
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    for zone in (None, "us-east-1b"):
        if zone is not None:
            document["config"]["llm-stack:nodePools"]["a100"]["availabilityZones"] = [zone]
        mocks = run_program(parse_stack_yaml(document))
        selector = _cache_server(mocks)["nodeSelector"]
        assert selector[ZONE_KEY] == _gpu_zone(mocks, "a100") == (zone or "us-east-1a")
        assert selector["llmstack.io/node-pool"] == "system"
        mocks.resources.clear()
