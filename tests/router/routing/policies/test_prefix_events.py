"""`prefix` scoring by the engines' KV events (`RouteRequest.kv`): an engine whose feed is live
is scored by the blocks it reports, per tier, over whatever the router's own index believes; an
engine whose feed is not live keeps the index's estimate, and says why."""

from __future__ import annotations

import struct
from collections import Counter

import pytest
from policy_helpers import conversation, engines

from contracts import OUTCOME_CACHE_HIT, OUTCOME_NEW
from contracts.kv_events import (
    FALLBACK_NO_TOKENS,
    FALLBACK_UNFOLLOWED,
    FEED_STALE,
    FEED_SYNCING,
    FEED_UNTRUSTED,
)
from router.routing.base import EngineState, RouteRequest
from router.routing.cost import CostModel, cheapest, estimate_ttft_s
from router.routing.kv.events import BlockStored, Tier
from router.routing.kv.feed import EngineFeed, KvView
from router.routing.kv.residency import ResidencyIndex
from router.routing.kv.scoring import TierTokens, score
from router.routing.policies.prefix import PrefixPolicy


def ids(prompt: bytes) -> tuple[int, ...]:
    """The emulator's token ids: 4 bytes each, big-endian (emulator/tokenize.py)."""
    whole = len(prompt) // 4
    return struct.unpack(f">{whole}I", prompt[:whole * 4])


class Engines:
    """A KV view over `pool`: every engine followed, live, holding nothing."""

    def __init__(self, pool: list[EngineState]) -> None:
        self.index = ResidencyIndex()
        self.view = KvView(index=self.index, feeds={})
        self._hash = 0
        for engine in pool:
            self.index.add_engine(engine.id, {Tier.GPU: engine.gpu_cache_tokens, Tier.CPU: 1_000_000,
                                              Tier.STORAGE: 1_000_000})
            feed = self.view.feeds[engine.id] = EngineFeed(engine.id, self.index, stale_after_s=5.0, now=0.0)
            feed.replayed(feed.sync(), [])
            feed.connected()

    def store(self, engine: str, prompt: bytes, tier: Tier = Tier.GPU) -> None:
        """`engine` holds every whole block of `prompt` in `tier` (one chain from the root)."""
        tokens = ids(prompt)
        blocks = len(tokens) // 16
        hashes = tuple(range(self._hash + 1, self._hash + 1 + blocks))
        self._hash += blocks
        self.index.apply(engine, [BlockStored(hashes, None, tokens[:blocks * 16], 16, tier)])

    def untrust(self, engine: str) -> None:
        feed = self.view.feeds[engine]
        feed.replayed(feed.sync(), None)  # the replay got no answer: untrusted

    def request(self, prompt: bytes, *, tokens: bool = True) -> RouteRequest:
        return RouteRequest(model="m", prompt=prompt, token_ids=ids(prompt) if tokens else None,
                            kv=self.view, now=1.0)


def plain(prompt: bytes) -> RouteRequest:
    return RouteRequest(model="m", prompt=prompt)


def test_events_pick_the_engine_that_really_holds_the_prefix() -> None:
    """The index believes the conversation is on its first engine (it sent rounds 1 and 2 there);
    the events say another engine holds round 2 (traffic that bypassed this router): round 3
    goes there as a hit, predicted as the events say, where the index alone stays put."""
    pool = engines(4)
    policy, kv = PrefixPolicy(), Engines(pool)
    rounds = conversation(1, 3)
    home = policy.select(plain(rounds[0]), pool).engine
    assert policy.select(plain(rounds[1]), pool).engine is home
    other = next(e for e in pool if e is not home)
    kv.store(other.id, rounds[1])
    twin = PrefixPolicy()  # the same history, scored by the index alone
    for prompt in rounds[:2]:
        twin.select(plain(prompt), pool)
    assert twin.select(plain(rounds[2]), pool).engine is home
    decision = policy.select(kv.request(rounds[2]), pool)
    assert decision.engine is other and decision.outcome == OUTCOME_CACHE_HIT
    assert decision.scored_by == "events" and decision.fallbacks == {}
    held = len(ids(rounds[1])) // 16 * 16
    assert decision.matched_tokens == held and decision.tier_tokens == (held, 0, 0)


def test_a_wiped_engine_is_never_chosen_as_warm() -> None:
    """40 conversations placed and continued; one engine restarts (its events: empty), the others
    still hold theirs. Round 3 of every conversation: none goes to the wiped engine as a hit or with
    a predicted cached token, where the index alone sends its conversations back there as hits."""
    pool = engines(4)
    policy, twin, kv = PrefixPolicy(), PrefixPolicy(), Engines(pool)
    talks = [conversation(u, 3) for u in range(40)]
    homes = {}
    for u, rounds in enumerate(talks):
        for prompt in rounds[:2]:
            homes[u] = policy.select(plain(prompt), pool).engine
            twin.select(plain(prompt), pool)
        kv.store(homes[u].id, rounds[1])
    wiped = pool[0]
    kv.index.clear(wiped.id)  # the engine restarted: a fresh publisher, an empty cache
    on_wiped = [u for u in homes if homes[u] is wiped]
    assert on_wiped, "some conversations lived on the wiped engine"
    assert all(twin.select(plain(talks[u][2]), pool).outcome == OUTCOME_CACHE_HIT for u in on_wiped)
    for u, rounds in enumerate(talks):
        decision = policy.select(kv.request(rounds[2]), pool)
        if decision.engine is wiped:
            assert decision.outcome == OUTCOME_NEW and decision.matched_tokens == 0
            assert decision.tier_tokens == (0, 0, 0)
        else:
            assert decision.engine is homes[u] and decision.outcome == OUTCOME_CACHE_HIT


