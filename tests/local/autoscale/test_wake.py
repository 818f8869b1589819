"""Dev-style scale from zero, end to end on loopback: with no engine the router is ready and
lists the model, holds the first request, the local scaler wakes the model on the held-request
metric (through a real Prometheus), the engine loads and the held request is answered; then
back to zero after the cooldown. Plus the verdict's arithmetic."""

from __future__ import annotations

import shutil

import pytest

from bench.client import StreamResult
from local.autoscale.cli import run_from_zero
from local.autoscale.plan import MODEL
from local.autoscale.summary import Change
from local.autoscale.wake import FIXED_LAGS_S, WakePlan, verdict


def _result(status: int, ttft: float | None) -> StreamResult:
    result = StreamResult(launch=10.0, status=status)
    if ttft is not None:
        result.token_times, result.done = [10.0 + ttft], 10.0 + ttft + 0.1
    return result


def test_verdict_needs_readiness_the_model_an_answer_in_bound_and_zero_at_the_end():
    """OK only when every condition holds; the bound is load + one poll + the fixed lags."""
    plan = WakePlan()
    assert plan.first_answer_bound_s == pytest.approx(73 * 0.05 + 15 * 0.05 + FIXED_LAGS_S)
    good = dict(ready_at_zero=True, models=[MODEL], first=_result(200, 4.0), later=[200],
                changes=[Change(0.75, 0, 1), Change(19.0, 1, 0)], final_replicas=0)
    assert verdict(plan, **good)["ok"]
    for change in [dict(ready_at_zero=False), dict(models=[]), dict(first=_result(503, None)),
                   dict(first=_result(200, plan.first_answer_bound_s + 0.1)), dict(later=[200, 429]),
                   dict(final_replicas=1)]:
        assert not verdict(plan, **{**good, **change})["ok"], change


@pytest.mark.timeout(120)
def test_scale_from_zero_answers_the_first_request(tmp_path):
    """0 → 1 on the held request, the first request answered 200 within the bound, 1 → 0 after."""
    assert shutil.which("prometheus"), "the prometheus binary is missing: run `make install`"
    doc = run_from_zero(str(tmp_path), quick=True, say=lambda _: None)
    assert doc["ready_with_zero_engines"] and doc["models_listed"] == [MODEL]
    assert doc["first_status"] == 200 and doc["first_ttft_s"] <= doc["first_answer_bound_s"], doc
    assert doc["first_ttft_s"] >= doc["engine_load_delay_s"], doc  # it really waited for the engine
    assert [(c["before"], c["after"]) for c in doc["changes"]] == [(0, 1), (1, 0)], doc["changes"]
    assert doc["later_statuses"] == [200, 200] and doc["final_replicas"] == 0 and doc["ok"]
    assert (tmp_path / "from-zero.json").exists()
