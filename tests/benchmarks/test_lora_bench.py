"""`python -m benchmarks.lora --quick` runs every scenario and prints each figure with its verdict;
the placement beats round robin on loads and evictions, and a new adapter's first request is
served within the target."""

from __future__ import annotations

from benchmarks.lora.__main__ import SCENARIOS, main


def test_quick_benchmark_prints_every_figure(capsys) -> None:
    """Every scenario runs and prints; verdicts where there are targets."""
    checks = main(["--quick"])
    out = capsys.readouterr().out
    assert len(SCENARIOS) >= 2 and all(title in out for title, _ in SCENARIOS)
    assert all(c.name in out for c in checks) and ("PASS" in out or "FAIL" in out)
    by_name = {c.name.split(" (")[0]: c for c in checks}
    assert by_name["first request to a newly declared adapter, TTFT"].ok
    prefix = by_name["prefix: GPU-slot loads + evictions per 1,000 requests"].value
    baseline = by_name["round robin + load: GPU-slot loads + evictions per 1,000 requests"].value
    assert prefix * 5 < baseline
