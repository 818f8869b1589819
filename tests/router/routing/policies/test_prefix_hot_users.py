"""`prefix` behind a hot shared system prompt with a few heavy users: new users are placed by
their own first turn, heavy users do not stay stacked, long conversations are not moved."""

from __future__ import annotations

from collections import Counter

from policy_helpers import engines, request, user_text

from contracts import OUTCOME_CACHE_HIT, OUTCOME_LOAD_FALLBACK, OUTCOME_NEW
from router.routing.base import EngineState
from router.routing.policies.prefix import PrefixPolicy

SYSTEM = (b"<|system|>\nYou are the support assistant of a large online shop; be precise. " * 400)[:24_000]


def system_prompt(variant: int) -> bytes:
    """A 6,000-token system prompt; variants differ from their first block."""
    return f"variant {variant} ".encode() + SYSTEM


class Talk:
    """One user's conversation: its prompt grows by an answer and a question per round."""

    def __init__(self, user: int, system: bytes = SYSTEM, first: int = 800) -> None:
        self.user, self.rounds = user, 0
        self.prompt = system + user_text(user, first)

    def send(self, policy: PrefixPolicy, pool: list[EngineState]) -> tuple[str, str]:
        decision = policy.select(request(self.prompt), pool)
        self.rounds += 1
        answer = f"<|assistant|>\nanswer {self.rounds}\n".encode()
        self.prompt += answer + user_text(self.user * 97 + self.rounds, 128)
        return decision.engine.id, decision.outcome


def test_the_second_user_of_a_fresh_system_prompt_is_placed_as_new() -> None:
    """User B's first prompt matches what user A was sent (the system prompt and the start of
    A's turn) but ends no prompt sent before: it is a new conversation, not a hit on A's engine."""
    pool = engines(4)
    for variant in range(12):
        policy = PrefixPolicy()
        system = system_prompt(variant)
        first = policy.select(request(system + user_text(1, 800)), pool)
        second = policy.select(request(system + user_text(2, 800)), pool)
        assert (first.outcome, second.outcome) == (OUTCOME_NEW, OUTCOME_NEW)
        assert second.engine is not first.engine


def test_later_rounds_behind_a_hot_system_prompt_stay_with_their_cache() -> None:
    """Eight users behind one system prompt, then three more rounds each: every later round is
    a cache hit on the engine of the user's first round."""
    pool, policy = engines(4), PrefixPolicy()
    talks = [Talk(user) for user in range(8)]
    homes = {t.user: t.send(policy, pool)[0] for t in talks}
    for _ in range(3):
        for talk in talks:
            assert talk.send(policy, pool) == (homes[talk.user], OUTCOME_CACHE_HIT)
    assert len(set(homes.values())) == 4


def heavy_and_light(ticks: int) -> list[int]:
    """Who sends, in order: users 0-2 send every tick from the first, users 3-15 every fifth
    tick, joining one per tick: the heavy users arrive first, before anyone knows their rate."""
    order = []
    for tick in range(ticks):
        order += [0, 1, 2] + [u for u in range(3, 16) if tick >= u - 3 and (tick + u) % 5 == 0]
    return order


def test_heavy_users_are_not_stacked() -> None:
    """3 heavy users (5x) and 13 light ones behind one system prompt on 4 engines: the heavy
    users end on distinct engines and the per-engine request counts stay within 1.3x the mean,
    at the price of a few cheap moves (each recomputes at most `move_tokens`)."""
    pool, policy = engines(4), PrefixPolicy()
    talks = {u: Talk(u) for u in range(16)}
    counts: Counter[str] = Counter()
    homes: dict[int, str] = {}
    moves = 0
    for user in heavy_and_light(60):
        engine_id, outcome = talks[user].send(policy, pool)
        counts[engine_id] += 1
        moves += outcome == OUTCOME_LOAD_FALLBACK
        homes[user] = engine_id
    assert len({homes[0], homes[1], homes[2]}) == 3
    assert max(counts.values()) <= 1.3 * sum(counts.values()) / 4
    assert moves <= 0.05 * sum(counts.values())


def test_a_long_conversation_is_not_moved_by_resident_load() -> None:
    """Two conversations with 12k tokens of their own each, one of them heavy, share an engine
    that is the busiest by far: both stay (moving costs a 12k-token recompute; only an
    estimated-TTFT win may move them)."""
    pool, policy = engines(4), PrefixPolicy()
    for user in range(100, 104):  # the system prompt on every engine
        Talk(user).send(policy, [pool[user - 100]])
    long = Talk(1, first=48_000)
    home, _ = long.send(policy, pool)
    heavy = Talk(2, first=48_000)
    heavy.send(policy, [e for e in pool if e.id == home])
    for _ in range(30):
        assert heavy.send(policy, pool) == (home, OUTCOME_CACHE_HIT)
    assert policy.residents.load(home) > 10 * max(policy.residents.load(e.id) for e in pool if e.id != home)
    assert long.send(policy, pool) == (home, OUTCOME_CACHE_HIT)


def _two_users_on_one_engine() -> tuple[list[EngineState], PrefixPolicy, Talk, Talk]:
    """Four engines that each hold the system prompt, and two users forced onto the first."""
    pool, policy = engines(4), PrefixPolicy()
    for user in range(100, 104):
        Talk(user).send(policy, [pool[user - 100]])
    first, second = Talk(1), Talk(2)
    first.send(policy, [pool[0]])
    second.send(policy, [pool[0]])
    return pool, policy, first, second


def test_a_short_conversation_moves_off_a_home_above_the_bound_and_stays_there() -> None:
    """Two heavy users forced onto one busy engine: the next round of one of them moves (a
    cheap recompute: the other engines hold the system prompt), and its later rounds hit there."""
    pool, policy, first, second = _two_users_on_one_engine()
    pool[0].in_flight = 1  # their requests overlap: the crowded home has one open
    outcomes = []
    for _ in range(10):
        outcomes += [first.send(policy, pool), second.send(policy, pool)]
    moved = [(engine_id, i) for i, (engine_id, outcome) in enumerate(outcomes)
             if outcome == OUTCOME_LOAD_FALLBACK]
    assert len(moved) == 1
    engine_id, at = moved[0]
    assert engine_id != pool[0].id
    assert all(outcome == OUTCOME_CACHE_HIT for _, outcome in outcomes[at + 2 :: 2])
    assert {e for e, _ in outcomes[-2:]} == {pool[0].id, engine_id}
