"""Pacing: the offered load equals the QPS, the ramp staggers users, rounds wait for answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.errors import ConfigError
from bench.schedule import Pacing, initial_users, joining_users, next_launch, offered_launches


@settings(deadline=None, max_examples=60)
@given(users=st.integers(1, 400), rounds=st.integers(1, 20), qps=st.floats(0.05, 50),
       duration=st.floats(1, 300))
def test_offered_load_matches_qps(users, rounds, qps, duration):
    """With instant answers the schedule launches qps x duration requests (+-1), in the window."""
    pacing = Pacing(users=users, rounds=rounds, qps=qps, duration_s=duration)
    launches = offered_launches(pacing)
    assert abs(len(launches) - qps * duration) <= 1
    assert all(0 <= t < duration for t in launches)


def test_seed_shape_offers_a_launch_every_quarter_second():
    """The seed's shape: 80 s user gap, a join every 2.5 s, 40 launches in the first 10 s."""
    pacing = Pacing(users=320, rounds=10, qps=4.0, duration_s=60.0)
    assert (pacing.user_gap_s, pacing.join_gap_s) == (80.0, 2.5)
    launches = offered_launches(pacing)
    assert len(launches) == 240
    assert len([t for t in launches if t < 10]) == 40


def test_launches_are_evenly_spaced():
    """Offered launches are exactly 1/qps apart, even when users and rounds share a factor."""
    launches = offered_launches(Pacing(users=320, rounds=10, qps=4.0, duration_s=30.0))
    gaps = {round(b - a, 9) for a, b in zip(launches, launches[1:], strict=False)}
    assert gaps == {0.25}


def test_ramp_places_users_at_staggered_rounds():
    """The initial population covers every round evenly and starts within one user gap."""
    pacing = Pacing(users=20, rounds=5, qps=2.0, duration_s=100.0)
    starts = initial_users(pacing)
    assert [sum(s.first_round == r for s in starts) for r in range(5)] == [4] * 5
    assert all(0 <= s.first_launch < pacing.user_gap_s for s in starts)


def test_users_join_gradually_within_the_window():
    """Joiners arrive one by one at round 0, each taking over a slot whose user has finished."""
    pacing = Pacing(users=8, rounds=4, qps=4.0, duration_s=20.0)
    joins = joining_users(pacing)
    times = [s.first_launch for s in joins]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert abs(len(joins) - 20.0 * 4.0 / 4) <= 8
    assert all(s.first_round == 0 and 0 < s.first_launch < 20.0 for s in joins)
    assert [s.index for s in joins] == list(range(8, 8 + len(joins)))
    first_join_per_slot = {}
    for s in joins:
        first_join_per_slot.setdefault(s.slot, s.first_launch)
    for s in initial_users(pacing):
        remaining = pacing.rounds - s.first_round
        assert first_join_per_slot[s.slot] == s.first_launch + remaining * pacing.user_gap_s


def test_next_round_waits_for_the_gap_and_for_the_answer():
    """A user's next round is one gap after its last launch, or at once after a late answer."""
    pacing = Pacing(users=10, rounds=3, qps=5.0, duration_s=10.0)
    assert next_launch(pacing, prev_launch=1.0, prev_done=1.5) == 3.0
    assert next_launch(pacing, prev_launch=1.0, prev_done=4.5) == 4.5


@pytest.mark.parametrize(("field", "value", "flag"), [
    ("users", 0, "--users"), ("rounds", 0, "--rounds"), ("qps", -1.0, "--qps"),
    ("qps", float("nan"), "--qps"), ("duration_s", 0.0, "--duration"),
])
def test_bad_pacing_names_the_flag(field, value, flag):
    """Zero users/rounds, a non-positive QPS or duration fail with the flag and the value."""
    args = {"users": 1, "rounds": 1, "qps": 1.0, "duration_s": 1.0, field: value}
    with pytest.raises(ConfigError, match=flag) as info:
        Pacing(**args)
    assert repr(value).strip("'") in str(info.value) or "nan" in str(info.value)
