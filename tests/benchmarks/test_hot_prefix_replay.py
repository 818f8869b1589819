"""The offline replay of the hot-prefix workload: deterministic, every request placed once."""

from __future__ import annotations

import pytest

from benchmarks.hot_prefix import HotPrefixPlan
from benchmarks.hot_prefix_replay import main, replay, spread
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


def test_the_table_counts_seeds_by_spread_and_by_moves(capsys: pytest.CaptureFixture[str]) -> None:
    """One row per policy: seeds, spread within 1.3, mean / worst, moves, seeds over the
    p99's move budget, seeds meeting both; session never moves, so its two move columns are 0."""
    assert main(["--seeds", "2", "--duration", "10", "--policies", "prefix,session"]) == 0
    rows = [line.strip("|").split(" | ") for line in capsys.readouterr().out.splitlines()[2:]]
    assert [row[0].strip() for row in rows] == ["prefix", "session"]
    assert all(len(row) == 7 and row[1] == "2" for row in rows)
    assert rows[1][4:6] == ["0", "0"]
