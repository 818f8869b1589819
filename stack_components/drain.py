"""How long things take to leave and to roll (pure): the longest request an engine may be
serving when it is told to stop, the grace periods that let it finish, and how long a rolling
update of a model's engines may take.

- vLLM 0.33 drains on SIGTERM only when `--shutdown-timeout` > 0 (its default 0 aborts every
  in-flight request: `vllm/v1/engine/core.py`, `_handle_shutdown`); it exits as soon as no
  request is left, so a long timeout costs nothing when the engine is idle.
- The longest request an engine allows is a full `max_model_len` sequence: its prompt prefilled,
  then decoded one token per step at the slowest rate a loaded engine runs (believed figures,
  below; DESIGN.md's reference decode step is 12–15 ms at a small batch, ~2.5 s for a cold
  20k-token prefill).
- A rolling update replaces at most `max_unavailable_percent` of the engines at a time (rounded
  down, at least one: Kubernetes' `ResolveFenceposts` sets maxUnavailable to 1 when it and
  maxSurge both resolve to 0); each step waits for the old pods to drain and the new ones to load.
"""

from __future__ import annotations

import math

SLOWEST_DECODE_TOKENS_PER_S = 25
"""Tokens per second one sequence still gets from a fully batched engine (40 ms per decode step;
believed, not measured)."""
PREFILL_TOKENS_PER_S = 8_000
"""Cold prefill rate (DESIGN.md: a 20k-token prompt in ~2.5 s on an A100)."""
TEARDOWN_S = 30
"""After the drain: vLLM's engine core, workers and HTTP server shutting down (believed)."""
AWAIT_SLACK_S = 600
"""Margin on Pulumi's await for scheduling, image pulls and node provisioning."""


def longest_request_s(max_model_len: int) -> int:
    """Seconds the longest request an engine accepts may take: a `max_model_len`-token sequence."""
    return math.ceil(max_model_len / PREFILL_TOKENS_PER_S + max_model_len / SLOWEST_DECODE_TOKENS_PER_S)


def engine_grace_s(drain_s: int) -> int:
    """The engine pod's terminationGracePeriodSeconds: its drain, then its teardown."""
    return drain_s + TEARDOWN_S


def rollout_batch(replicas: int, max_unavailable_percent: int) -> int:
    """Pods a rolling update with maxSurge 0 replaces at once at `replicas` desired pods."""
    return max(1, replicas * max_unavailable_percent // 100)


def rollout_steps(max_replicas: int, max_unavailable_percent: int) -> int:
    """The most steps a rolling update takes at any replica count up to `max_replicas`."""
    return max(math.ceil(n / rollout_batch(n, max_unavailable_percent)) for n in range(1, max_replicas + 1))


def rollout_await_s(*, steps: int, grace_s: int, load_time_s: int, startup_timeout_s: int) -> int:
    """How long Pulumi may await a rolling update: every step drains its old pods (up to the
    grace period) and loads new ones, one pod may use its whole startup budget, plus slack."""
    return steps * (grace_s + load_time_s) + max(0, startup_timeout_s - load_time_s) + AWAIT_SLACK_S
