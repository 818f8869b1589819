"""The router's per-model deadlines, derived from the model's expected prefill time."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from router.settings import RouterSettings
from stack_components.deadlines import engine_deadlines, prefill_s
from stack_components.drain import longest_request_s


def test_deadlines_grow_with_model_size_and_context_and_shrink_with_tensor_parallelism() -> None:
    small = engine_deadlines(params_billion=8.03, tensor_parallel_size=1, max_model_len=32_768)
    big = engine_deadlines(params_billion=70.6, tensor_parallel_size=4, max_model_len=65_536)
    assert (small.first_byte_s, small.inter_chunk_s) == (47, 19)
    assert (big.first_byte_s, big.inter_chunk_s) == (103, 47)
    assert small.whole_s == 47 + longest_request_s(32_768)
    assert prefill_s(params_billion=70.6, tensor_parallel_size=8, tokens=10_000) < \
        prefill_s(params_billion=70.6, tensor_parallel_size=4, tokens=10_000)


def test_every_rendered_stack_gives_the_router_deadlines_for_each_served_model() -> None:
    golden = Path(__file__).parents[1] / "golden"
    for env in ("dev", "staging", "prod"):
        [config] = (golden / env / "kubernetes").glob("*.configmap.llm-router-config.yaml")
        data = yaml.safe_load(config.read_text())["data"]["router.json"]
        settings = RouterSettings.from_dict(json.loads(data))
        # adapters (staging's) have their base model's; a rollout's stable name is rewritten to a
        # version before deadlines are looked up, so it needs none of its own
        served = {*settings.models, *settings.adapters}
        assert settings.models and set(settings.deadlines.models) == served, env
        assert all(v in served for weights in settings.rollouts.values() for v in weights), env
        for model in served:
            assert settings.deadlines.for_model(model) != settings.deadlines.default, (env, model)
