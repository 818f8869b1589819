"""`python -m benchmarks.kv_events --quick` end to end on loopback (emulated engines publishing KV
events on their own loopback addresses, router processes): one line per scenario and mode in the
documented format, every scenario carried traffic and lost none, the restart hit an engine
that was serving, the gate's per-request predictions add up to the router's counters, and the
events mode either ran with a verdict on every target or is reported as skipped."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

from benchmarks.kv_events.cluster import knows_scoring

SCENARIOS = ("accuracy", "restart", "capacity_2x", "cold_join", "drop_reorder", "router_cpu")
LINE = re.compile(r"^(\w+) (approximate|events) ((?:\S+ \S+ )*)target (\S+) (PASS|FAIL|-|n/a)$")


def _parse(stdout: str) -> tuple[dict[tuple[str, str], tuple[dict[str, str], str]], list[str]]:
    figures, skipped = {}, []
    for line in stdout.strip().splitlines():
        if line.startswith("SKIPPED "):
            skipped.append(line)
            continue
        match = LINE.match(line)
        assert match, f"not in the documented format: {line!r}"
        words = match.group(3).split()
        figures[(match.group(1), match.group(2))] = (dict(zip(words[::2], words[1::2], strict=True)),
                                                    match.group(5))
    return figures, skipped


@pytest.mark.timeout(150)
def test_quick_run_prints_every_scenario_per_mode_with_traffic_and_consistent_attribution(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.kv_events", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=140)
    assert done.returncode == 0, done.stderr[-3000:]
    figures, skipped = _parse(done.stdout)
    modes = ("approximate", "events") if knows_scoring() else ("approximate",)
    assert bool(skipped) != knows_scoring(), done.stdout
    assert set(figures) == {(s, m) for s in (*SCENARIOS, "memory") for m in modes}, done.stdout

    for mode in modes:
        restart, _ = figures[("restart", mode)]
        assert int(restart["requests"]) > 0 and int(restart["to_wiped"]) > 0 and restart["failed"] == "0"
        assert 0.0 <= float(restart["hit_rate"]) <= 1.0
        join, _ = figures[("cold_join", mode)]
        assert float(join["ready_s"]) > 0 and 0.0 < float(join["warm_hit_rate"]) <= 1.0
        assert float(join["warm_found"]) > 0.0 and float(join["cold_found"]) >= 0.0
        drop, _ = figures[("drop_reorder", mode)]
        assert drop["router_alive"] == "yes" and drop["failed"] == "0"
        capacity, _ = figures[("capacity_2x", mode)]
        assert 0.0 < float(capacity["hit_rate"]) <= 1.0 and capacity["failed"] == "0"
        accuracy, verdict = figures[("accuracy", mode)]
        assert float(accuracy["delivered"]) > 0
        if accuracy["predicted"] != "n/a":  # the router exports its predictions: the gate is exact
            assert accuracy["attributed"] == accuracy["predicted"], accuracy
        memory, _ = figures[("memory", mode)]
        assert not math.isnan(float(memory["router_estimate_mb"]))
    if "events" in modes:
        assert all(figures[(s, "events")][1] in ("PASS", "FAIL") for s in SCENARIOS if s != "router_cpu")

    rows = [json.loads(row) for row in (tmp_path / "work" / "records.jsonl").read_text().splitlines()]
    assert rows and all(r["status"] == 200 and r["engine"] for r in rows)  # each journaled by its engine
