"""The demo end to end at test size: real emulator process, real router process, real QA
benchmark; summary.json and the plot are written and prefix beats round_robin."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from local.demo.cli import run_demo


@pytest.mark.timeout(90)
def test_quick_demo_writes_summary_and_prefix_beats_round_robin(tmp_path: Path) -> None:
    """Every policy has its QPS point with TTFT/ITL/throughput/hit rate; prefix's mean TTFT is lower."""
    lines: list[str] = []
    doc = run_demo(str(tmp_path), quick=True, say=lines.append)
    on_disk = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert on_disk["policies"].keys() == doc["policies"].keys() == {"round_robin", "prefix"}
    for points in on_disk["policies"].values():
        assert len(points) == 1 and points[0]["requests"] > 0 and points[0]["errors"] == 0
        assert set(points[0]) >= {"qps", "ttft_s", "itl_s", "throughput", "cache_hit_rate"}
    rr = on_disk["policies"]["round_robin"][0]
    px = on_disk["policies"]["prefix"][0]
    assert px["ttft_s"]["mean"] < rr["ttft_s"]["mean"]
    assert px["cache_hit_rate"] > rr["cache_hit_rate"]
    assert (tmp_path / "ttft_vs_qps.png").stat().st_size > 10_000
    if shutil.which("prometheus"):  # make install provides it; the picture needs its data
        assert (tmp_path / "dashboard.png").stat().st_size > 50_000
        assert any(line.startswith("dashboard picture:") for line in lines)
    assert any(line.startswith("finding at") for line in lines)
