"""Estimated time to first token on one engine: queue wait plus the prefill not covered by cache.

    ttft = queued × queued_request_s                    (requests that cannot start yet)
         + busy × running_request_s                     (running requests sharing each step)
         + (prompt − matched) × prefill_s_per_token     (tokens the engine must compute)
         + matched × cpu_share × cpu_load_s_per_token   (cached tokens loaded from the CPU tier)
         + evicted × prefill_s_per_token                (others' cached tokens this pushes out)

*Per tier, from the engine's KV events* (`router.routing.kv.scoring`): where the engine's own
events say which tier holds each cached block, the CPU term is exact instead of expected:

         + cached_gpu × 0                               (vLLM's prefix cache: nothing to load)
         + cached_cpu × cpu_load_s_per_token            (LMCache's CPU tier)
         + cached_storage × storage_load_s_per_token    (LMCache's local disk / storage tier)

with `storage_load_s_per_token` 1/30,000 s: a KV token is 128 KiB (DESIGN.md, Llama-3.1-8B), an
NVMe drive of a p4d reads ~4 GB/s sequentially (a PCIe gen3 x4 SSD's ceiling, ~3.5-4 GB/s): about
30k tokens/s, 6.7x slower than the CPU tier's ~200k tokens/s and still ~4x faster than the
~8k tokens/s of recompute. A GPU hit costs nothing beyond the queue and the uncached prefill.

*KV-limited admission.* vLLM admits a waiting request only when its blocks fit
(`Scheduler.schedule`, vllm/v1/core/sched/scheduler.py, leaves its waiting loop at the first
request `kv_cache_manager.allocate_slots` cannot place), so an engine whose KV cache is
nearly full runs as many sequences as fit, not `max_running`, and its queue drains only as
running requests finish. The engine says how full it is: `vllm:kv_cache_usage_perc` is
1 − free blocks / all blocks (`BlockPool.get_usage`; cached blocks no request holds count as
free). Where the free part of the GPU tier cannot hold the prompt (the engine is *KV-bound*
for it), the queue term becomes

    max(queued_request_s, kv_hold_s / (running + 1))   (the first running request to finish)
    + queued × max(queued_request_s, kv_hold_s / running)   (one more finishing per request ahead)

with `kv_hold_s` the time a request holds its blocks (prefill plus its answer): R requests at
random points of a `kv_hold_s` hold finish the first after kv_hold_s / (R + 1) on average,
then one every kv_hold_s / R. KV usage, waiting and running are the engine's own figures,
scraped alike by every router replica, so replicas price a KV-bound engine alike (only
`in_flight` is a replica's own).

`evicted` is what the prompt's uncached tokens overflow of the engine's free cache room
(`room_tokens`, from the caller's index; none given: nothing charged): on a full cache,
computing them pushes as many tokens of other conversations out, which those recompute on
their next round. Without it, moving a warm conversation off a busy engine looks as cheap
as one recompute, where on full caches it costs two.

`queued` is the larger of the engine-reported waiting count and this router's in-flight
requests beyond the engine's batch slots: both count the same queue, seen from two sides (the
engine's figure is scraped, so stale; ours is fresh but blind to other router replicas), so
taking the larger avoids counting a request twice. `cpu_share` is the share of the engine's
distinct cache held only in the CPU tier: without per-block tier knowledge, the expected
fraction of a hit that LMCache must load. LMCache's CPU tier is write-through (its
`LMCacheEngine.store` copies every chunk vLLM computed from the GPU into CPU memory objects
and puts them in the local CPU backend, lmcache/v1/cache_engine.py), so the tiers overlap:
an engine holds max(GPU, CPU) distinct tokens, not their sum, and the CPU-only part is
CPU − GPU. Defaults are DESIGN.md's A100-80GB / Llama-3.1-8B figures: ~125 µs per prefilled
token (20k tokens ~2.5 s), LMCache loads ~200k tokens/s, vLLM's 256 sequences per batch, ~50 ms
for a queued request ahead (200 new tokens on a cached prefix take ~30-60 ms), 1.2 s of KV
held per request (the seed's 100-token answers at ~12 ms per decode step; 1.0-1.5 s measured
alike on `python -m benchmarks.cache_pressure`, benchmarks/RESULTS.md).
Every term is linear in the parameters, so scaling them all by one factor (an emulator's
`time_scale`) does not change which engine is cheapest.

Pure arithmetic over frozen values and an `EngineState` it only reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from router.routing.base import EngineState
from router.routing.kv.scoring import TierTokens
from router.settings import SettingsError


@dataclass(frozen=True, kw_only=True)
class CostModel:
    """Parameters of the TTFT estimate (seconds, tokens); the prefix policy's params carry them."""

    prefill_s_per_token: float = 125e-6
    cpu_load_s_per_token: float = 1 / 200_000
    storage_load_s_per_token: float = 1 / 30_000
    max_running: int = 256
    queued_request_s: float = 0.05
    running_request_s: float = 0.002
    kv_hold_s: float = 1.2

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0:
                raise SettingsError(f"policy.params.{f.name}", value, "must be a finite number >= 0")
        if not isinstance(self.max_running, int) or self.max_running < 1:
            raise SettingsError("policy.params.max_running", self.max_running, "must be an integer >= 1")