def test_an_engine_whose_feed_is_not_live_falls_back_to_the_index() -> None:
    """The conversation's engine is `untrusted` (its events say nothing of the prompt, but lost
    batches make that unreliable): it is scored by the index, which holds the conversation, and the
    decision names the fallback; a live engine that holds nothing is scored by its events."""
    pool = engines(3)
    policy, kv = PrefixPolicy(), Engines(pool)
    rounds = conversation(2, 2)
    home = policy.select(plain(rounds[0]), pool).engine
    kv.untrust(home.id)
    decision = policy.select(kv.request(rounds[1]), pool)
    assert decision.engine is home and decision.outcome == OUTCOME_CACHE_HIT
    assert decision.scored_by == "approximate" and decision.matched_tokens > 0
    assert decision.fallbacks == {home.id: FEED_UNTRUSTED}


def test_an_engine_whose_publisher_was_just_lost_is_scored_cold_not_by_the_index() -> None:
    """The conversation's engine loses its publisher (its process ended: a restart wipes the
    cache): from that moment, before the staleness bound, it is `syncing`, counted as a fallback,
    and scored as holding nothing, where the index still believes it holds the conversation;
    once stale it is scored by the index again (the engine may only have lost its events path)."""
    pool = engines(3)
    policy, kv = PrefixPolicy(), Engines(pool)
    rounds = conversation(5, 3)
    home = policy.select(plain(rounds[0]), pool).engine
    kv.store(home.id, rounds[0])
    kv.view.feeds[home.id].disconnected(1.0)
    decision = policy.select(kv.request(rounds[1]), pool)
    assert decision.fallbacks == {home.id: FEED_SYNCING}
    assert decision.outcome == OUTCOME_NEW and decision.matched_tokens == 0
    assert decision.tier_tokens == (0, 0, 0)
    scores = score(kv.view, [e.id for e in pool], ids(rounds[1]), 1.0)
    assert scores.cold == {home.id}
    later = score(kv.view, [e.id for e in pool], ids(rounds[1]), 6.0)
    assert later.fallbacks == {home.id: FEED_STALE} and later.cold == frozenset()


def test_fallback_reasons_name_each_engine_not_scored_by_events() -> None:
    """No token ids: every live candidate by the index (`no_tokens`); an engine with no feed is
    `unfollowed`; one whose publisher is gone past the staleness bound `stale`."""
    pool = engines(3)
    kv = Engines(pool)
    prompt = conversation(3, 1)[0]
    assert score(kv.view, [e.id for e in pool], None, 1.0).fallbacks == dict.fromkeys(
        (e.id for e in pool), FALLBACK_NO_TOKENS)
    del kv.view.feeds[pool[1].id]
    kv.view.feeds[pool[2].id].disconnected(1.0)
    scores = score(kv.view, [e.id for e in pool], ids(prompt), 7.0)
    assert scores.fallbacks == {pool[1].id: FALLBACK_UNFOLLOWED, pool[2].id: FEED_STALE}
    assert scores.exact == {pool[0].id: TierTokens()}
    assert score(kv.view, [e.id for e in pool], None, 7.0).fallbacks == {
        pool[0].id: FALLBACK_NO_TOKENS, pool[1].id: FALLBACK_UNFOLLOWED, pool[2].id: FEED_STALE}


def test_events_count_what_vllm_can_hit_by_tier() -> None:
    """A prompt held whole on the GPU is predicted as its whole blocks before the last token (vLLM
    computes the last token); one continued in the CPU tier counts there."""
    pool = engines(1)
    kv = Engines(pool)
    prompt = bytes(range(32, 96)) * 16  # 1,024 bytes: 256 tokens, 16 blocks
    kv.store(pool[0].id, prompt[:512])
    kv.store(pool[0].id, prompt, Tier.CPU)
    held = score(kv.view, [pool[0].id], ids(prompt), 1.0).exact[pool[0].id]
    assert held == TierTokens(gpu=128, cpu=112)  # 15 blocks usable of 16


def test_the_cheaper_tier_wins_at_equal_load() -> None:
    """Two idle engines hold the whole conversation, one on the GPU, one in the CPU tier, a third
    in storage: the GPU one takes it; without it the CPU one; storage is last."""
    pool = engines(3)
    kv = Engines(pool)
    rounds = conversation(4, 2)
    for engine, tier in zip(pool, (Tier.STORAGE, Tier.CPU, Tier.GPU), strict=True):
        kv.store(engine.id, rounds[1], tier)
    assert PrefixPolicy().select(kv.request(rounds[1]), pool).engine is pool[2]
    assert PrefixPolicy().select(kv.request(rounds[1]), pool[:2]).engine is pool[1]


