"""The demo's shape and the capacity arithmetic behind it. Pure: no I/O, no clock.

The seed (vLLM production-stack's multi-round QA) wins 3-10x in TTFT because its working set
(320 users x ~21k tokens = 6.7M) is more than the 8 engines' GPU tiers (3.2M) yet fits GPU +
LMCache CPU tiers once each user sticks to one engine; round-robin sends every user to every
engine, so each engine would need the whole working set and thrashes. The demo keeps those
ratios on 4 engines with a scaled-down workload (the defaults below; `capacity` computes it):

    tokens one user adds     P  = history 12,000 + rounds 20 x (question 32 + answer 64)
                                  + 4 template tokens x 41 messages                  = 14,084
    users in flight          U  = 15 (a new one joins whenever one finishes its 20 rounds)
    affinity, per engine     A  = system 1,000 + ceil(U / 4 engines) = 4 users x P    = 57,336
    capacity per engine      T  = headroom 2.0 x A                                    = 114,672
      of which GPU tier      G  = max(T / 2, 2 longest prompts = 2 x 15,084)          = 57,336
      and LMCache CPU tier       T - G                                                = 57,336
    round-robin, per engine  W  = system + U x P = 212,260 = 1.85 x T     -> LRU thrashes
    prefix/session, per eng. A  = 0.5 x T; even 8 users on one engine (placement is by
                                  hash, so lumpy) need 113,672 <= T                  -> fits

U is odd on purpose: with a multiple of 4 users in a stable order, round-robin would hand
user i to engine i mod 4 every round, which is affinity by accident.

Under LRU a block survives only while less than T tokens of other traffic pass through its
engine. With affinity a user's next round comes back after ~A tokens (hit); round-robin
brings it back to an engine after ~W tokens (miss), so little more than the shared system
prompt hits.

Load: a cold prompt (~14k tokens, 7 chunks of 2,048) costs 1.83 s of prefill on the
emulator's A100 model, 0.91 s at time-scale 0.5, so 4 engines serve at most 4.4 all-cold
requests/s (`cold_capacity_qps`). The sweep tops out at 6 QPS, 1.37x that: round-robin,
nearly all cold, queues; prefix and session, mostly warm (~20-40 ms), stay far below
capacity. That is the seed's finding. Chunks of 2,048 tokens (vLLM's `max_num_batched_tokens`)
keep a cold prefill from stalling a warm request for a whole 8k-token step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from emulator.timing import Timing
from local.demo.errors import DemoError

POLICIES = ("round_robin", "session", "prefix")
TEMPLATE_TOKENS_PER_MESSAGE = 4  # "<|role|>\n" + "\n" around each message, ~13 bytes


def _require(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise DemoError(f"demo '{name}' {allowed} (got {value!r})")


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """Per-engine cache sizes (tokens) and the working sets they were chosen against."""

    user_tokens: int  # P: what one user's conversation adds
    affinity_tokens: int  # A: what one engine holds when users stick to engines
    round_robin_tokens: int  # W: what one engine would need under round-robin
    gpu_tokens: int  # G
    cpu_tokens: int  # T - G

    @property
    def total_tokens(self) -> int:
        return self.gpu_tokens + self.cpu_tokens


@dataclass(frozen=True, kw_only=True)
class DemoPlan:
    """Everything the demo runs; `quick()` is the test-sized variant."""

    engines: int = 4
    users: int = 15
    rounds: int = 20
    system_prompt_tokens: int = 1000
    history_tokens: int = 12_000
    question_tokens: int = 32
    answer_tokens: int = 64
    qps: tuple[float, ...] = (1.5, 3.5, 6.0)
    durations_s: tuple[float, ...] = (6.0, 8.0, 14.0)  # launch window per QPS point
    drain_s: float = 8.0
    time_scale: float = 0.5
    chunk_tokens: int = 2048  # vLLM's max_num_batched_tokens: the chunked-prefill budget per step
    headroom: float = 2.0  # engine capacity / what affinity puts on one engine
    thrash_margin: float = 1.5  # round-robin working set per engine / capacity, at least
    policies: tuple[str, ...] = POLICIES
    seed: int = 0

    def __post_init__(self) -> None:
        _require(self.engines >= 2, "engines", self.engines, "must be >= 2")
        _require(self.users >= 1 and self.rounds >= 2, "users/rounds", (self.users, self.rounds),
                 "need >= 1 user and >= 2 rounds (reuse needs a second round)")
        _require(self.users % self.engines != 0, "users", self.users,
                 f"must not be a multiple of engines={self.engines} (round-robin would pin users to engines)")
        _require(bool(self.qps) and all(q > 0 for q in self.qps) and list(self.qps) == sorted(self.qps),
                 "qps", self.qps, "must be increasing positive values")
        _require(len(self.durations_s) == len(self.qps) and all(d > 0 for d in self.durations_s),
                 "durations_s", self.durations_s, f"must be {len(self.qps)} positive values (one per QPS)")
        _require(self.drain_s >= 0, "drain_s", self.drain_s, "must be >= 0")
        _require(0 < self.time_scale <= 1, "time_scale", self.time_scale, "must be in (0, 1]")
        _require(self.chunk_tokens >= 256, "chunk_tokens", self.chunk_tokens, "must be >= 256")
        _require(self.headroom >= 1, "headroom", self.headroom, "must be >= 1 (affinity must fit)")
        _require(bool(self.policies) and set(self.policies) <= set(POLICIES), "policies", self.policies,
                 f"must be a non-empty subset of {', '.join(POLICIES)}")
        capacity(self)  # raises when the arithmetic does not separate the policies

    @classmethod
    def quick(cls) -> DemoPlan:
        """A few seconds end to end: two policies, one QPS point, a fast time-scale."""
        return cls(users=7, rounds=12, system_prompt_tokens=200, history_tokens=4000, answer_tokens=16,
                   qps=(12.0,), durations_s=(2.5,), drain_s=3.0, time_scale=0.1,
                   policies=("round_robin", "prefix"))


def user_tokens(plan: DemoPlan) -> int:
    """P: the tokens one user's whole conversation adds to a cache (template included)."""
    messages = 2 * plan.rounds + 1  # the history opens round 0; each round a question and an answer
    turns = plan.rounds * (plan.question_tokens + plan.answer_tokens)
    return plan.history_tokens + turns + TEMPLATE_TOKENS_PER_MESSAGE * messages


