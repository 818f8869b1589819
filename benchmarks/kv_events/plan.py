"""The KV-events benchmark's shape: the cluster, the conversations, the phases' lengths and the
issue's targets. Pure.

`KvPlan.quick()` is the suite's version (two engines, a few users, short windows), `KvPlan()`
the full run. Every wait the harness makes is bounded by a field here.

Sizes: a conversation is a 256-token system prompt every user shares, a 1,024-token private
history and 32-token questions with 16-token answers, so a user's prompt grows from ~1.3k to
~1.6k tokens over the run. An engine's GPU cache (`gpu_cache_tokens`) holds about 0.8× what its
share of the users needs by the last warm round (four users of ~1.5k tokens on a 5k-token
cache): the first round fits, later ones evict the least recently used conversations' tails,
so a router that believes in twice the capacity (`capacity` phase) believes in blocks the
engine dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from local.autoscale.plan import MODEL

MODES: Final = ("approximate", "events")
"""`kv_events.scoring` values: the router's own prefix index, the engines' KV events."""

ACCURACY_MAX: Final = 0.02
"""|predicted - delivered| / delivered cached tokens, events mode."""
WIPED_BELIEFS_MAX: Final = 0
"""Requests sent to a just-restarted engine on the belief that it held their prefix, events mode."""
CAPACITY_MIN_RATIO: Final = 0.99
"""Hit rate with the capacity told 2x / the oracle's (the capacity told right), events mode."""
COLD_JOIN_RATIO: Final = 0.95
"""A replica started mid-run, ready without traffic: its hit rate / the warm replica's."""
COLD_JOIN_READY_S: Final = 10.0
"""... ready (its feeds out of `syncing`) within this many seconds of its start."""
DROP_POINTS: Final = 0.02
"""Hit rate with dropped and reordered events within this of the clean run's (absolute)."""
MEMORY_MAX_MB: Final = 300.0
"""Router structures' resident memory after 1M distinct prompts, events mode."""


class PlanError(ValueError):
    """An invalid plan value; the message names the field, the value and what is allowed."""

    def __init__(self, name: str, value: object, allowed: str) -> None:
        super().__init__(f"kv_events plan '{name}' {allowed} (got {value!r})")


def _require(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise PlanError(name, value, allowed)


@dataclass(frozen=True, kw_only=True)
class KvPlan:
    """Everything the harness needs; durations in wall-clock seconds of this run unless named
    `engine_`."""

    engines: int = 3
    users: int = 12
    system_prompt_tokens: int = 256
    history_tokens: int = 1024
    question_tokens: int = 32
    answer_tokens: int = 16
    warm_rounds: int = 4
    """Rounds every user sends before the restart (and in each capacity and drop run)."""
    think_s: float = 1.0
    """A user's pause between an answer and its next question; users start `think_s / users` apart."""
    time_scale: float = 0.1
    """The emulated engines' clock (`--time-scale`): 0.1 runs A100 timings 10x faster."""
    gpu_cache_tokens: int = 5120
    """Each engine's real GPU KV cache, tokens (the router is told this, or twice it)."""
    restart_window_engine_s: float = 60.0
    """The window after the restart the figures cover, in engine seconds (times `time_scale`)."""
    idle_cpu_s: float = 2.0
    """How long a router's idle CPU rate is measured before the capacity runs' load."""
    cold_join_s: float = 10.0
    """The routers' `kv_events.cold_join_s`: how long readiness may wait for the feeds' sync."""
    drop_rate: float = 0.2
    reorder_rate: float = 0.2
    memory_prompts: int = 1_000_000
    memory_engines: int = 8
    start_timeout_s: float = 30.0
    """Bound on starting one process and on every readiness wait."""
    read_timeout_s: float = 20.0
    """Client patience for one answer."""
    model: str = MODEL
    seed: int = 19
    deadline_s: float = 1200.0
    """The whole run stops by itself past this (a harness error)."""

    def __post_init__(self) -> None:
        _require(2 <= self.engines <= 8, "engines", self.engines, "must be in 2..8 (a restart needs a peer)")
        _require(2 <= self.users <= 64, "users", self.users, "must be in 2..64 (the cold join splits them)")
        for name in ("system_prompt_tokens", "history_tokens", "question_tokens", "answer_tokens",
                     "warm_rounds", "gpu_cache_tokens", "memory_prompts", "memory_engines"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value >= 1, name, value, "must be a whole number >= 1")
        for name in ("think_s", "time_scale", "restart_window_engine_s", "idle_cpu_s", "cold_join_s",
                     "start_timeout_s",
                     "read_timeout_s", "deadline_s"):
            value = getattr(self, name)
            _require(value > 0, name, value, "must be > 0")
        for name in ("drop_rate", "reorder_rate"):
            value = getattr(self, name)
            _require(0 < value < 1, name, value, "must be in (0, 1): some events lost, some arrive")

    @classmethod
    def quick(cls) -> KvPlan:
        """The suite's version: two engines, six users, two warm rounds, a 2 s restart window,
        20k prompts for the memory figure."""
        return cls(engines=2, users=6, warm_rounds=2, think_s=0.5, gpu_cache_tokens=4096,
                   restart_window_engine_s=20.0, idle_cpu_s=0.5, memory_prompts=20_000, memory_engines=4,
                   deadline_s=170.0)

    @property
    def restart_window_s(self) -> float:
        """The restart window in wall-clock seconds."""
        return self.restart_window_engine_s * self.time_scale
