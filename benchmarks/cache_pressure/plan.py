"""The sweep's points: engines x users x GPU cache x CPU tier, on issue 24's multi-round QA.

Workload (issue 24): a 1,000-token system prompt shared by every user, a 4,000-token history
per user, 32-token questions, 100-token answers, 10 rounds, `x-user-id` sent; paced by
`bench.schedule` (the seed's multi-round QA pacing, steady-state ramp and warm-up included).
The issue's setup is 2 engines at 2 QPS overall; the sweep keeps that load per engine
(`qps_per_engine` 1.0), so 4 engines get 4 QPS and a point's pressure comes from its cache
size and user count, not from a lighter load.

Cache pressure: one user's conversation is 5,000-6,300 tokens, so 10 users need ~63k tokens
of cache and 40 users ~250k. At 16k tokens per engine a GPU tier holds two conversations
(and admits at most two running requests: the emulator reserves prompt + max_tokens); at
64k, about ten; at 400k (DESIGN.md's A100 figure) everything. The CPU tier, when on, is
LMCache-like at DESIGN.md's ratio (120 GB buffer / 400k GPU tokens = 920k / 400k = 2.3x the
GPU tier). The emulator's CPU tier takes what the GPU evicts (exclusive), so the router is
told the emulated engine's whole distinct capacity as its CPU tier, as `make demo` does
(`local/demo/stack.py`). Pure: no I/O.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from bench.workload import WorkloadSpec
from benchmarks.cache_pressure.arrivals import ARRIVALS

CPU_TIER_RATIO = 920_000 / 400_000  # DESIGN.md: LMCache 120 GB (~920k tokens) per 400k-token GPU tier
POLICIES = ("round_robin", "session", "prefix")


@dataclass(frozen=True, kw_only=True)
class Point:
    """One point of the sweep."""

    engines: int
    users: int
    gpu_cache_tokens: int
    cpu_tier: bool
    qps_per_engine: float = 1.0
    duration_s: float = 60.0  # launch window, model seconds
    system_prompt_tokens: int = 1000
    history_tokens: int = 4000
    question_tokens: int = 32
    answer_tokens: int = 100
    rounds: int = 10
    arrivals: str = "paced"  # `arrivals.ARRIVALS`: bench.schedule's cycle, or independent users

    def __post_init__(self) -> None:
        if self.arrivals not in ARRIVALS:
            raise ValueError(f"cache-pressure point: arrivals must be one of {', '.join(ARRIVALS)} "
                             f"(got {self.arrivals!r})")
        if self.engines < 1 or self.users < 1 or self.gpu_cache_tokens < 1024:
            raise ValueError(f"cache-pressure point needs >= 1 engine, >= 1 user and >= 1024 GPU "
                             f"tokens (got {self.engines}, {self.users}, {self.gpu_cache_tokens})")
        if self.qps_per_engine <= 0 or self.duration_s <= 0:
            raise ValueError(f"cache-pressure point needs qps_per_engine > 0 and duration_s > 0 "
                             f"(got {self.qps_per_engine}, {self.duration_s})")

    @property
    def qps(self) -> float:
        """Overall launch rate."""
        return self.qps_per_engine * self.engines

    @property
    def cpu_cache_tokens(self) -> int:
        """The emulated engine's CPU tier (0: none)."""
        return round(CPU_TIER_RATIO * self.gpu_cache_tokens) if self.cpu_tier else 0

    @property
    def router_cpu_tokens(self) -> int:
        """What the router is told of the CPU tier: the engine's distinct capacity (the
        emulator's tier is exclusive, the router models LMCache's write-through)."""
        return self.gpu_cache_tokens + self.cpu_cache_tokens if self.cpu_tier else 0

    def workload(self, seed: int) -> WorkloadSpec:
        return WorkloadSpec(system_prompt_tokens=self.system_prompt_tokens,
                            history_tokens=self.history_tokens, question_tokens=self.question_tokens,
                            answer_tokens=self.answer_tokens,
                            rounds=self.rounds, seed=seed)

    @property
    def label(self) -> str:
        cpu = "+cpu" if self.cpu_tier else ""
        return f"e{self.engines} u{self.users} {self.gpu_cache_tokens // 1024}k{cpu}"


def sweep(duration_s: float = 60.0, arrivals: str = "paced") -> list[Point]:
    """Issue 24's sweep: engines {2, 4} x users {10, 40} x GPU {16k, 64k, 400k} x CPU tier off/on."""
    return [Point(engines=e, users=u, gpu_cache_tokens=g, cpu_tier=c, duration_s=duration_s,
                  arrivals=arrivals)
            for e, u, g, c in itertools.product((2, 4), (10, 40), (16_384, 65_536, 400_000), (False, True))]


def quick(duration_s: float = 30.0, arrivals: str = "paced") -> list[Point]:
    """A few points for the test suite: the issue's own (2 engines, 10 users, 16k) and a roomy one."""
    return [Point(engines=2, users=10, gpu_cache_tokens=g, cpu_tier=False, duration_s=duration_s,
                  arrivals=arrivals) for g in (16_384, 400_000)]