def longest_prompt_tokens(plan: DemoPlan) -> int:
    """The last round's prompt: system prompt plus one whole conversation."""
    return plan.system_prompt_tokens + user_tokens(plan)


def capacity(plan: DemoPlan) -> Capacity:
    """Per-engine cache sizes that fit affinity and make round-robin thrash (see the module
    docstring); raises DemoError when no size can do both for this workload."""
    per_user = user_tokens(plan)
    affinity = plan.system_prompt_tokens + math.ceil(plan.users / plan.engines) * per_user
    round_robin = plan.system_prompt_tokens + plan.users * per_user
    total = math.ceil(plan.headroom * affinity)
    gpu = min(total, max(total // 2, 2 * longest_prompt_tokens(plan)))
    _require(round_robin >= plan.thrash_margin * total, "users", plan.users,
             f"must be large enough that round-robin needs >= {plan.thrash_margin}x an engine's "
             f"capacity ({round_robin} tokens vs {total})")
    return Capacity(user_tokens=per_user, affinity_tokens=affinity, round_robin_tokens=round_robin,
                    gpu_tokens=gpu, cpu_tokens=total - gpu)


def cold_request_seconds(plan: DemoPlan) -> float:
    """Wall time an engine spends prefilling an average-length prompt with nothing cached."""
    mean_prompt = plan.system_prompt_tokens + plan.history_tokens + plan.rounds // 2 * (
        plan.question_tokens + plan.answer_tokens)
    return Timing(time_scale=plan.time_scale).cold_prefill_seconds(mean_prompt, plan.chunk_tokens)


def cold_capacity_qps(plan: DemoPlan) -> float:
    """All-cold requests per second the engines can prefill (round-robin's ceiling)."""
    return plan.engines / cold_request_seconds(plan)


def emulator_flags(plan: DemoPlan) -> list[str]:
    """`llm-stack emulate` flags for this plan's engines."""
    cap = capacity(plan)
    return ["--gpu-cache-tokens", str(cap.gpu_tokens), "--cpu-cache-tokens", str(cap.cpu_tokens),
            "--time-scale", str(plan.time_scale), "--max-num-batched-tokens", str(plan.chunk_tokens)]
