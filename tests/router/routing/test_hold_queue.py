"""The hold queue: priority bands first, callers in turn within a band, FCFS within a caller,
bounded per model with fair displacement, and exact counts on every path."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.routing.hold_queue import HoldLimits, HoldQueue, QueueFull


def queue(max_held: int = 100, bands: int = 3, max_wait_s: float = 30.0) -> HoldQueue:
    return HoldQueue(HoldLimits(max_held=max_held, max_wait_s=max_wait_s, bands=bands))


def drain(q: HoldQueue, model: str = "m") -> list[tuple[str, int]]:
    out = []
    while (item := q.pop(model)) is not None:
        out.append((item.caller, item.seq))
    return out


def test_callers_take_turns_and_each_is_served_in_arrival_order() -> None:
    """A caller with many held requests and one with a single request alternate turns."""
    q = queue()
    for _ in range(4):
        q.admit("m", "heavy", 1, now=0.0)
    q.admit("m", "light", 1, now=0.0)
    order = drain(q)
    assert [c for c, _ in order] == ["heavy", "light", "heavy", "heavy", "heavy"]
    heavy = [s for c, s in order if c == "heavy"]
    assert heavy == sorted(heavy) and q.total == 0 and q.held("m") == 0


def test_a_higher_band_always_leaves_first() -> None:
    """Band 0 empties before band 1 is served, whatever the arrival order."""
    q = queue()
    q.admit("m", "a", 2, now=0.0)
    q.admit("m", "b", 1, now=0.0)
    q.admit("m", "c", 0, now=0.0)
    assert [c for c, _ in drain(q)] == ["c", "b", "a"]


def test_deadline_is_fixed_at_admission_and_models_are_separate() -> None:
    """Each item's deadline is its admission time plus the bound; models do not mix."""
    q = queue(max_wait_s=7.5)
    item, displaced = q.admit("m", "a", 1, now=10.0)
    q.admit("other", "a", 1, now=11.0)
    assert item.deadline == 17.5 and displaced is None
    assert q.models() == ["m", "other"] and q.pop("m") is item and q.pop("m") is None
    assert q.held("other") == 1 and q.pop("nobody") is None


def test_full_queue_refuses_a_newcomer_who_outranks_nobody() -> None:
    """At the bound, a newcomer of the same band whose caller holds as much is refused."""
    q = queue(max_held=2)
    q.admit("m", "a", 1, now=0.0)
    q.admit("m", "b", 1, now=0.0)
    with pytest.raises(QueueFull):
        q.admit("m", "c", 1, now=0.0)
    with pytest.raises(QueueFull):
        q.admit("m", "a", 0 + 1, now=0.0)
    assert q.held("m") == 2 and q.total == 2


def test_full_queue_displaces_the_heaviest_callers_newest_for_a_light_caller() -> None:
    """A flood from one caller cannot lock another out: the flooder's newest request goes."""
    q = queue(max_held=3)
    items = [q.admit("m", "flood", 1, now=0.0)[0] for _ in range(3)]
    newcomer, displaced = q.admit("m", "light", 1, now=0.0)
    assert displaced is items[-1] and q.held_by("m", "flood") == 2 and q.held_by("m", "light") == 1
    assert not q.remove(displaced) and q.held("m") == 3
    assert newcomer in [q.pop("m") for _ in range(3)]


def test_full_queue_displaces_a_lower_band_for_a_higher_one() -> None:
    """A high-priority newcomer displaces the lowest band's newest request."""
    q = queue(max_held=2)
    low = q.admit("m", "a", 2, now=0.0)[0]
    q.admit("m", "b", 1, now=0.0)
    _, displaced = q.admit("m", "b", 0, now=0.0)
    assert displaced is low
    with pytest.raises(QueueFull):
        q.admit("m", "c", 2, now=0.0)  # nobody lower than the lowest band


def test_remove_and_requeue_keep_counts_and_put_the_item_first() -> None:
    """A removed item is gone; a requeued one comes out next, its deadline unchanged."""
    q = queue()
    a1 = q.admit("m", "a", 1, now=0.0)[0]
    q.admit("m", "b", 1, now=0.0)
    a2 = q.admit("m", "a", 1, now=0.0)[0]
    assert q.remove(a2) and not q.remove(a2)
    first = q.pop("m")
    assert first is a1
    q.requeue(first)
    assert q.pop("m") is a1 and a1.deadline == 30.0 and q.total == 1
    with pytest.raises(ValueError, match="band must be in 0..2"):
        q.admit("m", "a", 3, now=0.0)


ops = st.lists(st.tuples(st.sampled_from(["admit", "pop", "remove"]), st.integers(0, 3), st.integers(0, 2)),
               max_size=80)


@settings(max_examples=200, deadline=None)
@given(ops, st.integers(1, 6))
def test_bounds_counts_and_order_hold_under_any_sequence(steps: list, max_held: int) -> None:
    """Never above the bound; counts match a reference; every pop is from the highest
    non-empty band and, within a caller, the oldest; every request is accounted for once."""
    q = queue(max_held=max_held)
    live: list = []
    out = 0
    for op, who, band in steps:
        if op == "admit":
            try:
                item, displaced = q.admit("m", f"c{who}", band, now=0.0)
            except QueueFull:
                out += 1
                continue
            live.append(item)
            if displaced is not None:
                assert displaced.band >= band and displaced in live
                live.remove(displaced)
                out += 1
        elif op == "pop" and (item := q.pop("m")) is not None:
            assert item.band == min(i.band for i in live)
            assert item.seq == min(i.seq for i in live if i.caller == item.caller and i.band == item.band)
            live.remove(item)
            out += 1
        elif op == "remove" and live:
            assert q.remove(live.pop(who % len(live)))
            out += 1
        assert q.held("m") == q.total == len(live) <= max_held
        assert sum(q.held_by("m", f"c{i}") for i in range(4)) == len(live)
    admitted = sum(1 for op, *_ in steps if op == "admit")
    assert out + len(live) == admitted


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=60))
def test_no_caller_waits_more_than_one_turn_per_other_caller(arrivals: list[int]) -> None:
    """Round robin: between two pops of one caller, every other caller still holding gets a turn."""
    q = queue(max_held=1000, bands=1)
    for who in arrivals:
        q.admit("m", f"c{who}", 0, now=0.0)
    order = [c for c, _ in drain(q)]
    for i, caller in enumerate(order):
        later = order[i + 1:]
        if caller in later:
            between = later[:later.index(caller)]
            waiting_others = {c for c in later[later.index(caller):] if c != caller}
            assert waiting_others <= set(between)