def distinct_tokens(engine: EngineState) -> int:
    """Distinct tokens the engine's cache can hold: the larger tier (LMCache writes through)."""
    return max(engine.gpu_cache_tokens, engine.cpu_cache_tokens)


def cpu_share(engine: EngineState) -> float:
    """Fraction of the engine's distinct cache held only in the CPU tier (0 without one)."""
    total = distinct_tokens(engine)
    return (total - engine.gpu_cache_tokens) / total if total > 0 else 0.0


def queued_requests(engine: EngineState, model: CostModel) -> int:
    """Requests ahead of a new one that cannot start yet."""
    return max(engine.waiting, engine.in_flight - model.max_running, 0)


def kv_bound(engine: EngineState, prompt_tokens: int) -> bool:
    """Whether the free part of the engine's GPU KV cache (by its reported usage) cannot hold
    the prompt: it is admitted only once running requests finish."""
    return prompt_tokens > (1.0 - engine.kv_usage) * engine.gpu_cache_tokens


def queue_wait_s(engine: EngineState, model: CostModel, prompt_tokens: int = 0) -> float:
    """Seconds a new request of `prompt_tokens` waits for the requests ahead (on a KV-bound
    engine: for them and itself to get KV room) and shares steps with running ones."""
    busy = min(max(engine.in_flight, engine.running), model.max_running)
    queued, queued_s = queued_requests(engine, model), model.queued_request_s
    if not kv_bound(engine, prompt_tokens):
        return queued * queued_s + busy * model.running_request_s
    return _kv_wait_s(queued, engine.running, queued_s, model.kv_hold_s) + busy * model.running_request_s


def prefill_s(prompt_tokens: int, matched_tokens: int, share_on_cpu: float, model: CostModel) -> float:
    """Seconds to compute the uncached tokens and load the cached ones held in the CPU tier."""
    matched = min(max(matched_tokens, 0), prompt_tokens)
    computed = (prompt_tokens - matched) * model.prefill_s_per_token
    return computed + matched * share_on_cpu * model.cpu_load_s_per_token


def tiered_prefill_s(prompt_tokens: int, cached: TierTokens, model: CostModel) -> float:
    """Seconds to compute the uncached tokens and load the cached ones from the tiers the
    engine's events name (a cached count past the prompt is cut from the slowest tier)."""
    gpu, cpu, storage = _within(prompt_tokens, cached)
    computed = (prompt_tokens - gpu - cpu - storage) * model.prefill_s_per_token
    return computed + cpu * model.cpu_load_s_per_token + storage * model.storage_load_s_per_token


def _within(prompt_tokens: int, cached: TierTokens) -> tuple[int, int, int]:
    """The tiers' tokens, fastest first, cut to the prompt."""
    gpu = min(max(cached.gpu, 0), prompt_tokens)
    cpu = min(max(cached.cpu, 0), prompt_tokens - gpu)
    return gpu, cpu, min(max(cached.storage, 0), prompt_tokens - gpu - cpu)


def eviction_s(prompt_tokens: int, matched_tokens: int, room_tokens: int | None, model: CostModel) -> float:
    """Seconds of recompute the prompt's uncached tokens push onto other conversations: what
    they overflow of the engine's free cache room (None: not known, nothing charged)."""
    if room_tokens is None:
        return 0.0
    uncached = prompt_tokens - min(max(matched_tokens, 0), prompt_tokens)
    return max(uncached - max(room_tokens, 0), 0) * model.prefill_s_per_token


