"""LoRA placement for more adapters than slots (`_lora.LoraPlacement`): resident first, then a free
slot, then an idle least-recently-used adapter, never evicting one in use; replicas agree."""

from __future__ import annotations

import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from router.routing.base import EngineState
from router.routing.policies._lora import LoraPlacement

ADAPTERS = [f"a{i}" for i in range(8)]


def _engine(i: int, *, active: tuple[str, ...] = (), slots: int = 2, load: int = 0) -> EngineState:
    return EngineState(id=f"http://e{i}", gpu_cache_tokens=100_000, lora_running=frozenset(active),
                       lora_waiting=frozenset(active), max_loras=slots, in_flight=load)


engine_states = st.lists(
    st.tuples(st.lists(st.sampled_from(ADAPTERS), max_size=3, unique=True), st.integers(0, 12)),
    min_size=1, max_size=6)


def _pool(spec: list[tuple[list[str], int]], slots: int = 3) -> list[EngineState]:
    return [_engine(i, active=tuple(active), slots=slots, load=load) for i, (active, load) in enumerate(spec)]


@settings(max_examples=200, deadline=None)
@given(engine_states, st.sampled_from(ADAPTERS), st.integers(0, 5))
def test_placement_is_one_of_the_engines_and_never_evicts_a_busy_adapter_needlessly(spec, adapter, spread):
    """The choice is a candidate, or a holder; when it neither holds the adapter nor has a free
    slot, it evicts an idle adapter, or no candidate could be placed without waiting."""
    pool = _pool(spec)
    placement = LoraPlacement(spread=spread)
    chosen = placement.place(adapter, pool, pool)
    assert chosen in pool
    view = placement.view(chosen)
    if adapter in view.resident:
        return
    assert not any(adapter in placement.view(e).resident for e in pool)  # a holder would have won
    if not view.free() and not view.evictable():
        assert not any(placement.view(e).free() or placement.view(e).evictable() for e in pool)


@settings(max_examples=100, deadline=None)
@given(engine_states, st.sampled_from(ADAPTERS), st.randoms(use_true_random=False))
def test_replicas_agree_whatever_the_engine_order(spec, adapter, rng):
    """Two fresh routers with the same scraped state choose the same engine, in any order."""
    pool = _pool(spec)
    shuffled = list(pool)
    rng.shuffle(shuffled)
    one = LoraPlacement().place(adapter, pool, pool)
    other = LoraPlacement().place(adapter, shuffled, shuffled)
    assert one.id == other.id


def test_an_adapter_stays_on_its_engines_until_they_are_over_the_bound():
    """Resident on e0 (loaded), it keeps going there; only when e0 leaves the candidates (over
    the caller's load bound) does it spread to a free slot."""
    pool = [_engine(0, active=("sql",), load=9), _engine(1), _engine(2)]
    placement = LoraPlacement()
    assert placement.place("sql", pool, pool) is pool[0]
    assert placement.place("sql", pool[1:], pool) in pool[1:]


def test_a_full_engine_with_an_idle_lru_takes_a_new_adapter_a_busy_one_does_not():
    """e0's slots hold adapters it has requests for; e1's oldest adapter is idle: e1 loads."""
    pool = [_engine(0, active=("x", "y")), _engine(1, active=("z",))]
    placement = LoraPlacement()
    placement.record(pool[1], "old")
    placement.done(pool[1].id, "old")
    placement.record(pool[1], "z")
    assert not placement.view(pool[0]).evictable() and placement.view(pool[1]).evictable()
    assert placement.place("new", pool, pool) is pool[1]


def test_with_every_slot_busy_it_waits_on_a_holder_or_the_least_loaded():
    """No free slot and no idle adapter anywhere: a holder over the bound wins, else the least loaded."""
    pool = [_engine(0, active=("x", "y"), load=5), _engine(1, active=("p", "q"), load=1)]
    placement = LoraPlacement(spread=0)
    assert placement.place("new", pool, pool) is pool[1]
    held = [_engine(0, active=("x", "new"), load=50), pool[1]]
    assert placement.place("new", held[1:], held) is held[0]


def test_what_the_router_sent_counts_as_resident_until_the_engine_must_have_evicted_it():
    """Sent adapters are resident up to the engine's slots, the oldest idle one forgotten first."""
    engine = _engine(0, slots=2)
    placement = LoraPlacement()
    for name in ("a", "b", "c"):
        placement.record(engine, name)
        placement.done(engine.id, name)
    assert placement.view(engine).resident == {"b", "c"} and placement.view(engine).lru == "b"
    placement.record(engine, "b")  # open: busy, and now the most recent
    assert placement.view(engine).busy == {"b"} and placement.view(engine).lru == "c"


def _homes(adapter: str, pool: list[EngineState]) -> list[EngineState]:
    """`pool` in the adapter's rendezvous order (its first home first)."""
    key = xxhash.xxh3_64_intdigest(adapter.encode())
    return sorted(pool, key=lambda e: xxhash.xxh3_64_intdigest(e.id.encode(), key), reverse=True)


def _fill(placement: LoraPlacement, engine: EngineState, names: tuple[str, ...]) -> None:
    for name in names:
        placement.record(engine, name)
        placement.done(engine.id, name)


def test_a_new_adapter_evicts_on_its_second_home_only_when_that_victim_is_twice_as_idle():
    """Both homes full of idle adapters: the first home, unless the second's LRU adapter has gone
    unused at least twice as long (a conversation in think time would reload the younger one)."""
    first, second = _homes("new", [_engine(0), _engine(1)])
    placement = LoraPlacement()
    _fill(placement, second, ("s-old", "s-new"))  # ticks 1-4: second's LRU last used at tick 2
    _fill(placement, first, ("f-old", "f-new"))  # ticks 5-8: first's LRU last used at tick 6
    assert placement.view(second).idle == 6 and placement.view(first).idle == 2
    assert placement.place("new", [first, second], [first, second]) is second
    slow = LoraPlacement()
    _fill(slow, first, ("f-old", "f-new"))  # first's LRU last used at tick 2
    _fill(slow, second, ("s-old", "s-new"))  # second's at tick 6: younger
    assert slow.place("new", [first, second], [first, second]) is first


def test_an_end_makes_the_adapter_the_most_recently_used():
    """The engine touches an adapter in every step its requests run: its end, not its start, is
    its last use."""
    engine = _engine(0, slots=2)
    placement = LoraPlacement()
    placement.record(engine, "a")
    placement.record(engine, "b")
    placement.done(engine.id, "b")
    placement.done(engine.id, "a")
    assert placement.view(engine).lru == "b"
