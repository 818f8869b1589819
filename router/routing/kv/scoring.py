"""What each candidate engine really caches of one prompt, by its KV events (pure).

The shell hands the policy the request's token ids as the engine tokenises them
(`router.shell.tokenize`) and the `KvView` with the time (`RouteRequest.kv`, `.now`). For each
candidate whose feed is live, `score` keys the ids (`keys.block_keys`, under the LoRA adapter's
name when the request names one) and asks the residency index how the engine would serve them
(`ResidencyIndex.match`: the GPU's leading run, then what LMCache's CPU or storage tiers
continue it with). Every other candidate is named with the reason it cannot be scored so
(`contracts.kv_events.FALLBACK_REASONS`): the policy scores it by its own estimate, except one
whose publisher was lost after it was reached (`cold`): as holding nothing, since the loss is
most likely its restart, which empties the cache the estimate believes in.

The count is what vLLM would report as hit: at most the prompt's whole blocks before its last
token (vLLM always computes the last token: `KVCacheManager.get_computed_blocks` looks up
`num_tokens - 1` tokens, vllm/v1/core/kv_cache_manager.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.kv_events import FALLBACK_NO_TOKENS, FALLBACK_UNFOLLOWED, KV_BLOCK_SIZE
from router.routing.kv.events import Tier
from router.routing.kv.feed import FeedState, KvView
from router.routing.kv.keys import block_keys


@dataclass(frozen=True, slots=True)
class TierTokens:
    """Tokens of a prompt an engine holds, by the tier that would supply them."""

    gpu: int = 0
    cpu: int = 0
    storage: int = 0

    @property
    def total(self) -> int:
        return self.gpu + self.cpu + self.storage


NOTHING = TierTokens()


@dataclass(frozen=True, slots=True)
class KvScores:
    """Per candidate: what its events say it holds (`exact`), or why it has no such score
    (`fallbacks`: engine id -> reason). Every candidate is in exactly one of the two."""

    exact: dict[str, TierTokens]
    fallbacks: dict[str, str]
    prompt_tokens: int
    """The prompt's tokens as the engine counts them (0: not known)."""
    cold: frozenset[str] = frozenset()
    """Fallbacks whose publisher was lost (`EngineFeed.lost`): scored as holding nothing, not by
    the router's estimate, since the loss is most likely the engine's restart."""


def score(view: KvView, engines: Sequence[str], token_ids: Sequence[int] | None, now: float,
          lora_name: str | None = None) -> KvScores:
    """Each of `engines` scored by its events at `now`, or named with the reason it is not."""
    keys: tuple[int, ...] | None = None
    exact: dict[str, TierTokens] = {}
    fallbacks: dict[str, str] = {}
    cold: set[str] = set()
    for engine in engines:
        feed = view.feeds.get(engine)
        if feed is None or engine not in view.index.engines:
            fallbacks[engine] = FALLBACK_UNFOLLOWED
            continue
        state = feed.state(now)
        if state is not FeedState.LIVE:
            fallbacks[engine] = state.value
            if feed.lost(now):
                cold.add(engine)
            continue
        if token_ids is None:
            fallbacks[engine] = FALLBACK_NO_TOKENS
            continue
        if keys is None:  # only what vLLM can hit: the whole blocks before the last token
            usable = max(0, len(token_ids) - 1) // KV_BLOCK_SIZE * KV_BLOCK_SIZE
            keys = block_keys(token_ids[:usable], lora_name)
        blocks = view.index.match(engine, keys).blocks
        exact[engine] = TierTokens(gpu=blocks.get(Tier.GPU, 0) * KV_BLOCK_SIZE,
                                   cpu=blocks.get(Tier.CPU, 0) * KV_BLOCK_SIZE,
                                   storage=blocks.get(Tier.STORAGE, 0) * KV_BLOCK_SIZE)
    return KvScores(exact, fallbacks, len(token_ids) if token_ids is not None else 0, frozenset(cold))


def room_tokens(view: KvView, engine: str) -> int:
    """Tokens the engine's cache can take before it evicts, by its events: the roomier of its
    GPU and CPU tiers (LMCache writes every block through to CPU, so what the GPU evicts stays
    cached there while the CPU tier has room: `cost.distinct_tokens`)."""
    index = view.index
    return max((index.capacity(engine, tier) - index.size(engine, tier)) * KV_BLOCK_SIZE
               for tier in (Tier.GPU, Tier.CPU))
