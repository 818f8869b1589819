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


def test_the_floor_is_beladys_optimum() -> None:
    """MIN evicts the adapter wanted furthest ahead, counting only from `start` on."""
    from benchmarks.lora.scenarios import belady
    # 2 slots: a b -> load 2; c evicts b (a is wanted sooner); a hit; b evicts a or c (neither again)
    assert belady(list("abcab"), 2, 0) == (4, 2)
    assert belady(list("abcab"), 2, 2) == (2, 2)
    assert belady(list("abab"), 2, 0) == (2, 0)
    assert belady(list("abcabc"), 3, 3) == (0, 0)
