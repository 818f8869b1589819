"""The closed loop, short: under a load ramp the local scaler (rendered trigger query on a real
Prometheus, the pure HPA arithmetic) adds emulated engines, which the router discovers from
the targets file, and removes them after the ramp, without flapping."""

from __future__ import annotations

import shutil

import pytest

from local.autoscale.cli import run_autoscale
from local.autoscale.plan import AutoscalePlan
from local.autoscale.summary import Change, flaps, percentile


def test_flaps_count_reversals_beyond_one():
    """Up then down is no flap; up, down, up is one."""
    up, down = Change(1, 1, 2), Change(5, 2, 1)
    assert flaps([up, Change(2, 2, 4), down]) == 0
    assert flaps([up, down, Change(9, 1, 2)]) == 1
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0 and percentile([], 0.9) is None


def test_plan_ramps_up_and_back():
    """The quick plan's load starts and ends at the base rate and peaks above one engine's capacity."""
    plan = AutoscalePlan.quick()
    base, peak = plan.offered_rps(0), plan.offered_rps(plan.step_at_s + plan.phases_s[1] + 1)
    assert base < plan.engine_rps < peak and plan.offered_rps(plan.duration_s - 1) == pytest.approx(base)


@pytest.mark.timeout(300)
def test_closed_loop_scales_up_under_the_ramp_and_back_down(tmp_path):
    """Engines are added under the ramp and removed after it; no flaps; every trigger query
    (queue, kvCache, queueTime, router demand) returned data from the real Prometheus."""
    assert shutil.which("prometheus"), "the prometheus binary is missing: run `make install`"
    doc = run_autoscale(str(tmp_path), quick=True, say=lambda _: None)
    plan = AutoscalePlan.quick()
    assert doc["max_replicas"] > plan.min_engines, doc["changes"]
    assert doc["scale_up_delay_s"] is not None and doc["scale_up_delay_s"] < plan.phases_s[2]
    assert doc["scale_downs"] >= 1 and doc["final_replicas"] == plan.min_engines, doc["changes"]
    assert doc["flaps"] == 0, doc["changes"]
    assert doc["errors"] == 0 and doc["requests"] > 50
    assert set(doc["trigger_queries_max"]) == {"queue", "kvCache", "queueTime", "demand"}
    assert all(v > 0 for v in doc["trigger_queries_max"].values()), doc["trigger_queries_max"]
    assert (tmp_path / "autoscale.png").stat().st_size > 10_000
