"""`prefix`: cache reuse weighed against load, stable placement of new conversations."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import SYSTEM, conversation, engines, request, user_text

from contracts import OUTCOME_CACHE_HIT, OUTCOME_LOAD_FALLBACK, OUTCOME_NEW
from router.routing.base import NoEngineError
from router.routing.cost import estimate_ttft_s
from router.routing.policies.prefix import PrefixConfig, PrefixPolicy
from router.routing.prompt import count_tokens
from router.settings import SettingsError

OUTCOMES = {OUTCOME_CACHE_HIT, OUTCOME_LOAD_FALLBACK, OUTCOME_NEW}


def test_later_rounds_of_a_conversation_stay_on_its_engine() -> None:
    """Balanced load: round 1 is new, every later round hits the same engine's cache."""
    pool, policy = engines(4), PrefixPolicy()
    decisions = [policy.select(request(p), pool) for p in conversation(1, 6)]
    assert len({d.engine.id for d in decisions}) == 1
    assert [d.outcome for d in decisions] == [OUTCOME_NEW] + [OUTCOME_CACHE_HIT] * 5
    assert decisions[-1].matched_tokens >= count_tokens(conversation(1, 5)[-1]) - 64


def test_many_conversations_each_keep_their_engine() -> None:
    """Interleaved rounds of 40 users: each user's rounds all go to one engine."""
    pool, policy = engines(4), PrefixPolicy()
    talks = {u: conversation(u, 3) for u in range(40)}
    seen: dict[int, set[str]] = {u: set() for u in talks}
    for r in range(3):
        for u, prompts in talks.items():
            seen[u].add(policy.select(request(prompts[r]), pool).engine.id)
    assert all(len(ids) == 1 for ids in seen.values())
    assert len({next(iter(ids)) for ids in seen.values()}) == 4


def test_a_replica_that_never_saw_round_one_agrees() -> None:
    """Two router workers with no shared state place the same conversation on the same engine."""
    pool = engines(8)
    first, second = PrefixPolicy(), PrefixPolicy()
    for user in range(30):
        prompts = conversation(user, 2)
        placed = first.select(request(prompts[0]), pool).engine
        assert second.select(request(prompts[1]), pool).engine is placed


def routed(policy: PrefixPolicy, pool: list, prompts: list[bytes], loads: list[int]) -> list[tuple[str, str]]:
    out = []
    for prompt, load in zip(prompts, loads, strict=True):
        pool[load % len(pool)].in_flight = load
        decision = policy.select(request(prompt), pool)
        out.append((decision.engine.id, decision.outcome))
    return out


@settings(max_examples=15, deadline=None)
@given(order=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=25),
       loads=st.lists(st.integers(0, 12), min_size=25, max_size=25))
def test_two_instances_make_identical_decisions(order: list[tuple[int, int]], loads: list[int]) -> None:
    """Any sequence of requests (with any loads) gets the same decisions from two fresh instances."""
    prompts = [conversation(user, 4)[r] for user, r in order]
    loads = loads[: len(prompts)]
    one = routed(PrefixPolicy(), engines(4), prompts, loads)
    assert one == routed(PrefixPolicy(), engines(4), prompts, loads)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 20_000), users=st.integers(0, 3), load=st.lists(st.integers(0, 50), min_size=1,
                                                                            max_size=6))
def test_select_returns_a_candidate_with_a_sane_decision(size: int, users: int, load: list[int]) -> None:
    """Whatever the prompt and loads: one of the given engines, a known outcome, match <= prompt."""
    pool, policy = engines(len(load)), PrefixPolicy()
    for state, in_flight in zip(pool, load, strict=True):
        state.in_flight = in_flight
    for user in range(users + 1):
        prompt = (SYSTEM + user_text(user, size))[: size + 1]
        decision = policy.select(request(prompt), pool)
        assert any(decision.engine is e for e in pool)
        assert decision.outcome in OUTCOMES
        assert 0 <= decision.matched_tokens <= count_tokens(prompt)


def test_a_shared_system_prompt_does_not_pile_users_onto_one_engine() -> None:
    """400 new users sharing a 1k-token system prompt spread over 8 idle engines (max <= 1.5x fair)."""
    pool, policy = engines(8), PrefixPolicy()
    counts = Counter(policy.select(request(conversation(u, 1)[0]), pool).engine.id for u in range(400))
    assert len(counts) == 8
    assert max(counts.values()) <= 1.5 * 400 / 8


