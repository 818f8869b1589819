"""The offline replay of the hot-prefix workload: deterministic, every request placed once."""

from __future__ import annotations

from benchmarks.hot_prefix import HotPrefixPlan
from benchmarks.hot_prefix_replay import replay, spread
from router.routing.policies.prefix import PrefixPolicy
from router.routing.policies.session import SessionPolicy


def test_a_replay_is_deterministic_and_places_every_request_once() -> None:
    """Two replays of one seed agree; the heavy users' 5x rate shows in the request count;
    session never moves a user (no load on these engines reaches its bound)."""
    plan = HotPrefixPlan(duration_s=20.0, seed=3)
    counts, moved = replay(plan, PrefixPolicy())
    assert (counts, moved) == replay(plan, PrefixPolicy())
    assert sum(counts) > plan.users and len(counts) == plan.engines
    session_counts, session_moved = replay(plan, SessionPolicy())
    assert sum(session_counts) == sum(counts) and session_moved == 0


def test_spread_is_max_over_mean() -> None:
    """[3, 1] -> 1.5."""
    assert spread([3, 1]) == 1.5
