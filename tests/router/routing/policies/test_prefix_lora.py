"""LoRA placement inside the prefix policy: a new conversation of an adapter goes where the
adapter is active, else to an engine with a free adapter slot, never evicting on a full engine
while a free slot has room; the base model's placement is untouched (the placement rules alone:
test_lora_placement.py)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import SYSTEM, engines, user_text

from contracts import OUTCOME_CACHE_HIT, OUTCOME_NEW
from router.routing.base import EngineState, RouteRequest
from router.routing.policies.prefix import PrefixPolicy


def _lora(state: EngineState, *, running: tuple[str, ...] = (), waiting: tuple[str, ...] = (),
          slots: int = 2) -> EngineState:
    state.lora_running, state.lora_waiting, state.max_loras = frozenset(running), frozenset(waiting), slots
    return state


def _ask(adapter: str, user: int) -> RouteRequest:
    return RouteRequest(model=adapter, prompt=SYSTEM + user_text(user, 3000), adapter=True)


def test_new_conversations_of_an_adapter_join_the_engine_where_it_is_active() -> None:
    """20 new users of `sql`: rendezvous alone would spread them over 4 engines; with `sql`
    active on one engine (and load left under the bound) every one goes there."""
    pool = engines(4)
    for state in pool:
        _lora(state, slots=4)
    _lora(pool[2], running=("sql",), slots=4)
    policy = PrefixPolicy()
    chosen = Counter(policy.select(_ask("sql", u), pool).engine.id for u in range(20))
    assert chosen == {pool[2].id: 20}


def test_an_adapter_goes_to_a_free_slot_not_to_an_engine_whose_slots_are_full() -> None:
    """With `legal` active nowhere, engines 0 and 1 have every slot in use and 2, 3 have one
    free: 40 new users of `legal` land on one of 2 and 3 (one load, no eviction), all on it."""
    pool = engines(4)
    _lora(pool[0], running=("a", "b")), _lora(pool[1], running=("c",), waiting=("d",))
    _lora(pool[2], running=("e",)), _lora(pool[3])
    policy = PrefixPolicy()
    chosen = {policy.select(_ask("legal", u), pool).engine.id for u in range(40)}
    assert len(chosen) == 1 and chosen <= {pool[2].id, pool[3].id}


def test_a_busy_active_engine_overflows_to_a_free_slot() -> None:
    """The bounded load still holds: when the engine where `sql` is active is above the load
    limit, new `sql` users go to engines with a free slot."""
    pool = engines(3)
    _lora(pool[0], running=("sql",)), _lora(pool[1]), _lora(pool[2], running=("x", "y"))
    pool[0].in_flight = 40
    chosen = {PrefixPolicy().select(_ask("sql", u), pool).engine.id for u in range(20)}
    assert chosen == {pool[1].id}


def test_a_later_round_of_an_adapter_conversation_stays_with_its_cache() -> None:
    """Affinity places only new conversations: the next round of one is a cache hit where it lives."""
    pool = engines(3)
    for state in pool:
        _lora(state, slots=4)
    policy = PrefixPolicy()
    first = _ask("sql", 7)
    home = policy.select(first, pool).engine
    _lora(pool[(pool.index(home) + 1) % 3], running=("sql",), slots=4)  # now active elsewhere
    later = RouteRequest(model="sql", prompt=first.prompt + b"<|assistant|>\nok\n" + user_text(70, 600),
                         adapter=True)
    decision = policy.select(later, pool)
    assert decision.engine is home and decision.outcome == OUTCOME_CACHE_HIT


@settings(max_examples=40, deadline=None)
@given(users=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=12, unique=True))
def test_base_model_placement_ignores_adapter_state(users: list[int]) -> None:
    """A base-model request is placed as before whatever the engines' adapter state."""
    plain, tagged = engines(4), engines(4)
    for state in tagged:
        _lora(state, running=("sql",), slots=1)
    for user in users:
        ask = RouteRequest(model="m", prompt=SYSTEM + user_text(user, 3000))
        a, b = PrefixPolicy().select(ask, plain), PrefixPolicy().select(ask, tagged)
        assert a.outcome == b.outcome == OUTCOME_NEW and plain.index(a.engine) == tagged.index(b.engine)
