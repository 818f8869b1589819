"""Resident load: each conversation's recent requests, counted where it lives and moving with
it; bounded loads over them; a bounded table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import engines

from router.routing.policies._residents import Residents

NO_DECAY = 10**18  # 1 + 1/horizon rounds to 1.0: counts are plain request counts


def test_a_conversation_brings_its_requests_along_when_it_moves() -> None:
    """Three requests on a, then one on b: b holds all four at once, a none."""
    pool, residents = engines(2), Residents(horizon=NO_DECAY)
    a, b = pool[0].id, pool[1].id
    residents.record(a, None, 1)
    residents.record(a, 1, 2)
    residents.record(a, 2, 3)
    assert residents.load(a) == pytest.approx(3) and residents.own(3) == pytest.approx(3)
    residents.record(b, 3, 4)
    assert residents.load(a) == pytest.approx(0) and residents.load(b) == pytest.approx(4)
    assert residents.home(4) == b and residents.home(3) is None


def test_counts_decay_per_request_routed() -> None:
    """With horizon 10, one request weighs about e^-1 of a new one after 10 more."""
    pool, residents = engines(2), Residents(horizon=10)
    residents.record(pool[0].id, None, 1)
    for tip in range(10):
        residents.record(pool[1].id, None, 100 + tip)
    assert residents.load(pool[0].id) == pytest.approx((1 + 1 / 10) ** -10)


def test_new_conversations_avoid_an_engine_above_the_bound_and_the_least_loaded_always_fits() -> None:
    """Loads 6, 3, 3, 0: a new conversation fits the engines within 1.25 x the mean (with it),
    only the idle one within 1.0 x; with equal loads every engine fits, even at 1.0 x."""
    pool, residents = engines(4), Residents(horizon=NO_DECAY)
    for tip, index in enumerate([0] * 6 + [1] * 3 + [2] * 3):
        residents.record(pool[index].id, None, tip)
    assert residents.fitting(pool, 1.25) == pool[1:]
    assert residents.fitting(pool, 1.0) == [pool[3]]
    for tip, index in enumerate([1] * 3 + [2] * 3 + [3] * 6, start=100):
        residents.record(pool[index].id, None, tip)
    assert residents.fitting(pool, 1.0) == pool


def test_relief_only_for_a_crowded_home_and_only_where_the_busiest_engine_gets_lighter() -> None:
    """Two conversations of 5 requests each on a, one of 1 on b, c idle: a (10 of 11) is
    crowded, and either conversation may go to b or c (each ends below a's 10); a lone heavy
    conversation is never crowded enough to move (it would carry its load along)."""
    pool, residents = engines(3), Residents(horizon=NO_DECAY)
    a = pool[0].id
    for conversation in (0, 100):
        for tip in range(conversation, conversation + 5):
            residents.record(a, tip - 1 if tip > conversation else None, tip)
    residents.record(pool[1].id, None, 50)
    assert residents.relief(4, pool, 1.5) == pool[1:]
    assert residents.relief(50, pool, 1.5) == []  # b is not crowded
    alone, lone = engines(2), Residents(horizon=NO_DECAY)
    for tip in range(8):
        lone.record(alone[0].id, tip - 1 if tip else None, tip)
    assert lone.relief(7, alone, 1.5) == []
    assert residents.relief(999, pool, 1.5) == []  # unknown
    assert residents.relief(4, pool, 1.5, floor=11) == []  # 10 requests: too few to call it crowded
    assert residents.relief(4, pool, 1.5, floor=10) == pool[1:]


def test_the_table_is_bounded_and_a_forgotten_conversation_takes_its_load_along() -> None:
    """At most max_conversations are kept; the oldest leaves with its count."""
    pool, residents = engines(1), Residents(horizon=NO_DECAY, max_conversations=3)
    for tip in range(5):
        residents.record(pool[0].id, None, tip)
    assert len(residents) == 3
    assert residents.load(pool[0].id) == pytest.approx(3)


def test_retain_forgets_gone_engines_and_their_conversations_rehome() -> None:
    """An engine that left has no load; its conversation's next request counts where it goes."""
    pool, residents = engines(2), Residents(horizon=NO_DECAY)
    residents.record(pool[0].id, None, 1)
    residents.retain([pool[1].id])
    assert residents.load(pool[0].id) == 0
    residents.record(pool[1].id, 1, 2)
    assert residents.load(pool[1].id) == pytest.approx(2) and residents.load(pool[0].id) == 0


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), min_size=1, max_size=200),
       horizon=st.integers(1, 50))
def test_loads_are_the_sums_of_their_residents(steps: list[tuple[int, int]], horizon: int) -> None:
    """Whatever the requests (7 conversations over 4 engines): every engine's load is the sum of
    its residents' counts, some engine always fits, and relief is what its definition says."""
    pool, residents = engines(4), Residents(horizon=horizon)
    tips: dict[int, int] = {}
    for n, (engine, conversation) in enumerate(steps):
        residents.record(pool[engine].id, tips.get(conversation), n)
        tips[conversation] = n
        assert residents.fitting(pool, 1.0)
        home = residents.load(pool[engine].id)
        crowded = home > 1.2 * sum(residents.load(e.id) for e in pool) / 4 * (1 + 1e-9)
        room = home - residents.own(n) - (1 + 1 / horizon)
        expected = [e for e in pool if residents.load(e.id) < room] if crowded else []
        assert residents.relief(n, pool, 1.2) == expected
    for e in pool:
        own = sum(residents.own(t) for t in tips.values() if residents.home(t) == e.id)
        assert residents.load(e.id) == pytest.approx(own, rel=1e-9, abs=1e-12)


def test_rescaling_keeps_every_count() -> None:
    """Past the weight's rescale point (horizon 1: the weight doubles per request) loads and
    counts stay finite and consistent: the last request weighs 1, the one before 1/2, ..."""
    pool, residents = engines(2), Residents(horizon=1)
    for n in range(1500):
        residents.record(pool[n % 2].id, n - 2 if n >= 2 else None, n)
    assert residents.own(1499) == pytest.approx(4 / 3)  # 1 + 1/4 + 1/16 + ... on engine 1
    assert residents.own(1498) == pytest.approx(2 / 3)  # 1/2 + 1/8 + ... on engine 0
    assert residents.load(pool[1].id) == pytest.approx(residents.own(1499))
    assert residents.load(pool[0].id) == pytest.approx(residents.own(1498))
