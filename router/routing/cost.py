"""Estimated time to first token on one engine: queue wait plus the prefill not covered by cache.

    ttft = queued × queued_request_s                    (requests that cannot start yet)
         + busy × running_request_s                     (running requests sharing each step)
         + (prompt − matched) × prefill_s_per_token     (tokens the engine must compute)
         + matched × cpu_share × cpu_load_s_per_token   (cached tokens loaded from the CPU tier)

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
for a queued request ahead (200 new tokens on a cached prefix take ~30-60 ms). Every term is
linear in the parameters, so scaling them all by one factor (an emulator's `time_scale`) does
not change which engine is cheapest.

Pure arithmetic over frozen values and an `EngineState` it only reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from router.routing.base import EngineState
from router.settings import SettingsError


@dataclass(frozen=True, kw_only=True)
class CostModel:
    """Parameters of the TTFT estimate (seconds, tokens); the prefix policy's params carry them."""

    prefill_s_per_token: float = 125e-6
    cpu_load_s_per_token: float = 1 / 200_000
    max_running: int = 256
    queued_request_s: float = 0.05
    running_request_s: float = 0.002

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


def queue_wait_s(engine: EngineState, model: CostModel) -> float:
    """Seconds a new request waits for the requests ahead and shares steps with running ones."""
    busy = min(max(engine.in_flight, engine.running), model.max_running)
    return queued_requests(engine, model) * model.queued_request_s + busy * model.running_request_s


def prefill_s(prompt_tokens: int, matched_tokens: int, share_on_cpu: float, model: CostModel) -> float:
    """Seconds to compute the uncached tokens and load the cached ones held in the CPU tier."""
    matched = min(max(matched_tokens, 0), prompt_tokens)
    computed = (prompt_tokens - matched) * model.prefill_s_per_token
    return computed + matched * share_on_cpu * model.cpu_load_s_per_token


def estimate_ttft_s(engine: EngineState, prompt_tokens: int, matched_tokens: int, model: CostModel) -> float:
    """Estimated seconds to first token for a prompt of `prompt_tokens` on `engine`, of which
    `matched_tokens` are in the engine's cache."""
    return queue_wait_s(engine, model) + prefill_s(prompt_tokens, matched_tokens, cpu_share(engine), model)


def cheapest(engines: Sequence[EngineState], prompt_tokens: int, matched_blocks: Mapping[str, int],
             block_tokens: int, model: CostModel, prefer: str | None = None) -> EngineState:
    """The engine with the lowest `estimate_ttft_s` (ties to the engine `prefer` names, then to
    the smallest id), where engine e holds `matched_blocks[e.id]` blocks of `block_tokens`
    tokens. The same arithmetic as `estimate_ttft_s`, inlined for the hot path (the tests hold
    the two equal)."""
    prefill, cpu_load = model.prefill_s_per_token, model.cpu_load_s_per_token
    slots, queued_s, running_s = model.max_running, model.queued_request_s, model.running_request_s
    get = matched_blocks.get
    best, best_rank, chosen = 0.0, "", engines[0]
    for e in engines:
        cached = get(e.id, 0) * block_tokens
        cached = prompt_tokens if cached > prompt_tokens else (cached if cached > 0 else 0)
        gpu, cpu = e.gpu_cache_tokens, e.cpu_cache_tokens
        share = (cpu - gpu) / cpu if cpu > gpu else 0.0
        estimate = _queue_s(e, slots, queued_s, running_s) + (
            (prompt_tokens - cached) * prefill + cached * share * cpu_load)
        rank = "" if e.id == prefer else e.id  # the preferred engine sorts first among equals
        if chosen is e or estimate < best or (estimate == best and rank < best_rank):
            best, best_rank, chosen = estimate, rank, e
    return chosen


def _queue_s(e: EngineState, slots: int, queued_s: float, running_s: float) -> float:
    """`queue_wait_s` without the model lookups."""
    in_flight, waiting = e.in_flight, e.waiting
    queued = in_flight - slots if in_flight - slots > waiting else waiting
    busy = in_flight if in_flight > e.running else e.running
    return (queued if queued > 0 else 0) * queued_s + (busy if busy < slots else slots) * running_s
