"""`prefix` (the default): send a prompt where its prefix is cached, unless load says otherwise.

Per request:

1. The prompt (as the engine sees it) is cut into chained block hashes and matched against the
   `PrefixIndex` of what each candidate engine has been sent (bounded by its KV capacity).
   Index blocks are `block_tokens` long: 64 tokens by default, four of vLLM's 16-token blocks,
   which makes hashing and the index 4× cheaper in time and memory for a match precision far
   below what changes a routing decision (64 tokens ≈ 8 ms of prefill); 16 mirrors vLLM.
   A request for a LoRA adapter hashes from a seed of the adapter's name (keyed by base model
   and adapter: vLLM's cached blocks are the adapter's own), so it matches only that adapter's
   prompts, and its new conversations are placed by adapter, not by prompt (step 4).
2. A candidate's match counts as this conversation's cache (a *hit*) only when it goes beyond
   what is shared: for a prompt of at least `placement_tokens` the engine must hold all of the
   first `placement_tokens` (system prompt plus the start of this conversation) and
   `min_hit_tokens` more than every candidate holds; for a shorter prompt it must hold
   `min_hit_tokens` more than any second candidate. Shared too: a prefix that at least two
   conversations fork from (`_forks.ForkPoints`), and the whole match of a *new* conversation,
   one whose prompt continues past the best match without containing the end of any prompt
   sent before (the index's tips): what it matches is someone else's prompt, typically the
   system prompt with another user's first turn. So a shared system prompt, cached everywhere
   or on one engine, never draws new users to its first holder, from the second user on.
3. With hits, the engine with the lowest estimated time to first token (`router.routing.cost`: queue,
   drained as running requests finish where the engine's scraped KV usage leaves no room for
   the prompt, plus uncached prefill, plus what that prefill evicts from a full cache) takes
   it, among the engines with room under the bounded-load limit
   plus the engines holding its best hit whatever their load: moving a warm conversation costs
   a recompute of its prefix (seconds for 20k tokens), waiting behind a few requests costs far
   less, so a load bound alone never drops the holder from the comparison. One exception, for
   moves that cost little: when every holder is above the queue bound, or the conversation's
   home is *crowded* (its resident load, below, above `move_factor` × the mean and at least
   `move_floor` requests: two heavy users stacked, not the noise of a few light ones, nor a
   1.5x gap between 3 requests and 2), and an engine that would relieve it holds all
   but `move_tokens` of the prompt (typically: it holds the hot system prompt and the
   conversation's own part is short), the conversation is re-placed as in step 4 among such
   engines. `cache_hit` when the chosen engine holds the best hit, `load_fallback` when a
   better match lost on cost or load.
4. Without hits the conversation is new: it is placed by rendezvous hashing (xxh3) of its
   first `placement_tokens` over the engines with room, a pure function of the prompt, so
   router workers and replicas agree without sharing state, and a later round of the same
   conversation lands where the first one did. Outcome `new`. When those first tokens are
   known to be shared (a hot system prompt longer than the window), the key lies past the
   shared prefix, which already depends on what this router has seen; there the engines are
   also held within `rate_factor` × the mean resident load (1.0: at most the mean; the least
   loaded always qualifies), so new users behind a hot prompt spread by what each engine is
   already serving. Scoring by the engines' KV events (every candidate's feed live), the
   same load bound holds for every new conversation: wherever it lands, the engine's events
   show every replica where it lives from its first request on, so a placement by this
   replica's load no longer splits its cache between replicas (issue 24: hashing 10-40
   conversations over 2-4 engines is lumpy); of those engines, only the ones with the fewest
   requests open now (in flight plus waiting) are candidates, so a cold prefill does not queue
   behind another one. The same holds for a router that is the stack's only one
   (`sole_router`: one replica, one worker, no router HPA), scoring by its own index: every later
   round reaches this index, which recorded where the first one went. Its cost: a restarted
   router's index is empty (and a bounded index forgets its oldest conversations), so such a
   conversation is placed anew (by load, not at its old hash home) and recomputes its history
   once. A new conversation of a LoRA adapter is placed by
   `_lora.LoraPlacement` among those engines instead: where the adapter is resident, else a free
   slot, else an idle least-recently-used adapter, never evicting one in use (its docstring has
   the rules).
5. The chosen engine is recorded in the index as having been sent the prompt, and the request
   in the engine's *resident load* (`_residents.Residents`: per conversation its requests
   among the last `rate_window` per engine, counted where it lives and moving with it): the
   load a heavy user brings between its requests, where the queue shows only the requests
   open right now.

Pure: no I/O, no clock; `select` reads `EngineState`s and updates only the policy's state.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

from contracts import OUTCOME_CACHE_HIT, OUTCOME_LOAD_FALLBACK, OUTCOME_NEW
from contracts.kv_events import KV_SCORING_APPROXIMATE, KV_SCORING_EVENTS
from router.routing.base import Decision, EngineState, NoEngineError, RouteRequest
from router.routing.cost import CostModel, cheapest, distinct_tokens
from router.routing.kv.scoring import NOTHING
from router.routing.policies import _events
from router.routing.policies._forks import ForkPoints
from router.routing.policies._hashing import bytes_hash, load_limit, rendezvous_home
from router.routing.policies._lora import LoraPlacement, default_slots
from router.routing.policies._params import require_int, require_number
from router.routing.policies._residents import Residents
from router.routing.prefix_index import PrefixIndex
from router.routing.prompt import BLOCK_TOKENS, BYTES_PER_TOKEN, block_hashes
from router.settings import SettingsError


@dataclass(frozen=True, kw_only=True)
class PrefixConfig:
    """Parameters of `prefix`; the cost fields feed `router.routing.cost.CostModel`."""

    block_tokens: int = 4 * BLOCK_TOKENS  # index granularity: 64 tokens = 4 vLLM blocks
    placement_tokens: int = 2048  # system prompt plus the conversation's first words
    min_hit_tokens: int = 128  # a hit holds this much more than the other engines share
    load_factor: float = 1.5  # bounded loads: skip engines above this × the average load...
    load_floor: float = 4.0  # ... but never below this many requests
    rate_window: int = 50  # resident load: requests among the last this-many per engine...
    rate_factor: float = 1.0  # ... new users behind a hot prefix go where it is within this × mean
    move_factor: float = 1.4  # a home above this × the mean resident load is crowded...
    # (rate_factor, move_factor) were (1.25, 1.5): `python -m benchmarks.hot_prefix_replay --seeds
    # 100` meets spread <= 1.3 with at most 2 moves in 78 seeds, was 68 (benchmarks/RESULTS.md)
    move_floor: float = 16.0  # ... once it carries this many recent requests (fewer: chance)...
    move_tokens: int = 1024  # ... and loses a conversation that another engine lacks this much of
    sole_router: bool = False  # this policy object routes all of the stack's traffic (one replica,
    # one worker, no router HPA: `infra.serving.router_policy` sets it): its index sees every placement
    prefill_s_per_token: float = CostModel.prefill_s_per_token
    cpu_load_s_per_token: float = CostModel.cpu_load_s_per_token
    storage_load_s_per_token: float = CostModel.storage_load_s_per_token
    max_running: int = CostModel.max_running
    queued_request_s: float = CostModel.queued_request_s
    running_request_s: float = CostModel.running_request_s
    kv_hold_s: float = CostModel.kv_hold_s
    cost: CostModel = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_int("block_tokens", self.block_tokens, minimum=BLOCK_TOKENS, maximum=1 << 16)
        if self.block_tokens % BLOCK_TOKENS:
            raise SettingsError("policy.params.block_tokens", self.block_tokens,
                                f"must be a multiple of {BLOCK_TOKENS} (vLLM's block size)")
        require_int("placement_tokens", self.placement_tokens, minimum=1, maximum=1 << 24)
        require_int("min_hit_tokens", self.min_hit_tokens, minimum=1, maximum=1 << 24)
        require_number("load_factor", self.load_factor, minimum=1.0)
        require_number("load_floor", self.load_floor, minimum=0.0)
        require_int("rate_window", self.rate_window, minimum=1, maximum=1 << 20)
        require_number("rate_factor", self.rate_factor, minimum=1.0)
        require_number("move_factor", self.move_factor, minimum=1.0)
        require_number("move_floor", self.move_floor, minimum=0.0)
        require_int("move_tokens", self.move_tokens, minimum=0, maximum=1 << 24)
        if not isinstance(self.sole_router, bool):
            raise SettingsError("policy.params.sole_router", self.sole_router, "must be true or false")
        cost = CostModel(prefill_s_per_token=self.prefill_s_per_token,
                         cpu_load_s_per_token=self.cpu_load_s_per_token,
                         storage_load_s_per_token=self.storage_load_s_per_token, max_running=self.max_running,
                         queued_request_s=self.queued_request_s, running_request_s=self.running_request_s,
                         kv_hold_s=self.kv_hold_s)
        object.__setattr__(self, "cost", cost)

    @property
    def block_bytes(self) -> int:
        """Bytes per index block."""
        return self.block_tokens * BYTES_PER_TOKEN

    @property
    def placement_blocks(self) -> int:
        """Index blocks covering `placement_tokens` (rounded up)."""
        return -(-self.placement_tokens // self.block_tokens)

    @property
    def move_blocks(self) -> int:
        """Index blocks covering `move_tokens` (rounded down)."""
        return self.move_tokens // self.block_tokens

    @property
    def min_hit_blocks(self) -> int:
        """Index blocks covering `min_hit_tokens` (rounded up)."""
        return -(-self.min_hit_tokens // self.block_tokens)


class _Seen(NamedTuple):
    """What `select` found for one prompt."""

    prompt: bytes
    hashes: list[int]
    matches: dict[str, int]  # engine id -> blocks of the prompt it holds
    common: int  # blocks no engine holds as its own
    best: int  # blocks of the best hit (0: none)
    tokens: int  # the prompt's tokens
    held: _events.Held | None  # what the engines' events say (None: scoring by the index alone)


def _common_blocks(matches: dict[str, int], engines: Sequence[EngineState], long_prompt: bool) -> int:
    """What the candidates share: for long prompts the match every candidate has, for short
    ones the longest match held by at least two candidates."""
    if long_prompt:
        if len(matches) < len(engines):  # some candidate holds nothing
            return 0
        return min(matches.get(e.id, 0) for e in engines)
    found = sorted((matches.get(e.id, 0) for e in engines), reverse=True)
    return found[1] if len(found) > 1 else 0


class PrefixPolicy:
    """Cache-aware, load-aware routing over a bounded per-engine prefix index."""

    kind: ClassVar[str] = "prefix"

    def __init__(self, config: PrefixConfig | None = None) -> None:
        self.config = config or PrefixConfig()
        self.index = PrefixIndex()
        self.forks = ForkPoints()
        self.residents = Residents(horizon=self.config.rate_window)
        self.lora = LoraPlacement()
        self._block_bytes = self.config.block_bytes
        self._placement = self.config.placement_blocks
        self._min_hit = self.config.min_hit_blocks
        self._move = self.config.move_blocks
        self._encoded: dict[str, bytes] = {}  # engine id -> UTF-8, for rendezvous hashing
        self._capacity_tokens: dict[str, int] = {}  # engine id -> cache tokens last mirrored

    def select(self, request: RouteRequest, engines: Sequence[EngineState]) -> Decision:
        """The engine for `request` (see the module docstring), recorded in the index."""
        if not engines:
            raise NoEngineError("no engine to route to")
        self._sync(engines)
        hashes = self.hashes(request.prompt, request.model if request.adapter else None)
        matches = self.index.match_all(hashes) if hashes else {}
        seen_blocks = max(matches.values(), default=0)  # what the index itself has seen of it
        cfg = self.config
        held = _events.held(request, engines, matches, len(hashes), cfg.block_tokens)
        if held is not None:
            matches = held.matches
        long_prompt = len(hashes) >= self._placement
        common, own = self._common(hashes, matches, engines, long_prompt, seen_blocks)
        floor, min_hit = (self._placement if long_prompt else 0), self._min_hit
        best = max((m for e in engines if (m := matches.get(e.id, 0)) >= floor and m - common >= min_hit),
                   default=0)
        previous = hashes[own - 1] if own else None  # where this conversation's last prompt ended
        limit = load_limit(engines, cfg.load_factor, cfg.load_floor)
        roomy = [e for e in engines if e.in_flight + e.waiting + 1 <= limit] or list(engines)
        tokens = held.tokens if held is not None else -(-len(request.prompt) // BYTES_PER_TOKEN)
        if best:
            seen = _Seen(request.prompt, hashes, matches, common, best, tokens, held)
            engine, outcome = self._warm(seen, engines, (roomy, limit), previous)
        else:
            past = common + self._min_hit > self._placement  # keyed past a shared prefix, or
            # every replica sees where it lands: by the events, or there is no other replica
            visible = cfg.sole_router or (held is not None and not held.fallbacks)
            homes = self.residents.fitting(roomy, cfg.rate_factor) if past or visible else roomy  # weigh load
            if visible:  # and of those, the ones with the fewest requests open now
                fewest = min(e.in_flight + e.waiting for e in homes)
                homes = [e for e in homes if e.in_flight + e.waiting == fewest]
            if request.adapter:  # resident, else a free slot, else an idle LRU (policies/_lora.py)
                engine = self.lora.place(request.model, homes, engines)
            else:
                key = self.placement_key(hashes, request.prompt, common)
                engine = rendezvous_home(homes, key, self._encoded)
            outcome = OUTCOME_NEW
        matched = matches.get(engine.id, 0)
        if request.adapter:
            self.lora.record(engine, request.model, default_slots(engines))
        tip = self.index.insert(engine.id, hashes)  # conversations behind a shared prefix are tracked:
        self.residents.record(engine.id, previous, tip, start=common > 0)  # only they can move cheaply
        self.forks.record(hashes, matched)
        return _decision(engine, outcome, held, min(matched * cfg.block_tokens, tokens), tokens)

    def _warm(self, seen: _Seen, engines: Sequence[EngineState], room: tuple[list[EngineState], float],
              previous: int | None) -> tuple[EngineState, str]:
        """Step 3 of the module docstring: where a prompt with a hit goes, and the outcome;
        `room`: the engines under the queue bound, and that bound."""
        matches, best, cfg = seen.matches, seen.best, self.config
        get, (roomy, limit) = matches.get, room
        if all(get(e.id, 0) < best for e in roomy):  # every holder above the queue bound
            targets = roomy
        elif previous is not None:
            targets = self.residents.relief(previous, roomy, cfg.move_factor, cfg.move_floor)
        else:
            targets = []
        if targets:
            near = best - self._move
            cheap = [e for e in targets if near <= get(e.id, 0) < best]
            if cheap:
                key = self.placement_key(seen.hashes, seen.prompt, seen.common)
                return rendezvous_home(cheap, key, self._encoded), OUTCOME_LOAD_FALLBACK
        compared = [e for e in engines if e.in_flight + e.waiting + 1 <= limit or get(e.id, 0) >= best]
        free = self.index.free_blocks([e.id for e in compared])  # on a full cache a move evicts others
        held = seen.held
        if held is not None:  # the engines' events know their room better
            free.update((e, r) for e, r in held.room.items() if e in free)
        home = self.residents.home(previous) if previous is not None else None  # wins a tie: a
        engine = cheapest(compared, seen.tokens, matches, cfg.block_tokens, cfg.cost, home, free,  # stays
                          held.tiers if held is not None else None)
        return engine, OUTCOME_CACHE_HIT if get(engine.id, 0) >= best else OUTCOME_LOAD_FALLBACK

    def _common(self, hashes: list[int], matches: dict[str, int], engines: Sequence[EngineState],
                long_prompt: bool, seen: int | None = None) -> tuple[int, int]:
        """Blocks of this prompt that are no engine's own (what the candidates share, or a hot
        prefix many conversations fork from (`_forks`), whichever is longer), and the depth of
        the deepest tip past them (0: none). A prompt that continues past the best match with no
        tip in it is a new conversation forking off other prompts: its whole match is common;
        unless the index itself has seen no more of it than is shared (`seen`: the index's best
        match, None: `matches` are the index's; less: the match comes from the engines' events, on
        a router that just joined or for traffic another replica sent), where no tip can be, and
        the match is the engine's to keep."""
        if not matches:
            return 0, 0
        best = max(matches.values())
        shared = max(_common_blocks(matches, engines, long_prompt), self.forks.shared_depth(hashes, best))
        if shared >= best:
            return shared, 0
        own = self.index.deepest_tip(hashes, shared, best)
        known = seen is None or seen > shared
        return (best, 0) if not own and best < len(hashes) and known else (shared, own)

    def hashes(self, prompt: bytes, adapter: str | None = None) -> list[int]:
        """The prompt's chained index-block hashes, keyed by the LoRA adapter when it names one
        (an adapter's KV is its own: the same prompt under another adapter is not a hit)."""
        return block_hashes(prompt, self._block_bytes, adapter)

    def placement_key(self, hashes: Sequence[int], prompt: bytes, common: int = 0) -> int:
        """Where a new conversation lives: the chained hash of its first `placement_tokens`
        (of all its blocks when shorter; past `common` shared blocks when that is longer), or
        of its bytes when it has no full block."""
        if not hashes:
            return bytes_hash(prompt)
        depth = max(self._placement, common + self._min_hit)
        return hashes[min(depth, len(hashes)) - 1]

    def _sync(self, engines: Sequence[EngineState]) -> None:
        """Mirror each candidate's distinct cache capacity in the index (`cost.distinct_tokens`:
        the larger of its GPU and LMCache CPU tiers, which overlap)."""
        known = self._capacity_tokens
        for engine in engines:
            tokens = distinct_tokens(engine)
            if known.get(engine.id) != tokens or engine.id not in self._encoded:
                self.index.set_capacity(engine.id, tokens // self.config.block_tokens)
                known[engine.id] = tokens
                self._encoded[engine.id] = engine.id.encode()
                self.residents.set_horizon(self.config.rate_window * len(known))

    def on_complete(self, request: RouteRequest, engine_id: str, ok: bool) -> None:
        """A LoRA request ended (the adapter's open requests on the engine); the rest was
        recorded at `select`."""
        if request.adapter:
            self.lora.done(engine_id, request.model)

    def on_engines_changed(self, engine_ids: Collection[str]) -> None:
        """Forget the index and the resident load of engines that are gone."""
        self.index.retain(engine_ids)
        self.residents.retain(engine_ids)
        keep = set(engine_ids)
        self.lora.retain(keep)
        self._encoded = {i: b for i, b in self._encoded.items() if i in keep}
        self._capacity_tokens = {i: t for i, t in self._capacity_tokens.items() if i in keep}
        self.residents.set_horizon(self.config.rate_window * max(len(self._capacity_tokens), 1))


def _decision(engine: EngineState, outcome: str, held: _events.Held | None, matched_tokens: int,
              tokens: int) -> Decision:
    """The decision, with what the chosen engine is predicted to hit per tier: by its events
    when it was scored so, else the index's estimate split as the cost model expects."""
    if held is None:
        tiers = _events.estimated(matched_tokens, 1, tokens, engine)
        return Decision(engine=engine, outcome=outcome, matched_tokens=matched_tokens,
                        tier_tokens=(tiers.gpu, tiers.cpu, tiers.storage))
    tiers = held.tiers.get(engine.id, NOTHING)
    gpu = min(tiers.gpu, tokens)
    cpu = min(tiers.cpu, tokens - gpu)
    storage = min(tiers.storage, tokens - gpu - cpu)
    return Decision(engine=engine, outcome=outcome, matched_tokens=gpu + cpu + storage,
                    tier_tokens=(gpu, cpu, storage),
                    scored_by=KV_SCORING_EVENTS if engine.id in held.exact else KV_SCORING_APPROXIMATE,
                    fallbacks=held.fallbacks)
