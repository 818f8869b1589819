"""`session`: consistent hashing with bounded loads on the session key."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import engines, request

from contracts import OUTCOME_CACHE_HIT, OUTCOME_LOAD_FALLBACK, OUTCOME_NEW
from router.routing.policies.session import SessionConfig, SessionPolicy

KEYS = [f"user-{i}" for i in range(800)]


def homes(policy: SessionPolicy, pool: list) -> dict[str, str]:
    return {key: policy.select(request(b"p", key), pool).engine.id for key in KEYS}


def test_a_key_always_lands_on_the_same_engine_and_counts_as_a_hit() -> None:
    """Idle engines: the same key maps to the same engine every time, outcome cache_hit."""
    pool, policy = engines(4), SessionPolicy()
    decisions = [policy.select(request(b"p", "alice"), pool) for _ in range(5)]
    assert len({d.engine.id for d in decisions}) == 1
    assert {d.outcome for d in decisions} == {OUTCOME_CACHE_HIT}


def test_two_instances_agree_on_every_key() -> None:
    """Placement depends only on the key and the engines: two router workers agree."""
    pool = engines(6)
    assert homes(SessionPolicy(), pool) == homes(SessionPolicy(), list(reversed(pool)))


def test_keys_spread_evenly() -> None:
    """800 keys over 8 engines: no engine gets more than 1.4x its fair share."""
    counts = Counter(homes(SessionPolicy(), engines(8)).values())
    assert len(counts) == 8
    assert max(counts.values()) <= 1.4 * len(KEYS) / 8


def test_an_engine_leaving_moves_only_its_own_keys() -> None:
    """Minimal remapping: keys homed elsewhere keep their engine; the leaver's keys move."""
    pool = engines(6)
    before = homes(SessionPolicy(), pool)
    gone = pool[2].id
    after = homes(SessionPolicy(), [e for e in pool if e.id != gone])
    moved = [key for key in KEYS if before[key] != after[key]]
    assert moved
    assert all(before[key] == gone for key in moved)
    assert all(after[key] != gone for key in KEYS)


def test_an_engine_joining_takes_keys_only_for_itself() -> None:
    """A new engine steals some keys; every other key stays where it was."""
    pool = engines(5)
    before = homes(SessionPolicy(), pool[:4])
    after = homes(SessionPolicy(), pool)
    moved = [key for key in KEYS if before[key] != after[key]]
    assert moved
    assert all(after[key] == pool[4].id for key in moved)


def test_an_overloaded_home_is_skipped_for_the_next_engine_on_the_ring() -> None:
    """When the home is above the bounded-load limit the key goes elsewhere: load_fallback."""
    pool, policy = engines(4), SessionPolicy(SessionConfig(load_factor=1.25, load_floor=1))
    home = policy.select(request(b"p", "bob"), pool).engine
    home.in_flight = 20
    decision = policy.select(request(b"p", "bob"), pool)
    assert decision.engine is not home
    assert decision.outcome == OUTCOME_LOAD_FALLBACK
    home.in_flight = 0
    assert policy.select(request(b"p", "bob"), pool).engine is home


@settings(max_examples=25, deadline=None)
@given(factor=st.sampled_from([1.1, 1.25, 2.0]), users=st.integers(50, 300))
def test_bounded_load_caps_every_engine(factor: float, users: int) -> None:
    """With every request kept in flight, no engine exceeds factor x the average (+1)."""
    pool = engines(5)
    policy = SessionPolicy(SessionConfig(load_factor=factor, load_floor=0, virtual_nodes=40))
    for i in range(users):
        policy.select(request(b"p", f"k{i % 37}"), pool).engine.in_flight += 1
    assert max(e.in_flight for e in pool) <= factor * users / len(pool) + 1


def test_without_a_key_the_least_loaded_engine_is_used() -> None:
    """No session key: least_load's choice, outcome new."""
    pool = engines(3)
    pool[0].in_flight, pool[1].in_flight = 3, 1
    for key in (None, ""):
        decision = SessionPolicy().select(request(b"p", key), pool)
        assert decision.engine is pool[2]
        assert decision.outcome == OUTCOME_NEW


def test_engines_changed_keeps_placement() -> None:
    """Dropping the cached rings changes nothing about where keys go."""
    pool, policy = engines(4), SessionPolicy()
    before = homes(policy, pool)
    policy.on_engines_changed([e.id for e in pool])
    assert homes(policy, pool) == before
