"""The closed loop's shape: the load ramp, the policy under test and the time scale. Pure.

Policy times are the real ones a cluster would use (an engine that takes 120 s to load, a
15 s polling interval); `time_scale` shrinks them for a run on this machine (0.05: 120 s → 6 s).
The emulated engines run at A100 speed (`engine_time_scale` 1.0), so TTFT figures are what an
A100 engine would show; only the policy's clock (windows, load time, polling) is compressed.

Capacity: every request brings a cold `prompt_tokens` prefill, which holds a whole scheduler
step (the running sequences wait for it), and `max_tokens` decode steps shared by up to
`max_num_seqs` sequences; one engine serves about 1 / (prefill + decode / max_num_seqs)
requests/s (`engine_rps`). The ramp's peak is `peak_engines` times that, so the loop must add
engines to keep up.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from emulator.timing import Timing
from local.demo.prometheus import NAMESPACE
from policies.autoscaling.policy import EnginePolicy

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


class PlanError(ValueError):
    """An invalid closed-loop plan value."""


@dataclass(frozen=True, kw_only=True)
class Phase:
    """A stretch of the run: offered load goes linearly from `start_rps` to `end_rps`."""

    name: str
    seconds: float
    start_rps: float
    end_rps: float


@dataclass(frozen=True, kw_only=True)
class AutoscalePlan:
    """Everything the closed loop needs; `quick()` is the suite's short version."""

    time_scale: float = 0.05
    """Seconds of this run per second of cluster time (policy windows and engine speed)."""
    load_time_s: int = 120
    """Cluster seconds an engine takes to become ready."""
    target_waiting: float = 2.0
    """Waiting requests per engine the policy aims at."""
    min_engines: int = 1
    max_engines: int = 4
    max_num_seqs: int = 4
    """Concurrent requests per emulated engine (the rest wait: `vllm:num_requests_waiting`)."""
    prompt_tokens: int = 1000
    max_tokens: int = 48
    base_rps_share: float = 0.4
    """Load before and after the step, as a share of one engine's capacity."""
    peak_engines: float = 2.6
    """Load at the peak, in engines' worth of capacity."""
    phases_s: tuple[float, float, float, float, float] = (12.0, 4.0, 30.0, 4.0, 40.0)
    """Run seconds of: base, ramp up, peak, ramp down, base."""
    ttft_objective_s: float = 1.0
    """TTFT p90 (seconds, A100 speed) the run is judged against once the added engines are ready."""
    engine_time_scale: float = 1.0
    """The emulator's time scale (1.0: A100 speed)."""
    scrape_interval_s: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.time_scale <= 1:
            raise PlanError(f"'time_scale' must be in (0, 1] (got {self.time_scale})")
        if not 1 <= self.min_engines < self.max_engines:
            raise PlanError(f"'min_engines' must be in 1..max_engines-1 (got {self.min_engines})")
        if any(s <= 0 for s in self.phases_s):
            raise PlanError(f"'phases_s' must all be > 0 (got {self.phases_s})")

    @classmethod
    def quick(cls) -> AutoscalePlan:
        """About a minute: the suite's version."""
        return cls(phases_s=(6.0, 2.0, 18.0, 2.0, 30.0), load_time_s=80, peak_engines=2.2)

    @property
    def timing(self) -> Timing:
        return Timing(time_scale=self.engine_time_scale)

    @property
    def engine_rps(self) -> float:
        """Requests/s one emulated engine sustains (see the module docstring)."""
        t = self.timing
        prefill = t.cold_prefill_seconds(self.prompt_tokens, 8192)
        decode = self.max_tokens * t.decode_step_seconds(self.max_num_seqs, self.prompt_tokens)
        return 1.0 / (prefill + decode / self.max_num_seqs)

    def phases(self) -> tuple[Phase, ...]:
        base, peak = self.base_rps_share * self.engine_rps, self.peak_engines * self.engine_rps
        b1, up, hold, down, b2 = self.phases_s
        return (Phase(name="base", seconds=b1, start_rps=base, end_rps=base),
                Phase(name="ramp-up", seconds=up, start_rps=base, end_rps=peak),
                Phase(name="peak", seconds=hold, start_rps=peak, end_rps=peak),
                Phase(name="ramp-down", seconds=down, start_rps=peak, end_rps=base),
                Phase(name="after", seconds=b2, start_rps=base, end_rps=base))

    @property
    def duration_s(self) -> float:
        return sum(self.phases_s)

    @property
    def step_at_s(self) -> float:
        """When the load step begins (the end of the first base phase)."""
        return self.phases_s[0]

    def offered_rps(self, t: float) -> float:
        """Offered load at run time `t` (0 after the run)."""
        for phase in self.phases():
            if t < phase.seconds:
                return phase.start_rps + (phase.end_rps - phase.start_rps) * t / phase.seconds
            t -= phase.seconds
        return 0.0

    def policy(self) -> EnginePolicy:
        """The queue-depth policy under test, in cluster time (the scaler scales it)."""
        return EnginePolicy(deployment="emulated", served_name=MODEL, namespace=NAMESPACE, metric="queue",
                            target=self.target_waiting, min_replicas=self.min_engines,
                            max_replicas=self.max_engines, load_time_s=self.load_time_s,
                            scale_down_window_s=0, polling_interval_s=15,
                            rate_window=f"{max(2.0, 120 * self.time_scale):g}s")

    def replace(self, **changes: Any) -> AutoscalePlan:
        return dataclasses.replace(self, **changes)