def test_new_conversations_kept_in_flight_stay_within_the_bounded_load() -> None:
    """72 new users, every request held in flight: placement yields to the bounded load, so no
    engine exceeds load_factor x the average plus one (warm conversations are weighed by
    estimated TTFT instead: see the holder tests below)."""
    pool, policy = engines(4), PrefixPolicy(PrefixConfig(load_factor=1.25, load_floor=0))
    for user in range(72):
        policy.select(request(conversation(user, 1, first=3000)[0]), pool).engine.in_flight += 1
    assert max(e.in_flight for e in pool) <= 1.25 * 72 / 4 + 1


def test_a_system_prompt_cached_on_one_engine_does_not_attract_new_long_conversations() -> None:
    """Warm-up: only one engine holds the system prompt; new users still spread by placement."""
    pool, policy = engines(4), PrefixPolicy()
    policy.select(request(SYSTEM), pool)
    decisions = [policy.select(request(conversation(u, 1)[0]), pool) for u in range(80)]
    assert {d.outcome for d in decisions} == {OUTCOME_NEW}
    assert max(Counter(d.engine.id for d in decisions).values()) <= 1.5 * 80 / 4


def test_a_common_prefix_longer_than_the_placement_window_is_looked_past() -> None:
    """When every engine shares a prefix longer than placement_tokens, placement hashes past it."""
    long_system = SYSTEM * 3  # 3k tokens, beyond the 2k-token placement window
    pool, policy = engines(4), PrefixPolicy()
    for engine in pool:
        policy.select(request(long_system), [engine])
    counts = Counter(policy.select(request(long_system + user_text(u, 4000)), pool).engine.id
                     for u in range(80))
    assert len(counts) == 4


def test_a_warm_conversation_waits_behind_a_short_queue_past_the_load_bound() -> None:
    """The holder of a 12k-token prefix far above the load bound (40 in flight, the others idle)
    stays in the comparison and wins it: a short queue costs less than a full recompute."""
    pool, policy = engines(4), PrefixPolicy()
    prompts = conversation(7, 2)
    home = policy.select(request(prompts[0]), pool).engine
    home.in_flight = 40
    decision = policy.select(request(prompts[1]), pool)
    assert (decision.engine, decision.outcome) == (home, OUTCOME_CACHE_HIT)


def test_a_deep_queue_moves_a_conversation_and_the_next_round_follows() -> None:
    """When waiting costs more than the recompute (200 queued ≈ 10 s vs ≈ 1.6 s of prefill),
    another engine takes it (load_fallback), and the next round follows the fresher cache."""
    pool, policy = engines(4), PrefixPolicy()
    prompts = conversation(7, 3)
    home = policy.select(request(prompts[0]), pool).engine
    home.waiting = 200
    decision = policy.select(request(prompts[1]), pool)
    assert decision.engine is not home
    assert decision.outcome == OUTCOME_LOAD_FALLBACK
    home.waiting = 0
    back = policy.select(request(prompts[2]), pool)
    assert (back.engine, back.outcome) == (decision.engine, OUTCOME_CACHE_HIT)


@pytest.mark.parametrize(("kv_usage", "moves"), [(0.0, False), (0.8, True)])
def test_a_queue_on_a_kv_full_home_moves_a_conversation_that_the_same_queue_would_not(
        kv_usage: float, moves: bool) -> None:
    """Two requests waiting on the home cost 0.1 s while its KV cache has room (the ~4k-token
    conversation stays), but ~1.6 s when the engine reports its KV cache 80 % full (the prompt
    must wait for running requests to finish): then an idle engine's ~0.5 s recompute wins."""
    pool, policy = engines(4, gpu=16_384), PrefixPolicy()
    prompts = conversation(7, 2, first=12_000)
    home = policy.select(request(prompts[0]), pool).engine
    home.waiting, home.running, home.kv_usage = 2, 2, kv_usage  # scraped: other replicas' requests
    decision = policy.select(request(prompts[1]), pool)
    assert (decision.engine is not home) == moves
    assert decision.outcome == (OUTCOME_LOAD_FALLBACK if moves else OUTCOME_CACHE_HIT)


