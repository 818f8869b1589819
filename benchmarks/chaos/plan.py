"""The chaos run's shape: the load, the cluster's timings and the scenarios in turn. Pure.

`ChaosPlan.quick()` is the suite's version (under a minute on a 2-core machine),
`ChaosPlan()` the full run (a few minutes). Every wait the harness makes is bounded by a
field here; `scenarios(plan)` lists what runs, in order, each with the client patience its
requests get (a held request at zero engines needs more than a stalled stream should get).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final

from local.autoscale.plan import MODEL
from local.autoscale.wake import WakePlan
from router.settings import EjectionSettings
from stack_components.deadlines import engine_deadlines

REFERENCE_ENGINE: Final = {"params_billion": 8.0, "tensor_parallel_size": 1, "max_model_len": 32_768}
"""The model whose rendered router deadlines the run uses (Llama-3.1-8B on one GPU, 32k context:
47 s first byte, 19 s between chunks, `stack_components.deadlines`), on the run's clock."""
CREATED: Final = 1_700_000_000
"""Every engine's pinned `created` (emulator `--created`): streams from different engines of
the same request then agree byte for byte in every field but their chunking."""

SCALE_FROM_ZERO: Final = "scale_0_to_1"
SCALE_IN: Final = "scale_4_to_2"
ENGINE_ROLLOUT: Final = "engine_rollout"
ROUTER_ROLLOUT: Final = "router_rollout"
ENGINE_SIGKILL: Final = "engine_sigkill"
ENGINE_HUNG: Final = "engine_hung"
ENGINE_STALL: Final = "engine_stall"
ORDER: Final = (SCALE_FROM_ZERO, SCALE_IN, ENGINE_ROLLOUT, ROUTER_ROLLOUT, ENGINE_SIGKILL, ENGINE_HUNG,
                ENGINE_STALL)


class PlanError(ValueError):
    """An invalid chaos plan value; the message names the field, the value and what is allowed."""

    def __init__(self, name: str, value: object, allowed: str) -> None:
        super().__init__(f"chaos plan '{name}' {allowed} (got {value!r})")


