"""`prefix` (the default): send a prompt where its prefix is cached, unless load says otherwise.

Per request:

1. The prompt (as the engine sees it) is cut into chained block hashes and matched against the
   `PrefixIndex` of what each candidate engine has been sent (bounded by its KV capacity).
2. A match counts as this conversation's cache (a *hit*) only when it goes beyond what the
   other engines share: for a prompt of at least `placement_blocks` blocks the engine must hold
   all of the first `placement_blocks` (system prompt plus the start of this conversation) and
   `min_hit_blocks` more than every candidate holds; for a shorter prompt it must hold
   `min_hit_blocks` more than any second engine. So a shared system prompt, cached everywhere
   or on a few engines, never draws every user to one engine.
3. With hits, the engine with the lowest estimated time to first token (`router.cost`: queue
   plus uncached prefill) among the engines with room under the bounded-load limit takes it:
   `cache_hit` when that is the engine with the best hit, `load_fallback` when a better
   match was skipped for load.
4. Without hits the conversation is new: it is placed by rendezvous hashing (xxh3) of its
   first `placement_blocks` blocks (further when every engine shares a longer prefix) over
   the engines with room, so router workers and replicas agree without sharing state and a
   later round of the same conversation lands where the first one did. Outcome `new`.
5. The chosen engine is recorded in the index as having been sent the prompt.

Pure: no I/O, no clock; `select` reads `EngineState`s and updates only the policy's index.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from router.contracts import OUTCOME_CACHE_HIT, OUTCOME_LOAD_FALLBACK, OUTCOME_NEW
from router.cost import CostModel, cpu_share, queue_wait_s
from router.policies._hashing import bytes_hash, has_room, load_limit, rendezvous_score
from router.policies._params import require_int, require_number
from router.policies.base import Decision, EngineState, NoEngineError, RouteRequest
from router.prefix_index import PrefixIndex
from router.prompt import BYTES_PER_TOKEN, block_hashes, blocks_to_tokens, tokens_to_blocks


@dataclass(frozen=True, kw_only=True)
class PrefixConfig:
    """Parameters of `prefix`; the cost fields feed `router.cost.CostModel`."""

    placement_blocks: int = 128  # 2,048 tokens: system prompt plus the conversation's first words
    min_hit_blocks: int = 4  # 64 tokens beyond what other engines share
    load_factor: float = 1.5  # bounded loads: skip engines above this × the average load...
    load_floor: float = 4.0  # ... but never below this many requests
    prefill_s_per_token: float = CostModel.prefill_s_per_token
    cpu_load_s_per_token: float = CostModel.cpu_load_s_per_token
    max_running: int = CostModel.max_running
    queued_request_s: float = CostModel.queued_request_s
    running_request_s: float = CostModel.running_request_s
    cost: CostModel = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_int("placement_blocks", self.placement_blocks, minimum=1, maximum=1 << 20)
        require_int("min_hit_blocks", self.min_hit_blocks, minimum=1, maximum=1 << 20)
        require_number("load_factor", self.load_factor, minimum=1.0)
        require_number("load_floor", self.load_floor, minimum=0.0)
        cost = CostModel(prefill_s_per_token=self.prefill_s_per_token,
                         cpu_load_s_per_token=self.cpu_load_s_per_token, max_running=self.max_running,
                         queued_request_s=self.queued_request_s, running_request_s=self.running_request_s)
        object.__setattr__(self, "cost", cost)


def _common_blocks(matches: dict[str, int], engines: Sequence[EngineState], long_prompt: bool) -> int:
    """What the candidates share: for long prompts the match every candidate has, for short
    ones the longest match held by at least two candidates."""
    found = sorted((matches.get(e.id, 0) for e in engines), reverse=True)
    if long_prompt:
        return found[-1]
    return found[1] if len(found) > 1 else 0


class PrefixPolicy:
    """Cache-aware, load-aware routing over a bounded per-engine prefix index."""

    kind: ClassVar[str] = "prefix"

    def __init__(self, config: PrefixConfig | None = None) -> None:
        self.config = config or PrefixConfig()
        self.index = PrefixIndex()

    def select(self, request: RouteRequest, engines: Sequence[EngineState]) -> Decision:
        """The engine for `request` (see the module docstring), recorded in the index."""
        if not engines:
            raise NoEngineError("no engine to route to")
        self._sync(engines)
        hashes = block_hashes(request.prompt)
        matches = self.index.match_all(hashes) if hashes else {}
        cfg = self.config
        long_prompt = len(hashes) >= cfg.placement_blocks
        common = _common_blocks(matches, engines, long_prompt) if matches else 0
        floor = cfg.placement_blocks if long_prompt else 0
        hits = {i: m for i, m in matches.items() if m >= floor and m - common >= cfg.min_hit_blocks}
        limit = load_limit(engines, cfg.load_factor, cfg.load_floor)
        roomy = [e for e in engines if has_room(e, limit)] or list(engines)
        if hits:
            decision = self._by_cost(request, roomy, matches, hits)
        else:
            decision = self._place(hashes, request.prompt, roomy, matches, common)
        self.index.insert(decision.engine.id, hashes)
        return decision

    def _by_cost(self, request: RouteRequest, roomy: list[EngineState], matches: dict[str, int],
                 hits: dict[str, int]) -> Decision:
        """The engine with the lowest estimated TTFT; `cache_hit` when it has the best hit."""
        tokens = -(-len(request.prompt) // BYTES_PER_TOKEN)
        cost = self.config.cost
        best_cost, best = None, roomy[0]
        for engine in roomy:
            cached = min(blocks_to_tokens(matches.get(engine.id, 0)), tokens)
            share = cpu_share(engine)
            estimate = (queue_wait_s(engine, cost) + (tokens - cached) * cost.prefill_s_per_token
                        + cached * share * cost.cpu_load_s_per_token)
            if best_cost is None or (estimate, engine.id) < best_cost:
                best_cost, best = (estimate, engine.id), engine
        chosen = matches.get(best.id, 0)
        outcome = OUTCOME_CACHE_HIT if chosen >= max(hits.values()) else OUTCOME_LOAD_FALLBACK
        return Decision(engine=best, outcome=outcome, matched_tokens=min(blocks_to_tokens(chosen), tokens))

    def _place(self, hashes: list[int], prompt: bytes, roomy: list[EngineState], matches: dict[str, int],
               common: int) -> Decision:
        """A new conversation: the rendezvous home of its placement key among `roomy`."""
        key = self.placement_key(hashes, prompt, common)
        home = max(roomy, key=lambda e: rendezvous_score(e.id, key))
        tokens = -(-len(prompt) // BYTES_PER_TOKEN)
        matched = min(blocks_to_tokens(matches.get(home.id, 0)), tokens)
        return Decision(engine=home, outcome=OUTCOME_NEW, matched_tokens=matched)

    def placement_key(self, hashes: Sequence[int], prompt: bytes, common: int = 0) -> int:
        """The chained hash of the prompt's first `placement_blocks` blocks (or of all its blocks,
        or past `common` shared blocks when that is longer); the prompt's bytes' hash when it
        has no full block."""
        if not hashes:
            return bytes_hash(prompt)
        depth = max(self.config.placement_blocks, common + self.config.min_hit_blocks)
        return hashes[min(depth, len(hashes)) - 1]

    def _sync(self, engines: Sequence[EngineState]) -> None:
        """Mirror each candidate's KV capacity (GPU plus CPU tier) in the index."""
        index = self.index
        for engine in engines:
            blocks = tokens_to_blocks(engine.gpu_cache_tokens + engine.cpu_cache_tokens)
            if index.capacity(engine.id) != blocks:
                index.set_capacity(engine.id, blocks)

    def on_complete(self, request: RouteRequest, engine_id: str, ok: bool) -> None:
        """Nothing to learn: what was sent is recorded at `select`."""

    def on_engines_changed(self, engine_ids: Collection[str]) -> None:
        """Forget the index of engines that are gone."""
        self.index.retain(engine_ids)
