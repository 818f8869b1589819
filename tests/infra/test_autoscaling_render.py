"""Autoscaling as rendered per environment: KEDA pinned, one ScaledObject per model, the router
HPA in prod, dev scaling to zero, and limits consistent with the node pools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra.autoscaling import autoscaling_extension, engine_policy, estimated_load_time_s, pool_limits
from infra.config import parse_stack_config
from infra.config.catalog import INSTANCES
from infra.serving import engine_args
from policies.autoscaling.keda import KEDA_CHART, KEDA_CHART_VERSION, KEDA_RELEASE, KEDA_REPO
from tests.infra.conftest import stack_raw

HELM = "kubernetes:helm.sh/v3:Release"


def _kinds(root: Path, kind: str) -> list[dict]:
    docs = [yaml.safe_load(p.read_text()) for p in sorted((root / "kubernetes").glob("*.yaml"))]
    return [d for d in docs if d["kind"] == kind]


def _gpus(deployment: dict) -> int:
    limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    return int(limits.get("nvidia.com/gpu", 0))


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_one_scaled_object_per_model_within_the_pools(rendered, stack):
    """Each model gets a ScaledObject on its Deployment; per pool, Σ maxReplicaCount × GPUs per
    engine fits the pool's maxSize × GPUs per node (the node autoscaler's limit)."""
    config = parse_stack_config(stack_raw(stack))
    root = rendered[stack]
    deployments = {d["metadata"]["name"]: d for d in _kinds(root, "Deployment")}
    scaled = _kinds(root, "ScaledObject")
    assert len(scaled) == len(config.models)
    used: dict[str, int] = {}
    for obj in scaled:
        target = deployments[obj["spec"]["scaleTargetRef"]["name"]]
        key = next(k for k in config.models if obj["metadata"]["name"].endswith(k))
        model = config.models[key]
        assert (obj["spec"]["minReplicaCount"], obj["spec"]["maxReplicaCount"]) == (
            model.min_replicas, model.max_replicas)
        assert _gpus(target) == model.tensor_parallel_size
        used[model.node_pool] = used.get(model.node_pool, 0) + obj["spec"]["maxReplicaCount"] * _gpus(target)
    for pool, gpus in used.items():
        spec = config.node_pools[pool]
        assert gpus <= spec.max_size * INSTANCES[spec.instance_type].gpus


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_keda_release_is_pinned(rendered, stack):
    """KEDA is a Helm release of the pinned chart from its repo, on the system pool, under a fixed
    release name (issue 23 item 17: without `name`, Pulumi autonames it with a random suffix)."""
    records = json.loads((rendered[stack] / "resources.json").read_text())
    keda = [r["inputs"] for r in records if r["type"] == HELM and r["inputs"]["chart"] == KEDA_CHART]
    assert len(keda) == 1
    assert keda[0]["version"] == KEDA_CHART_VERSION and keda[0]["repositoryOpts"]["repo"] == KEDA_REPO
    assert keda[0]["values"]["nodeSelector"] == {"llmstack.io/node-pool": "system"}
    assert keda[0]["name"] == KEDA_RELEASE == "keda"


def test_prod_has_the_router_hpa_and_a_ttft_objective(rendered):
    """prod: the router scales on CPU (3..8 pods); llama70b on its TTFT p90, windows from 600 s load."""
    hpas = _kinds(rendered["prod"], "HorizontalPodAutoscaler")
    assert len(hpas) == 1
    spec = hpas[0]["spec"]
    assert spec["scaleTargetRef"]["name"] == "llm-router"
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 8)
    assert spec["metrics"][0]["resource"]["name"] == "cpu"
    big = next(o for o in _kinds(rendered["prod"], "ScaledObject") if o["metadata"]["name"] == "llm-llama70b")
    trigger = big["spec"]["triggers"][0]
    assert trigger["metricType"] == "Value" and "histogram_quantile(0.9" in trigger["metadata"]["query"]
    assert big["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
        "stabilizationWindowSeconds"] == 1200


def test_dev_scales_its_engine_to_zero(rendered):
    """dev: minReplicaCount 0, a held-requests trigger that wakes the engine on the first
    request a router holds, and a router-demand trigger that keeps it awake; the new ScaledObject
    stays up for a load time plus its 15-minute idle window before its first scale to zero, so
    the post-deploy benchmark does not race the scaler."""
    (obj,) = _kinds(rendered["dev"], "ScaledObject")
    assert obj["spec"]["minReplicaCount"] == 0
    load = estimated_load_time_s(parse_stack_config(stack_raw("dev")).models["llama3b"])
    assert obj["spec"]["cooldownPeriod"] == 900
    assert obj["spec"]["initialCooldownPeriod"] == 900 + load
    names = [t["name"] for t in obj["spec"]["triggers"]]
    assert names == ["queue", "held", "demand"]
    held, demand = (obj["spec"]["triggers"][i]["metadata"] for i in (1, 2))
    assert held["query"].startswith("sum(llmstack_router_held_requests{model=")
    assert held["activationThreshold"] == "0"
    assert "llmstack_router_requests_total" in demand["query"] and demand["activationThreshold"] == "0"


def test_mapping_defaults_and_disabled():
    """Unlisted models scale on queue depth at targetWaitingPerEngine with an estimated load
    time; autoscaling off means no extension."""
    raw = stack_raw("staging")
    config = parse_stack_config(raw)
    policy = engine_policy(config, "llama8b")
    assert policy.metric == "queue" and policy.target == config.autoscaling.target_waiting_per_engine
    assert policy.load_time_s == estimated_load_time_s(config.models["llama8b"]) > 60
    assert engine_args(config, "llama8b", config.models["llama8b"]).replicas_managed_externally
    raw["autoscaling"]["enabled"] = False
    assert autoscaling_extension(parse_stack_config(raw)) is None


def test_pool_limits_show_the_node_cap_and_what_the_models_need():
    """prod's A100 pool: 6 nodes give 48 GPUs, exactly what 24 × 1 + 6 × 4 engines need."""
    limits = pool_limits(parse_stack_config(stack_raw("prod")))
    assert limits == {"a100": {"maxNodes": 6, "gpusAtMaxNodes": 48, "gpusAtMaxReplicas": 48}}


def test_router_replicas_left_to_its_hpa(run_program):
    """With a router HPA (prod), the stack's transformation makes Pulumi ignore the router
    Deployment's replicas, and only that Deployment's."""
    from infra import autoscaling
    from infra.stackfile import read_stack_file
    from tests.infra.conftest import ROOT

    seen: dict[str, bool] = {}
    original = autoscaling.ignore_router_replicas

    def spy(args):
        result = original(args)
        if args.type_ == "kubernetes:apps/v1:Deployment":
            seen[args.name] = result is not None and "spec.replicas" in (result.opts.ignore_changes or [])
        return result

    autoscaling.ignore_router_replicas = spy
    try:
        assert autoscaling.stack_transformations(parse_stack_config(stack_raw("prod")))[0] is spy
        run_program(read_stack_file(ROOT, "prod"))
    finally:
        autoscaling.ignore_router_replicas = original
    assert seen.pop("llm-router-deployment") is True
    assert len(seen) >= 2 and not any(seen.values()), seen
    assert autoscaling.stack_transformations(parse_stack_config(stack_raw("dev"))) == []