def _require(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise PlanError(name, value, allowed)


@dataclass(frozen=True, kw_only=True)
class ChaosPlan:
    """Everything the harness needs; durations in seconds of this run."""

    users: int = 8
    """Concurrent conversations, each sending its next round as soon as the last one ends."""
    prompt_tokens: int = 96
    """Size of each round's new user message."""
    history_rounds: int = 2
    """Earlier rounds (question and answer) each request resends."""
    max_tokens: int = 64
    """Every request's fixed `max_tokens` (the engines never stop early: finish `length`)."""
    engine_time_scale: float = 1.5
    """Emulated engines' speed (1.0: A100 / Llama-3.1-8B figures); slower engines make streams
    longer than the deregistration lead and the preStop delay, so drains carry open streams."""
    engine_shutdown_timeout_s: int = 10
    """Engines' `--shutdown-timeout`: above the longest request, so a SIGTERM drains."""
    router_drain_s: float = 15.0
    """Each router replica's `drain_s` on SIGTERM (above the longest request)."""
    router_prestop_s: float = 0.5
    """A router being rolled leaves the client's target list this long before its SIGTERM (the
    pod's preStop sleep). The modelled NLB stops sending new requests the moment a target is
    deregistered, so any delay would do; one shorter than a stream leaves streams to the drain."""
    deregister_lead_s: float = 0.3
    """An engine leaves the targets file this long before its SIGTERM: the routers' file
    discovery polls every 0.2 s, where the Kubernetes watch sees `deletionTimestamp` at once;
    shorter than a stream, so the engine's drain carries open streams."""
    restart_after_s: float = 1.0
    """A SIGKILLed engine's replacement is listed (and the dead one unlisted) this long after."""
    soak_s: float = 6.0
    """Steady load before and after each change."""
    fault_s: float = 8.0
    """How long the hung and the stalled engine keep their fault."""
    stall_after_tokens: int = 8
    read_timeout_s: float = 5.0
    """Client patience between two reads (the response head included) in the fault scenarios."""
    hold_read_timeout_s: float = 30.0
    """Client patience in the scale-from-zero scenario, where requests wait for an engine."""
    queue_max_wait_s: float = 25.0
    """The routers' hold-queue deadline (`queue.max_wait_s`): a clean 503 before the client gives up."""
    wake: WakePlan = field(default_factory=WakePlan)
    """Scale from zero: the policy, its clock, the engine's load time (`llm-stack autoscale --from-zero`)."""
    scale_in_from: int = 4
    scale_in_to: int = 2
    start_timeout_s: float = 20.0
    """Bound on starting one process (engine, router, Prometheus) and on any discovery wait."""
    twin_replays: int = 4
    """Requests replayed at the end to an undisturbed engine to check the computed twins."""
    model: str = MODEL
    deadline_s: float = 900.0
    """The whole run stops by itself past this (a harness error)."""

    def __post_init__(self) -> None:
        _require(1 <= self.users <= 64, "users", self.users, "must be in 1..64")
        _require(self.prompt_tokens >= 1, "prompt_tokens", self.prompt_tokens, "must be >= 1")
        _require(self.history_rounds >= 0, "history_rounds", self.history_rounds, "must be >= 0")
        _require(self.max_tokens > self.stall_after_tokens >= 1, "stall_after_tokens",
                 self.stall_after_tokens, f"must be in 1..max_tokens-1 ({self.max_tokens - 1})")
        _require(self.engine_time_scale > 0, "engine_time_scale", self.engine_time_scale, "must be > 0")
        _require(self.engine_shutdown_timeout_s >= 1, "engine_shutdown_timeout_s",
                 self.engine_shutdown_timeout_s, "must be >= 1 (0 aborts open requests: no drain)")
        for name in ("router_drain_s", "router_prestop_s", "deregister_lead_s", "restart_after_s", "soak_s",
                     "fault_s", "read_timeout_s", "hold_read_timeout_s", "queue_max_wait_s",
                     "start_timeout_s", "deadline_s"):
            value = getattr(self, name)
            _require(value > 0, name, value, "must be > 0 (seconds)")
        _require(self.queue_max_wait_s < self.hold_read_timeout_s, "queue_max_wait_s",
                 self.queue_max_wait_s, f"must be below hold_read_timeout_s ({self.hold_read_timeout_s}): "
                                        "the router's 503 comes first")
        bound = self.wake.first_answer_bound_s
        _require(bound < self.queue_max_wait_s, "wake", bound,
                 f"must wake within queue_max_wait_s ({self.queue_max_wait_s})")
        _require(self.scale_in_from > self.scale_in_to >= 2, "scale_in_to", self.scale_in_to,
                 f"must be in 2..scale_in_from-1 ({self.scale_in_from - 1}): faults need a healthy peer")
        _require(self.twin_replays >= 1, "twin_replays", self.twin_replays, "must be >= 1")
        first_byte = self.router_clock["deadlines"]["default"]["first_byte_s"]
        _require(self.read_timeout_s > 1.5 * first_byte, "read_timeout_s", self.read_timeout_s,
                 f"must exceed 1.5 x the routers' first-byte deadline ({first_byte} s): a request "
                 "retried elsewhere must reach the client before it gives up")

    @classmethod
    def quick(cls) -> ChaosPlan:
        """The suite's version: fewer users, shorter soaks and faults, a faster policy clock."""
        return cls(users=6, prompt_tokens=48, max_tokens=24, engine_time_scale=2.0,
                   engine_shutdown_timeout_s=5, router_drain_s=8.0, router_prestop_s=0.2, soak_s=1.5,
                   fault_s=2.5, stall_after_tokens=6, read_timeout_s=2.5, hold_read_timeout_s=15.0,
                   queue_max_wait_s=12.0, wake=WakePlan.quick(), twin_replays=2, deadline_s=150.0)

    @property
    def router_clock(self) -> dict[str, Any]:
        """The routers' deadlines and passive-ejection windows as the stack renders them for
        `REFERENCE_ENGINE`, times the policy clock's `wake.time_scale` (the run compresses the
        cluster's time for both alike): settings keys `deadlines` and `ejection`."""
        scale = self.wake.time_scale
        rendered = engine_deadlines(**REFERENCE_ENGINE)  # type: ignore[arg-type]
        ejection = EjectionSettings()
        return {"deadlines": {"default": {name: round(getattr(rendered, name) * scale, 3)
                                          for name in ("first_byte_s", "inter_chunk_s", "whole_s")}},
                "ejection": {**dataclasses.asdict(ejection), "window_s": round(ejection.window_s * scale, 3),
                             "min_out_s": round(ejection.min_out_s * scale, 3)}}

    @property
    def request_s(self) -> float:
        """Rough length of one request on an idle engine: prefill plus one step per token."""
        return (0.012 * self.max_tokens + 125e-6 * self.prompt_tokens * (2 * self.history_rounds + 1)) \
            * self.engine_time_scale


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One scenario of the run: its name, the engines it starts from, the client's patience."""

    name: str
    engines_before: int
    read_timeout_s: float


def scenarios(plan: ChaosPlan) -> tuple[Scenario, ...]:
    """The scenarios in the order they run; each starts from where the previous one left."""
    low = plan.scale_in_to
    engines_before = {SCALE_FROM_ZERO: 0, SCALE_IN: 1}
    return tuple(Scenario(name=name, engines_before=engines_before.get(name, low),
                          read_timeout_s=plan.hold_read_timeout_s if name == SCALE_FROM_ZERO
                          else plan.read_timeout_s)
                 for name in ORDER)
