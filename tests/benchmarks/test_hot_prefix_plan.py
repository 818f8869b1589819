"""The hot-prefix scenario's pure parts: the balanced per-user assignment and the plan."""

from __future__ import annotations

import pytest

from benchmarks.hot_prefix import HotPrefixPlan, balanced_assignment, percentile
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