def estimate_ttft_s(engine: EngineState, prompt_tokens: int, matched_tokens: int, model: CostModel,
                    room_tokens: int | None = None, tiers: TierTokens | None = None) -> float:
    """Estimated seconds to first token for a prompt of `prompt_tokens` on `engine`, of which
    `matched_tokens` are in the engine's cache, plus the recompute it causes others where its
    cache has `room_tokens` free (None: not known). With `tiers` (the engine's events), the
    cached tokens are those, each tier at its own reload cost, and `matched_tokens` is ignored."""
    if tiers is not None:
        matched_tokens = sum(_within(prompt_tokens, tiers))
        prefill = tiered_prefill_s(prompt_tokens, tiers, model)
    else:
        prefill = prefill_s(prompt_tokens, matched_tokens, cpu_share(engine), model)
    return (queue_wait_s(engine, model, prompt_tokens) + prefill
            + eviction_s(prompt_tokens, matched_tokens, room_tokens, model))


def cheapest(engines: Sequence[EngineState], prompt_tokens: int, matched_blocks: Mapping[str, int],
             block_tokens: int, model: CostModel, prefer: str | None = None,
             room_blocks: Mapping[str, int] | None = None,
             tiers: Mapping[str, TierTokens] | None = None) -> EngineState:
    """The engine with the lowest `estimate_ttft_s` (ties to the engine `prefer` names, then to
    the smallest id), where engine e holds `matched_blocks[e.id]` blocks of `block_tokens`
    tokens, or, when `tiers` has it, the tokens its events name per tier, and has room for
    `room_blocks[e.id]` more (no mapping: room not known). The same arithmetic as
    `estimate_ttft_s`, inlined for the hot path (the tests hold the two equal)."""
    prefill, cpu_load, slots = model.prefill_s_per_token, model.cpu_load_s_per_token, model.max_running
    queued_s, running_s, hold_s = model.queued_request_s, model.running_request_s, model.kv_hold_s
    get, room_of, tier_of = matched_blocks.get, (room_blocks or {}).get, (tiers or {}).get
    best, best_rank, chosen = 0.0, "", engines[0]
    for e in engines:
        gpu, cpu = e.gpu_cache_tokens, e.cpu_cache_tokens
        held = tier_of(e.id)
        if held is None:  # the router's estimate: the CPU tier's expected share of the hit
            cached = get(e.id, 0) * block_tokens
            cached = prompt_tokens if cached > prompt_tokens else (cached if cached > 0 else 0)
            reload = cached * ((cpu - gpu) / cpu if cpu > gpu else 0.0) * cpu_load
        else:  # the engine's events: each tier at its own cost (`tiered_prefill_s`)
            on_gpu, on_cpu, on_storage = _within(prompt_tokens, held)
            cached = on_gpu + on_cpu + on_storage
            reload = on_cpu * cpu_load + on_storage * model.storage_load_s_per_token
        uncached = prompt_tokens - cached
        in_flight, waiting, running = e.in_flight, e.waiting, e.running  # the queue (`queue_wait_s`)
        queued = in_flight - slots if in_flight - slots > waiting else waiting
        queued = queued if queued > 0 else 0
        busy = in_flight if in_flight > running else running
        steps = (busy if busy < slots else slots) * running_s
        if prompt_tokens > (1.0 - e.kv_usage) * gpu:  # KV-bound
            estimate = _kv_wait_s(queued, running, queued_s, hold_s) + steps
        else:
            estimate = queued * queued_s + steps
        estimate += uncached * prefill + reload  # the prefill (`prefill_s`)
        room = room_of(e.id)  # the eviction (`eviction_s`)
        if room is not None:
            over = uncached - (room * block_tokens if room > 0 else 0)
            estimate += over * prefill if over > 0 else 0.0
        rank = "" if e.id == prefer else e.id  # the preferred engine sorts first among equals
        if chosen is e or estimate < best or (estimate == best and rank < best_rank):
            best, best_rank, chosen = estimate, rank, e
    return chosen


def _kv_wait_s(queued: int, running: int, queued_s: float, hold_s: float) -> float:
    """The KV-bound queue term of `queue_wait_s`."""
    running = running if running > 1 else 1
    first, then = hold_s / (running + 1), hold_s / running
    return (first if first > queued_s else queued_s) + queued * (then if then > queued_s else queued_s)
