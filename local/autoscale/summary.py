"""The closed loop's verdict from its timeline: scale-up delay after the load step, TTFT
against the objective, scale-downs, flaps. Pure.

A flap is a reversal of direction: over one ramp up and back down a well-behaved scaler
changes direction once (up, then down), so flaps = direction changes − 1 (never below 0)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from local.autoscale.loadgen import Sent
from local.autoscale.plan import AutoscalePlan


@dataclass(frozen=True)
class Sample:
    """The loop's state at run time `t` (seconds)."""

    t: float
    offered_rps: float
    replicas: int
    ready: int
    queue: float
    demand: float


@dataclass(frozen=True)
class Change:
    """The scaler changed the replica count at run time `t`."""

    t: float
    before: int
    after: int


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def flaps(changes: Sequence[Change]) -> int:
    """Direction changes beyond the one a ramp up and down needs."""
    signs = [1 if c.after > c.before else -1 for c in changes if c.after != c.before]
    reversals = sum(1 for a, b in zip(signs, signs[1:], strict=False) if a != b)
    return max(0, reversals - 1)


def _first(samples: Sequence[Sample], after: float, ok) -> float | None:
    return next((s.t for s in samples if s.t >= after and ok(s)), None)


def _ttft(sent: Sequence[Sent], start: float, end: float) -> dict[str, float | int | None]:
    ttfts = [s.ttft for s in sent if start <= s.at < end and s.ttft is not None]
    return {"requests": len(ttfts), "p50_s": percentile(ttfts, 0.5), "p90_s": percentile(ttfts, 0.9)}


def summarize(plan: AutoscalePlan, samples: Sequence[Sample], changes: Sequence[Change],
              sent: Sequence[Sent]) -> dict:
    """The run's summary document (JSON-able)."""
    step = plan.step_at_s
    first_up = next((c.t for c in changes if c.t >= step and c.after > c.before), None)
    added_ready = _first(samples, step, lambda s: s.ready > plan.min_engines)
    peak_end = sum(plan.phases_s[:3])
    down_start = peak_end + plan.phases_s[3]
    downs = [c for c in changes if c.after < c.before]
    settled = sum(plan.phases_s[:2]) + plan.phases_s[2] / 2  # the peak's second half
    peak_ttft = _ttft(sent, settled, peak_end)
    p90 = peak_ttft["p90_s"]
    return {
        "plan": {"time_scale": plan.time_scale, "load_time_s": plan.load_time_s,
                 "engine_rps": round(plan.engine_rps, 2), "phases_s": list(plan.phases_s),
                 "policy": asdict(plan.policy())},
        "scale_up_decision_delay_s": None if first_up is None else round(first_up - step, 2),
        "scale_up_delay_s": None if added_ready is None else round(added_ready - step, 2),
        "scale_up_delay_cluster_s": (None if added_ready is None
                                     else round((added_ready - step) / plan.time_scale)),
        "max_replicas": max((s.replicas for s in samples), default=0),
        "final_replicas": samples[-1].replicas if samples else 0,
        "scale_downs": len(downs),
        "first_scale_down_after_load_drop_s": next((round(c.t - down_start, 2) for c in downs
                                                    if c.t >= down_start), None),
        "flaps": flaps(changes),
        "ttft_base": _ttft(sent, 0.0, step),
        "ttft_step_before_ready": _ttft(sent, step, added_ready if added_ready is not None else peak_end),
        "ttft_peak_second_half": peak_ttft,
        "ttft_objective_p90_s": plan.ttft_objective_s,
        "ttft_objective_met": p90 is not None and p90 <= plan.ttft_objective_s,
        "requests": len(sent),
        "errors": sum(1 for s in sent if s.status != 200),
        "changes": [asdict(c) for c in changes],
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def lines(doc: dict) -> list[str]:
    """Human-readable summary lines."""
    peak = doc["ttft_peak_second_half"]
    before = doc["ttft_step_before_ready"]
    return [
        f"scale-up: decided {doc['scale_up_decision_delay_s']} s after the load step, first added engine "
        f"ready after {doc['scale_up_delay_s']} s (= {doc['scale_up_delay_cluster_s']} s of cluster time)",
        f"engines: up to {doc['max_replicas']}, {doc['scale_downs']} scale-downs, back to "
        f"{doc['final_replicas']}; flaps: {doc['flaps']}",
        f"TTFT p90: base {_fmt(doc['ttft_base']['p90_s'])} s, step before ready {_fmt(before['p90_s'])} s, "
        f"peak's second half {_fmt(peak['p90_s'])} s (objective {doc['ttft_objective_p90_s']} s: "
        f"{'met' if doc['ttft_objective_met'] else 'missed'})",
        f"requests: {doc['requests']}, errors: {doc['errors']}",
    ]
