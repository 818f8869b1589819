"""The routing-policy Protocol and the values it works over.

A policy is plain synchronous code: no I/O, no awaits, no clock reads. The app (the I/O
shell) owns the live `EngineState`s, mutates them from health checks, metric scrapes and
request accounting, and hands the healthy ones to `select`. Policies only read them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from contracts.kv_events import KV_SCORING_APPROXIMATE

if TYPE_CHECKING:
    from router.routing.kv.feed import KvView


class NoEngineError(LookupError):
    """No engine can take the request (none healthy, or all excluded)."""


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What a policy may look at: the model, the prompt bytes as the engine sees them
    (`router.routing.prompt.prompt_text(body).encode()`), the session key if the client sent one,
    and whether `model` is a LoRA adapter (its KV is the adapter's own: vLLM adds the adapter to
    every prefix-cache block hash, `vllm/v1/core/kv_cache_utils.py` `_gen_lora_extra_hash_keys`).

    Scoring by the engines' KV events (`kv_events.scoring: events`): `kv` is the engines' own
    cache residency at `now` (the shell's clock), `token_ids` the prompt as the engines tokenise
    it (None: not known; the policy scores by its own estimate). `kv` None: scoring by events off."""

    model: str
    prompt: bytes
    session_key: str | None = None
    adapter: bool = False
    token_ids: tuple[int, ...] | None = None
    kv: KvView | None = None
    now: float = 0.0


@dataclass(slots=True, kw_only=True)
class EngineState:
    """Live state of one engine, owned and updated by the app; read-only to policies."""

    id: str  # the engine's base URL
    gpu_cache_tokens: int
    cpu_cache_tokens: int = 0
    healthy: bool = True
    in_flight: int = 0  # requests this router process has open to it
    waiting: int = 0  # engine-reported vllm:num_requests_waiting
    running: int = 0  # engine-reported vllm:num_requests_running
    kv_usage: float = 0.0  # engine-reported vllm:kv_cache_usage_perc, 0..1 (0: not reported)
    # engine-reported vllm:lora_requests_info (newest series): adapters with running / waiting
    # requests, and its GPU adapter slots (--max-loras; 0: not reported, no LoRA)
    lora_running: frozenset[str] = frozenset()
    lora_waiting: frozenset[str] = frozenset()
    max_loras: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """The chosen engine and why (an `OUTCOME_*` from contracts): `cache_hit` when the
    engine holding the request's cache (or the session's home) took it, `load_fallback` when a
    better engine was skipped for load, `new` otherwise (always for round_robin and least_load).
    `matched_tokens`: the prompt tokens the policy believes the chosen engine has cached;
    `tier_tokens` the same split by tier (gpu, cpu, storage), `scored_by` whether the chosen
    engine was scored by its KV events (`events`) or the policy's estimate (`approximate`), and
    `fallbacks` the candidates scored by the estimate although events were asked for, with why
    (`contracts.kv_events.FALLBACK_REASONS`)."""

    engine: EngineState
    outcome: str
    matched_tokens: int = 0
    tier_tokens: tuple[int, int, int] = (0, 0, 0)
    scored_by: str = KV_SCORING_APPROXIMATE
    fallbacks: Mapping[str, str] = field(default_factory=dict)


class RoutingPolicy(Protocol):
    """One routing policy. `engines` is non-empty and holds only healthy candidates."""

    kind: ClassVar[str]

    def select(self, request: RouteRequest, engines: Sequence[EngineState]) -> Decision: ...

    def on_complete(self, request: RouteRequest, engine_id: str, ok: bool) -> None: ...

    def on_engines_changed(self, engine_ids: Collection[str]) -> None: ...