@settings(max_examples=60, deadline=None)
@given(loads=st.lists(st.integers(min_value=0, max_value=300), min_size=4, max_size=4))
def test_the_choice_never_costs_more_than_the_holder(loads: list[int]) -> None:
    """Whatever the in-flight counts, the chosen engine's estimated TTFT is at most the cache
    holder's: no load bound drops the holder from the comparison."""
    pool, policy = engines(4), PrefixPolicy()
    prompts = conversation(9, 2)
    home = policy.select(request(prompts[0]), pool).engine
    for engine, load in zip(pool, loads, strict=True):
        engine.in_flight = load
    matches = policy.index.match_all(policy.hashes(prompts[1]))
    tokens = -(-len(prompts[1]) // 4)

    def estimate(engine: object) -> float:
        cached = min(matches.get(engine.id, 0) * policy.config.block_tokens, tokens)
        return estimate_ttft_s(engine, tokens, cached, policy.config.cost)

    decision = policy.select(request(prompts[1]), pool)
    assert estimate(decision.engine) <= estimate(home)


def test_a_long_queue_outweighs_a_small_cache_hit() -> None:
    """Cost decides within bounds: a deep queue beats saving a little prefill."""
    pool = engines(2)
    policy = PrefixPolicy(PrefixConfig(load_factor=100.0))
    prompts = conversation(3, 2, first=3000)
    home = policy.select(request(prompts[0]), pool).engine
    home.waiting = 200  # 200 x 50 ms queued >> the ~1k tokens of prefill saved
    decision = policy.select(request(prompts[1]), pool)
    assert decision.engine is not home
    assert decision.outcome == OUTCOME_LOAD_FALLBACK


def test_a_new_conversation_avoids_an_overloaded_placement_home() -> None:
    """The rendezvous home above the limit is passed over; the outcome stays new."""
    pool, policy = engines(4), PrefixPolicy()
    prompt = conversation(11, 1)[0]
    home = PrefixPolicy().select(request(prompt), pool).engine
    home.in_flight = 40
    decision = policy.select(request(prompt), pool)
    assert decision.engine is not home
    assert decision.outcome == OUTCOME_NEW


def test_short_conversations_follow_their_cache() -> None:
    """Prompts shorter than the placement window still hit the engine holding their earlier rounds."""
    pool, policy = engines(4), PrefixPolicy()
    prompts = conversation(5, 4, first=1500, turn=300, system=b"")
    decisions = [policy.select(request(p), pool) for p in prompts]
    assert len({d.engine.id for d in decisions}) == 1
    assert [d.outcome for d in decisions[1:]] == [OUTCOME_CACHE_HIT] * 3


def test_index_capacity_is_the_larger_tier_and_bounds_memory() -> None:
    """LMCache writes through, so the tiers overlap: the index holds at most
    max(GPU, CPU tokens) / block_tokens blocks per engine, not their sum."""
    pool, policy = engines(2, gpu=8_000, cpu=4_000), PrefixPolicy()
    for user in range(60):
        policy.select(request(user_text(user, 8192)), pool)
    for engine in pool:
        assert policy.index.capacity(engine.id) == 8_000 // 64
        assert 0 < policy.index.size(engine.id) <= 8_000 // 64
    pool[0].cpu_cache_tokens = 12_000
    policy.select(request(b"x" * 300), pool)
    assert policy.index.capacity(pool[0].id) == 12_000 // 64


def test_engines_changed_drops_the_index_of_removed_engines() -> None:
    """An engine that left is forgotten; the others keep their cache; one coming back starts cold."""
    pool, policy = engines(3), PrefixPolicy()
    for user in range(12):
        policy.select(request(conversation(user, 1)[0]), pool)
    policy.on_engines_changed([pool[0].id, pool[1].id])
    assert sorted(policy.index.engine_ids()) == sorted([pool[0].id, pool[1].id])
    assert policy.index.size(pool[0].id) + policy.index.size(pool[1].id) > 0
    decision = policy.select(request(b"fresh prompt " * 40), pool)
    assert any(decision.engine is e for e in pool)
    assert pool[2].id in policy.index.engine_ids()


def test_placement_key_ignores_everything_past_the_window() -> None:
    """Two prompts equal in their first placement_tokens share a placement key; others differ."""
    policy = PrefixPolicy()
    base = SYSTEM + user_text(1, 8000)
    key = policy.placement_key(policy.hashes(base), base)
    longer = base + b"more text"
    assert policy.placement_key(policy.hashes(longer), longer) == key
    other = SYSTEM + user_text(2, 8000)
    assert policy.placement_key(policy.hashes(other), other) != key
    assert policy.placement_key([], b"ab") != policy.placement_key([], b"ac")


def test_no_engine_raises() -> None:
    """An empty candidate list raises NoEngineError."""
    with pytest.raises(NoEngineError):
        PrefixPolicy().select(request(b"p"), [])


def test_a_cache_on_an_engine_out_of_rotation_does_not_count() -> None:
    """When the engine holding the conversation is not a candidate, the next round is placed
    as new, where any replica would place it."""
    pool, policy = engines(4), PrefixPolicy()
    prompts = conversation(9, 2)
    home = policy.select(request(prompts[0]), pool).engine
    others = [e for e in pool if e is not home]
    decision = policy.select(request(prompts[1]), others)
    assert decision.outcome == OUTCOME_NEW
    assert decision.engine is PrefixPolicy().select(request(prompts[1]), others).engine


def test_an_engine_leaving_moves_only_the_new_conversations_it_would_have_taken() -> None:
    """Rendezvous placement: with one engine gone, every other conversation keeps its engine."""
    pool = engines(5)
    prompts = [conversation(u, 1)[0] for u in range(60)]
    before = [PrefixPolicy().select(request(p), pool).engine.id for p in prompts]
    after = [PrefixPolicy().select(request(p), pool[1:]).engine.id for p in prompts]
    moved = [i for i in range(60) if before[i] != after[i]]
    assert moved
    assert all(before[i] == pool[0].id for i in moved)


def test_two_workers_seeing_random_halves_place_unique_conversations_as_one_does() -> None:
    """64 conversations with prompts of their own, 8 rounds each, every request to one of two
    policy instances at random: each conversation stays on the one engine a single instance
    puts it on (placement by the prompt alone; resident load bounds only prompts keyed past a
    shared prefix)."""
    pool = engines(4)
    talks = [conversation(u, 8, system=b"") for u in range(64)]
    one = PrefixPolicy()
    single = {u: {one.select(request(talks[u][r]), pool).engine.id for r in range(8)} for u in range(64)}
    workers, rng = (PrefixPolicy(), PrefixPolicy()), random.Random(5)
    split: dict[int, set[str]] = {u: set() for u in range(64)}
    for r in range(8):
        for u in range(64):
            split[u].add(rng.choice(workers).select(request(talks[u][r]), pool).engine.id)
    assert all(len(ids) == 1 for ids in single.values())
    assert split == single


def sole() -> PrefixPolicy:
    return PrefixPolicy(PrefixConfig(sole_router=True))


def test_the_sole_router_places_new_conversations_by_load_and_keeps_them() -> None:
    """`sole_router`: its own index sees every later round, so new conversations spread by load
    (8 over 4 idle engines: 2 each, where hashing puts 3 on one) and every later round still
    lands where its first one did, a cache hit."""
    pool, policy = engines(4), sole()
    talks = [conversation(100 + u, 4) for u in range(8)]
    first = [policy.select(request(rounds[0]), pool) for rounds in talks]
    assert {d.outcome for d in first} == {OUTCOME_NEW}
    assert sorted(Counter(d.engine.id for d in first).values()) == [2, 2, 2, 2]
    hashed = Counter(PrefixPolicy().select(request(rounds[0]), pool).engine.id for rounds in talks)
    assert max(hashed.values()) > 2
    for r in range(1, 4):
        for placed, rounds in zip(first, talks, strict=True):
            decision = policy.select(request(rounds[r]), pool)
            assert (decision.engine.id, decision.outcome) == (placed.engine.id, OUTCOME_CACHE_HIT)


def test_the_sole_router_sends_a_new_conversation_where_fewest_requests_are_open() -> None:
    """Of the engines within the resident-load bound, one with the fewest requests open now (in
    flight plus the engine's waiting count): its cold prefill does not queue behind another."""
    for u in range(12):
        pool = engines(4)
        pool[0].in_flight, pool[1].waiting, pool[2].in_flight = 1, 2, 1
        decision = sole().select(request(conversation(200 + u, 1)[0]), pool)
        assert decision.engine is pool[3] and decision.outcome == OUTCOME_NEW


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_sole_router_must_be_a_bool(value: object) -> None:
    with pytest.raises(SettingsError) as err:
        PrefixConfig(sole_router=value)  # type: ignore[arg-type]
    assert err.value.field_name == "policy.params.sole_router" and "true or false" in str(err.value)
