"""The benchmark plan's validation, and the table and target verdicts from synthetic results."""

from __future__ import annotations

import pytest

from benchmarks.router_bench import report
from benchmarks.router_bench.plan import LATENCY, PLAIN, STREAM, Plan, Scenario, checkpoints
from benchmarks.router_bench.run import DIRECT, Measurement, MemoryPoint, Results
from benchmarks.router_bench.stats import summarize
from local.procs import BenchError


def test_plan_rejects_missing_scenarios_and_bad_checkpoints() -> None:
    """A plan without the three measured scenarios, or with unordered checkpoints, is refused."""
    with pytest.raises(BenchError, match="scenarios"):
        Plan(scenarios=(Scenario(name=LATENCY, n=10, c=1),))
    with pytest.raises(BenchError, match="memory_checkpoints"):
        Plan(memory_checkpoints=(10, 5))
    with pytest.raises(BenchError, match="c"):
        Scenario(name="x", n=4, c=8)


def test_checkpoints_at_one_and_ten_percent() -> None:
    """1M prompts are measured at 10k, 100k and 1M."""
    assert checkpoints(1_000_000) == (10_000, 100_000, 1_000_000)
    assert checkpoints(5) == (1, 5)


def _m(target: str, scenario: str, *, cpu_s: float, ok: int, p50_s: float, wall_s: float = 1.0,
       placements: dict | None = None) -> Measurement:
    load = summarize(latencies=[p50_s] * ok, ttfbs=[p50_s] * ok, events=0, errors=0, wall_s=wall_s)
    return Measurement(target=target, scenario=scenario, repeat=0, load=load, router_cpu_s=cpu_s,
                       engine_cpu_s=0.0, placements=placements or {})


def _results(w2_rps_factor: float) -> Results:
    same = {"e1": {"a": 5}, "e2": {"b": 5}}
    ms = [_m(DIRECT, LATENCY, cpu_s=0, ok=100, p50_s=0.0001), _m(DIRECT, PLAIN, cpu_s=0, ok=100, p50_s=0.001),
          _m(DIRECT, STREAM, cpu_s=0, ok=10, p50_s=0.1)]
    for target, rps_factor in ((report.OURS, 1.0), (report.OURS_W2, w2_rps_factor), (report.PEER, 1.0)):
        cpu = 0.006 if target != report.PEER else 0.005
        ms += [_m(target, LATENCY, cpu_s=cpu, ok=100, p50_s=0.0003, placements=same),
               _m(target, PLAIN, cpu_s=cpu * 10, ok=1000, p50_s=0.002, wall_s=1 / rps_factor,
                  placements=same),
               _m(target, STREAM, cpu_s=0.0124, ok=10, p50_s=0.1)]
    memory = [MemoryPoint(target=report.OURS, prompts=1000, rss_bytes=80 << 20, errors=0)]
    return Results(measurements=ms, memory=memory)


def test_targets_judged_from_the_figures() -> None:
    """60 vs 50 us = 1.2x; (1240 - 60) / 64 = 18.4 us per token vs the peer's (1240 - 50) / 64 = 18.6;
    0.3 - 0.1 = 0.2 ms added; w2 2x; 80 MB."""
    found = report.targets(_results(2.0), Plan())
    measured = [t.measured for t in found]
    assert [t.met for t in found] == [True, True, True, True, True]
    assert measured[0] == "60 us vs 50 us = 1.20x"
    assert measured[1] == "18.4 us vs 18.6 us" and measured[2] == "0.200 ms"
    assert measured[3].startswith("2000 vs 1000 req/s = 2.00x")
    assert measured[4].startswith("80 MB after 1,000")


def test_scaling_target_missed_below_1_8x() -> None:
    """Two workers at 1.5x one worker's throughput miss the target."""
    scaling = next(t for t in report.targets(_results(1.5), Plan()) if t.claim.startswith("--workers"))
    assert scaling.met is False and "1.50x" in scaling.measured
    assert "2/2 conversations at c=1" in scaling.measured


def test_table_has_one_row_per_target() -> None:
    """direct, ours w1, ours w2 and the peer each get a row; direct shows no router figures."""
    lines = report.table(_results(2.0), Plan()).splitlines()
    assert len(lines) == 2 + 4
    assert lines[2].startswith(f"| {DIRECT} | - | - | - |")


def test_a_memory_checkpoint_gets_time_in_proportion_to_its_prompts() -> None:
    """A 900k-prompt checkpoint is not cut off at the 900 s floor (the 1M run on a busy box)."""
    from benchmarks.router_bench.plan import Plan

    plan = Plan()
    assert plan.memory_timeout_for(1_000) == plan.memory_timeout_s
    assert plan.memory_timeout_for(900_000) == 900_000 / plan.memory_min_rate > plan.memory_timeout_s
