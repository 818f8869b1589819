"""summary.json entries, the seed's finding and the comparison table, from QA point stats."""

from __future__ import annotations

from local.demo.plan import DemoPlan, capacity
from local.demo.summary import build_summary, finding, finding_line, point_entry, table


def _stats(qps: float, ttft_mean: float, hit: float | None = 0.5) -> dict:
    dist = {"count": 10, "mean": ttft_mean, "p50": ttft_mean / 2, "p90": ttft_mean, "p99": ttft_mean * 3,
            "max": ttft_mean * 4}
    itl = {"count": 90, "mean": 0.01, "p50": 0.01, "p90": 0.02, "p99": 0.03, "max": 0.04}
    return {"qps": qps, "elapsed_s": 10.0, "launched": 10, "finished": 10, "errors": 0, "cancelled": 0,
            "ttft": dist, "itl": itl, "e2e": dist, "finished_rps": 1.0, "input_tps": 100.0,
            "output_tps": 10.0, "cache_hit_rate": hit}


def test_point_entry_has_every_reported_figure() -> None:
    """Each policy/QPS entry carries mean/p50/p99 TTFT and ITL, throughput and hit rate."""
    entry = point_entry(_stats(2.0, 0.4))
    assert set(entry["ttft_s"]) == set(entry["itl_s"]) == {"mean", "p50", "p99"}
    assert entry["ttft_s"] == {"mean": 0.4, "p50": 0.2, "p99": 0.4 * 3}
    assert entry["throughput"]["requests_per_s"] == 1.0
    assert entry["cache_hit_rate"] == 0.5


def test_point_entry_without_finished_requests_has_no_latencies() -> None:
    """A point where nothing finished reports None latencies, not zeros."""
    stats = {**_stats(2.0, 0.4), "ttft": None, "itl": None, "finished": 0}
    assert point_entry(stats)["ttft_s"] == {"mean": None, "p50": None, "p99": None}


def test_finding_compares_at_the_highest_common_qps() -> None:
    """The ratio is round_robin's mean TTFT over prefix's at the top QPS both ran."""
    policies = {"round_robin": [point_entry(_stats(1, 0.5)), point_entry(_stats(4, 1.2))],
                "prefix": [point_entry(_stats(1, 0.4)), point_entry(_stats(4, 0.3))]}
    found = finding(policies)
    assert found["qps"] == 4 and abs(found["ratio"] - 4.0) < 1e-9 and found["reproduced"]
    policies["prefix"][1] = point_entry(_stats(4, 0.6))
    assert finding(policies)["reproduced"] is False


def test_finding_is_absent_without_both_policies() -> None:
    """Without round_robin or prefix there is nothing to compare."""
    assert finding({"session": [point_entry(_stats(1, 0.1))]}) is None


def test_summary_table_and_line() -> None:
    """The document holds plan, capacity, per-policy points and the finding; the table has a row each."""
    plan = DemoPlan()
    stats = {"round_robin": [_stats(6.0, 0.8)], "session": [_stats(6.0, 0.2)], "prefix": [_stats(6.0, 0.1)]}
    doc = build_summary(plan, capacity(plan), stats, elapsed_s=100.0, prometheus=None)
    assert set(doc) == {"plan", "capacity_tokens_per_engine", "policies", "cache_hit_rate_is", "finding",
                        "elapsed_s", "prometheus"}
    assert list(doc["policies"]) == ["round_robin", "session", "prefix"]
    rows = table(doc).splitlines()
    assert len(rows) == 2 + 3 and rows[2].startswith("| round_robin | 6 | 800 |")
    assert "8.0x lower" in finding_line(doc) and "reproduced" in finding_line(doc)
