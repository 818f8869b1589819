"""The post-deploy benchmark gate: the summary table and the bounds a deploy must meet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.gate import GateConfigError, bounds_from_mapping, markdown_table, violations

ROOT = Path(__file__).resolve().parents[2]


def _dist(p50: float, p99: float) -> dict[str, float]:
    return {"count": 10, "mean": p50, "p50": p50, "p90": p99, "p99": p99, "max": p99}


def _summary(ttft_p99=0.8, itl_p99=0.02, hit=0.7, errors=0, interrupted=False) -> dict:
    point = {
        "qps": 2.1,
        "elapsed_s": 60,
        "launched": 200,
        "finished": 200 - errors,
        "errors": errors,
        "cancelled": 0,
        "ttft": _dist(0.1, ttft_p99),
        "itl": _dist(0.01, itl_p99),
        "e2e": _dist(1, 2),
        "finished_rps": 2.0,
        "input_tps": 40000,
        "output_tps": 200,
        "cache_hit_rate": hit,
    }
    return {
        "label": "post-deploy",
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "interrupted": interrupted,
        "points": [point | {"qps": 0.5}, point],
    }


def test_table_shows_percentiles_in_ms_throughput_and_hit_rate():
    """One row per QPS point, latencies in ms, hit rate in percent."""
    table = markdown_table(_summary())
    assert "| 2.1 | 100 | 800 | 800 | 10.0 | 20.0 | 200 | 2.00 | 70% | 0/200 |" in table
    assert table.count("\n| ") == 3  # header + two points


@pytest.mark.parametrize(
    ("summary", "needle"),
    [
        (_summary(ttft_p99=6.0), "TTFT p99 6000 ms at QPS 2.1 exceeds 5000 ms"),
        (_summary(itl_p99=0.2), "ITL p99 200.0 ms at QPS 2.1 exceeds 100 ms"),
        (_summary(hit=0.2), "cache hit rate 0.2 at QPS 2.1 is below 0.5"),
        (_summary(errors=5), "error rate 0.025 at QPS 2.1 exceeds 0.005"),
        (_summary(interrupted=True), "the benchmark was interrupted"),
    ],
)
def test_prod_bounds_reject_a_regression(summary, needle):
    """prod's bounds (checked at QPS 2.1 only) catch each kind of regression."""
    bounds = bounds_from_mapping(
        {"qps": 2.1, "ttftP99MsMax": 5000, "itlP99MsMax": 100, "cacheHitRateMin": 0.5, "errorRateMax": 0.005}
    )
    assert violations(_summary(), bounds) == []
    assert any(needle in v for v in violations(summary, bounds))


def test_bad_bounds_name_the_key():
    """An unknown or non-numeric bound fails with its key and value."""
    with pytest.raises(GateConfigError, match=r"ttftP99 is not a known key.*\(got 1\)"):
        bounds_from_mapping({"ttftP99": 1})
    with pytest.raises(GateConfigError, match=r"errorRateMax must be a number >= 0 \(got 'low'\)"):
        bounds_from_mapping({"errorRateMax": "low"})
    assert violations({"points": []}, bounds_from_mapping({"qps": 9})) == ["no benchmark point at QPS 9"]


def test_bench_gate_command_uses_the_stack_file_bounds(tmp_path):
    """`llm-stack bench-gate` appends the table to a summary file and exits 1 past prod's bounds."""
    cmd = [
        sys.executable,
        "-c",
        "from cli import main; main()",
        "bench-gate",
        str(tmp_path / "summary.json"),
        "--stack",
        "prod",
        "--project-dir",
        str(ROOT),
        "--markdown-out",
        str(tmp_path / "step-summary.md"),
    ]
    (tmp_path / "summary.json").write_text(json.dumps(_summary()))
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "Benchmark gate: passed" in ok.stdout, ok.stderr
    (tmp_path / "summary.json").write_text(json.dumps(_summary(ttft_p99=9.0)))
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "TTFT p99 9000 ms at QPS 2.1 exceeds 5000 ms" in bad.stdout
    assert (tmp_path / "step-summary.md").read_text().count("#### Benchmark") == 2
