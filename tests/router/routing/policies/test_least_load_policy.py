"""`least_load`: fewest in-flight plus waiting, ties to the smallest id, monotone in load."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import engines, request

from contracts import OUTCOME_NEW
from router.routing.base import NoEngineError
from router.routing.policies.least_load import LeastLoadPolicy


def test_picks_the_engine_with_least_in_flight_plus_waiting() -> None:
    """In-flight and engine-reported waiting add up; the smallest sum wins."""
    pool = engines(3)
    pool[0].in_flight, pool[1].waiting, pool[2].in_flight, pool[2].waiting = 2, 3, 1, 0
    decision = LeastLoadPolicy().select(request(b"p"), pool)
    assert decision.engine is pool[2]
    assert decision.outcome == OUTCOME_NEW


def test_ties_go_to_the_smallest_id_whatever_the_order() -> None:
    """Equal loads choose the same engine in any candidate order."""
    pool = engines(4)
    assert LeastLoadPolicy().select(request(b"p"), pool[::-1]).engine is pool[0]
    assert LeastLoadPolicy().select(request(b"p"), pool[2:]).engine is pool[2]


loads = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(load=loads, bump=st.integers(1, 10), victim=st.integers(0, 7))
def test_choice_is_monotone_in_load(load: list[tuple[int, int]], bump: int, victim: int) -> None:
    """Loading another engine never moves the choice; unloading the chosen one never moves it."""
    pool = engines(len(load))
    for state, (in_flight, waiting) in zip(pool, load, strict=True):
        state.in_flight, state.waiting = in_flight, waiting
    policy = LeastLoadPolicy()
    chosen = policy.select(request(b"p"), pool).engine
    other = pool[victim % len(pool)]
    if other is not chosen:
        other.waiting += bump
        assert policy.select(request(b"p"), pool).engine is chosen
    chosen.in_flight = max(chosen.in_flight - bump, 0)
    assert policy.select(request(b"p"), pool).engine is chosen


def test_no_engine_raises() -> None:
    """An empty candidate list raises NoEngineError."""
    with pytest.raises(NoEngineError):
        LeastLoadPolicy().select(request(b"p"), [])
