"""The hot-prefix scenario's pure parts: the balanced per-user assignment, the plan, the summary."""

from __future__ import annotations

import pytest

from benchmarks.hot_prefix import HotPrefixPlan, balanced_assignment, percentile, summarize
from local.procs import BenchError


def test_balanced_assignment_spreads_heavy_users_first() -> None:
    """3 heavy users (5x) and 13 light ones over 4 engines: the heavy ones on distinct engines,
    per-engine rates within one light user of each other."""
    plan = HotPrefixPlan()
    rates = [plan.rate(u) for u in range(plan.users)]
    assign = balanced_assignment(rates, plan.engines)
    assert len({assign[u] for u in range(plan.heavy_users)}) == plan.heavy_users
    loads = [sum(r for r, e in zip(rates, assign, strict=True) if e == engine) for engine in range(4)]
    assert max(loads) - min(loads) <= plan.light_rate + 1e-9


def test_plan_refuses_no_light_users_and_percentile_is_nearest_rank() -> None:
    """Every user heavy is refused; p99 of 1..100 is 100, p50 is 51."""
    with pytest.raises(BenchError, match="heavy_users"):
        HotPrefixPlan(users=3, heavy_users=3)
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.99) == 100.0 and percentile(values, 0.5) == 51.0


def test_summary_counts_warm_requests_that_changed_engine_and_the_spread() -> None:
    """User 0 moves at round 2, user 1 never: one move; counts [3, 1] give max/mean 1.5; the
    first round is not warm."""
    ttfts = [(0, 0, 0.5), (0, 1, 0.01), (0, 2, 0.03), (1, 0, 0.4), (1, 1, 0.02)]
    served = {"u0-r0": (0, 6000), "u0-r1": (0, 60), "u0-r2": (1, 300), "u1-r0": (0, 200), "u1-r1": (0, 60)}
    row = summarize("prefix", ttfts, [3, 1], served)
    assert (row["requests"], row["warm"], row["moved"]) == (5, 3, 1)
    assert row["spread_max_over_mean"] == 1.5 and row["warm_ttft_p99_ms"] == 30.0
    assert row["per_request"][2] == {"user": 0, "turn": 2, "ttft_ms": 30.0, "engine": 1,
                                     "uncached_tokens": 300}
