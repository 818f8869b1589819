"""`python -m benchmarks.chaos --quick` end to end on loopback (engines, two routers, Prometheus,
the local scaler): the output has the issue's format, the TOTAL adds the scenarios up, the
computed twins survive a replay, and every failure or truncation counted is one the run
recorded with its reason (and vice versa)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest

from benchmarks.chaos.plan import ORDER

NUM = r"(\d+)"
LINE = re.compile(rf"^(\w+) requests {NUM} failed {NUM} truncated {NUM} migrated {NUM} "
                  r"p99_ttft_s (\d+\.\d{3}|nan) twin_mismatch (\d+)((?: \S+ \S+)*)$")


def _fields(line: str) -> tuple[str, list[int], dict[str, str]]:
    match = LINE.match(line)
    assert match, f"not in the issue's format: {line!r}"
    extras = match.group(8).split()
    counts = [int(match.group(i)) for i in (2, 3, 4, 5, 7)]
    return match.group(1), counts, dict(zip(extras[::2], extras[1::2], strict=True))


@pytest.mark.timeout(240)
def test_quick_run_prints_one_line_per_scenario_a_total_and_a_twin_check(tmp_path):
    assert shutil.which("prometheus"), "the prometheus binary is missing: run `make install`"
    done = subprocess.run([sys.executable, "-m", "benchmarks.chaos", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == len(ORDER) + 2, done.stdout
    parsed = [_fields(line) for line in lines[:-1]]
    assert [name for name, _, _ in parsed] == [*ORDER, "TOTAL"]
    scenario_counts = [counts for _, counts, _ in parsed[:-1]]
    assert all(counts[0] > 0 for counts in scenario_counts), done.stdout  # load through every scenario
    assert parsed[-1][1] == [sum(col) for col in zip(*scenario_counts, strict=True)]
    replay = re.fullmatch(r"TWIN_CHECK replayed (\d+) identical (\d+)", lines[-1])
    assert replay and int(replay.group(1)) >= 1 and replay.group(1) == replay.group(2), lines[-1]

    zero = parsed[0][2]
    assert zero["woke_at_s"] != "never" and zero["within_bound"] in ("yes", "no")
    assert float(zero["first_ttft_s"]) >= float(zero["load_s"])  # nobody is answered before an engine loads
    assert parsed[1][2]["engine_exits"] == "0,0" and parsed[3][2]["router_exits"] == "0,0"  # drained, exit 0

    recorded = [json.loads(row) for row in (tmp_path / "work" / "requests.jsonl").read_text().splitlines()]
    for outcome, column in (("failed", 1), ("truncated", 2)):
        seen = Counter(r["scenario"] for r in recorded if r["outcome"] == outcome)
        assert {name: counts[column] for (name, counts, _) in parsed[:-1] if counts[column]} == dict(seen)
    assert all(r["reason"] for r in recorded if r["outcome"] != "ok")