def test_a_router_that_saw_nothing_routes_by_the_events_and_replicas_agree() -> None:
    """Two fresh policies (a replica that just joined: its index empty) on one KV view send every
    continued conversation to the engine its events name, and place new ones alike; the index is
    kept up to date meanwhile (the fallback stays warm)."""
    pool = engines(4)
    kv = Engines(pool)
    talks = [conversation(u, 2) for u in range(20)]
    for u, rounds in enumerate(talks):
        kv.store(pool[u % 4].id, rounds[0])
    first, second = PrefixPolicy(), PrefixPolicy()
    for u, rounds in enumerate(talks):
        one, two = first.select(kv.request(rounds[1]), pool), second.select(kv.request(rounds[1]), pool)
        assert one.engine is two.engine is pool[u % 4] and one.outcome == OUTCOME_CACHE_HIT
        assert first.index.match(pool[u % 4].id, first.hashes(rounds[1])) == len(first.hashes(rounds[1]))
    fresh = [conversation(100 + u, 1)[0] for u in range(20)]
    placed = [first.select(kv.request(p), pool).engine.id for p in fresh]
    assert placed == [second.select(kv.request(p), pool).engine.id for p in fresh]  # the same history


def test_new_conversations_are_placed_by_load_and_other_replicas_find_them_by_the_events() -> None:
    """With every candidate scored by its events, new conversations go where the resident load is
    lightest (8 over 4 idle engines: 2 each, where hashing alone puts 3 on one); a replica that
    did not place a conversation sends its next round where the events show it lives."""
    pool = engines(4)
    kv = Engines(pool)
    placing, other = PrefixPolicy(), PrefixPolicy()
    talks = [conversation(100 + u, 2) for u in range(8)]
    homes = []
    for rounds in talks:
        decision = placing.select(kv.request(rounds[0]), pool)
        assert decision.outcome == OUTCOME_NEW
        homes.append(decision.engine.id)
        kv.store(decision.engine.id, rounds[0])
    assert sorted(Counter(homes).values()) == [2, 2, 2, 2]
    hashed = Counter(PrefixPolicy().select(plain(rounds[0]), pool).engine.id for rounds in talks)
    assert max(hashed.values()) > 2  # without events: rendezvous hashing, lumpier
    for home, rounds in zip(homes, talks, strict=True):
        decision = other.select(kv.request(rounds[1]), pool)
        assert decision.engine.id == home and decision.outcome == OUTCOME_CACHE_HIT


def test_a_new_conversation_avoids_engines_with_more_requests_open() -> None:
    """Among the engines within the load bound, a new conversation goes to one with the fewest
    requests open now (in flight plus waiting): a cold prefill is not queued behind another."""
    checked = 0
    for u in range(12):
        pool = engines(4)
        kv = Engines(pool)
        pool[0].in_flight, pool[1].waiting, pool[2].in_flight = 1, 2, 1
        decision = PrefixPolicy().select(kv.request(conversation(200 + u, 1)[0]), pool)
        assert decision.engine is pool[3] and decision.outcome == OUTCOME_NEW
        checked += 1
    assert checked == 12


def test_new_conversations_keep_the_hash_when_an_engine_is_not_scored_by_events() -> None:
    """A candidate without live events could not show a load-placed conversation to other
    replicas: new conversations are then placed by rendezvous hashing, as without events."""
    pool = engines(4)
    kv = Engines(pool)
    kv.untrust(pool[3].id)
    fresh = [conversation(100 + u, 1)[0] for u in range(8)]
    placed = [PrefixPolicy().select(kv.request(p), pool).engine.id for p in fresh]
    assert placed == [PrefixPolicy().select(plain(p), pool).engine.id for p in fresh]


def test_cheapest_prices_each_tier_as_estimate_ttft_does() -> None:
    """`cheapest` with per-tier tokens agrees with `estimate_ttft_s` on every engine, KV-bound
    and queued ones included, with and without a CPU tier."""
    model = CostModel()
    checked = 0
    for cpu, gpu in ((800_000, 400_000), (0, 16_000), (52_000, 16_000)):
        pool = engines(4, gpu=gpu, cpu=cpu)
        for i, e in enumerate(pool):
            e.in_flight, e.waiting, e.running, e.kv_usage = 3 * i, i % 2 + i // 2, 2, 0.2 * i + 0.1
        tiers = {pool[0].id: TierTokens(gpu=900), pool[1].id: TierTokens(cpu=5000, gpu=2000),
                 pool[2].id: TierTokens(gpu=4000, storage=6000), pool[3].id: TierTokens(gpu=5500)}
        for prompt_tokens in (500, 7000, 20_000):
            costs = {e.id: estimate_ttft_s(e, prompt_tokens, 0, model, None, tiers.get(e.id)) for e in pool}
            chosen = cheapest(pool, prompt_tokens, {}, 64, model, tiers=tiers)
            assert costs[chosen.id] == pytest.approx(min(costs.values()))
            checked += 1
    assert checked == 9
