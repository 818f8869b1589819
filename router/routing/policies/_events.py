"""The `prefix` policy's view of one prompt when scoring by the engines' KV events (pure).

Per candidate the policy needs two figures: how many of its index blocks the engine holds
(`matches`: what the hit rules of `prefix` compare: placement, shared prefixes, forks) and how
many of the prompt's tokens it holds in which tier (`tiers`: what the cost model prices). An
engine whose events are live gives both from its events (`router.routing.kv.scoring`): the
exact tokens, and as index blocks the same share of the prompt's bytes (the index cuts bytes,
the engine tokens; for the emulator, 4 bytes a token, the two agree exactly). Any other
candidate keeps the index's estimate, its tokens split as the cost model expects them
(`estimated`: the CPU tier's share of the engine's distinct cache, `cost.cpu_share`), except one
whose publisher was just lost (`KvScores.cold`): it holds nothing as far as the policy knows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from router.routing.base import EngineState, RouteRequest
from router.routing.cost import cpu_share
from router.routing.kv.scoring import TierTokens, room_tokens, score
from router.routing.prompt import BYTES_PER_TOKEN


@dataclass(frozen=True, slots=True)
class Held:
    """One prompt against every candidate, in event mode."""

    matches: dict[str, int]
    """Index blocks each candidate holds (no entry: none)."""
    tiers: dict[str, TierTokens]
    """Tokens each candidate holds, by tier, in the engine's tokens."""
    tokens: int
    """The prompt's tokens (the engine's count when the ids are known)."""
    exact: frozenset[str]
    """The candidates scored by their events."""
    fallbacks: dict[str, str]
    """The others, with why."""
    room: dict[str, int]
    """Index blocks of room before eviction, for the exact candidates."""


def estimated(blocks: int, block_tokens: int, tokens: int, engine: EngineState,
              scale: float = 1.0) -> TierTokens:
    """The index's estimate of what `engine` holds (`blocks` index blocks, scaled to the engine's
    tokens by `scale`), split between GPU and CPU as the cost model expects."""
    cached = min(int(blocks * block_tokens * scale), tokens)
    cpu = round(cached * cpu_share(engine))
    return TierTokens(gpu=cached - cpu, cpu=cpu)


def held(request: RouteRequest, engines: Sequence[EngineState], approximate: Mapping[str, int],
         hashes: int, block_tokens: int) -> Held | None:
    """`request` against `engines` by their events (None: not asked for, `request.kv` unset);
    `approximate`: the index's matches, `hashes`: the prompt's index blocks."""
    view = request.kv
    if view is None:
        return None
    lora = request.model if request.adapter else None
    scores = score(view, [e.id for e in engines], request.token_ids, request.now, lora)
    approx_tokens = -(-len(request.prompt) // BYTES_PER_TOKEN)  # the index's count of the prompt
    tokens = scores.prompt_tokens or approx_tokens
    to_blocks = approx_tokens / tokens / block_tokens if tokens else 0.0  # engine tokens -> index blocks
    to_tokens = tokens / approx_tokens if approx_tokens else 0.0  # index tokens -> engine tokens
    matches: dict[str, int] = {}
    tiers: dict[str, TierTokens] = {}
    for e in engines:
        exact = scores.exact.get(e.id)
        if e.id in scores.cold:  # its publisher was lost: maybe restarted, its cache unknown
            found, tiers[e.id] = 0, TierTokens()
        elif exact is None:
            found = approximate.get(e.id, 0)
            tiers[e.id] = estimated(found, block_tokens, tokens, e, to_tokens)
        else:
            found = min(int(exact.total * to_blocks), hashes)
            tiers[e.id] = exact
        if found:
            matches[e.id] = found
    room = {e: int(room_tokens(view, e) * to_blocks) for e in scores.exact}
    return Held(matches, tiers, tokens, frozenset(scores.exact), scores.fallbacks, room)
