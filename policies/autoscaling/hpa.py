"""The Horizontal Pod Autoscaler's decision arithmetic, as Kubernetes' HPA controller computes
it (kubernetes `pkg/controller/podautoscaler/horizontal.go` and `replica_calculator.go`):

1. raw desired replicas from the metric: `ceil(ratio × current)` with `ratio = value / target`
   (`Value` targets) or `ceil(value / target)` (`AverageValue` targets, what KEDA uses for
   external metrics), unchanged while `|ratio − 1| <= tolerance` (default 0.1);
2. stabilisation: a scale-up takes the lowest recommendation of its window, a scale-down the
   highest of its window (so nothing is removed before the window has seen low load throughout);
3. rate limits: per direction, each policy (`Pods` n or `Percent` p per `periodSeconds`)
   proposes a limit from the replicas at the period's start; `selectPolicy: Max` takes the
   policy allowing the most change, `Min` the least, `Disabled` none;
4. clamped to [min, max].

Pure: the caller passes `now` and carries the returned `HpaState` to the next call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from policies.autoscaling.errors import require

DEFAULT_TOLERANCE = 0.1
"""kube-controller-manager's `--horizontal-pod-autoscaler-tolerance` default."""
MAX_STABILIZATION_S = 3600
"""The API's bound on `stabilizationWindowSeconds`."""
MAX_PERIOD_S = 1800
"""The API's bound on a policy's `periodSeconds`."""


@dataclass(frozen=True, kw_only=True)
class StepPolicy:
    """One HPA scaling policy: at most `value` pods (or percent) per `period_s` seconds."""

    type: Literal["Pods", "Percent"]
    value: int
    period_s: int

    def __post_init__(self) -> None:
        require(self.type in ("Pods", "Percent"), "policy.type", self.type, "must be Pods or Percent")
        require(self.value > 0, "policy.value", self.value, "must be > 0")
        require(0 < self.period_s <= MAX_PERIOD_S, "policy.periodSeconds", self.period_s,
                f"must be in 1..{MAX_PERIOD_S}")

    def to_manifest(self) -> dict:
        return {"type": self.type, "value": self.value, "periodSeconds": self.period_s}


@dataclass(frozen=True, kw_only=True)
class Rules:
    """One direction's behaviour: stabilisation window, step policies and how they combine."""

    window_s: int
    policies: tuple[StepPolicy, ...]
    select: Literal["Max", "Min", "Disabled"] = "Max"

    def __post_init__(self) -> None:
        require(0 <= self.window_s <= MAX_STABILIZATION_S, "stabilizationWindowSeconds", self.window_s,
                f"must be in 0..{MAX_STABILIZATION_S}")
        require(bool(self.policies), "policies", self.policies, "must hold at least one policy")
        require(self.select in ("Max", "Min", "Disabled"), "selectPolicy", self.select,
                "must be Max, Min or Disabled")

    def to_manifest(self) -> dict:
        return {"stabilizationWindowSeconds": self.window_s, "selectPolicy": self.select,
                "policies": [p.to_manifest() for p in self.policies]}


@dataclass(frozen=True, kw_only=True)
class Behavior:
    """`spec.behavior` of an HPA (and of KEDA's `advanced.horizontalPodAutoscalerConfig`)."""

    up: Rules
    down: Rules

    def to_manifest(self) -> dict:
        return {"scaleUp": self.up.to_manifest(), "scaleDown": self.down.to_manifest()}


@dataclass(frozen=True)
class Event:
    """A scale event: `change` replicas (positive up, negative down) at time `at`."""

    at: float
    change: int


@dataclass(frozen=True)
class HpaState:
    """What the controller remembers between evaluations: recent recommendations and events."""

    recommendations: tuple[tuple[float, int], ...] = ()
    events: tuple[Event, ...] = field(default=())


def raw_desired(value: float, target: float, current: int, *, average: bool = True,
                tolerance: float = DEFAULT_TOLERANCE) -> int:
    """Step 1: replicas the metric asks for (`average`: an AverageValue target)."""
    require(target > 0, "target", target, "must be > 0")
    if current == 0:
        return 0
    ratio = value / (target * current) if average else value / target
    if abs(ratio - 1.0) <= tolerance:
        return current
    return max(0, math.ceil(ratio * current))


def stabilize(state: HpaState, behavior: Behavior, *, now: float, current: int, desired: int) -> int:
    """Step 2: the recommendation after both stabilisation windows (`desired` included)."""
    up, down = desired, desired
    for at, rec in state.recommendations:
        if at > now - behavior.up.window_s:
            up = min(up, rec)
        if at > now - behavior.down.window_s:
            down = max(down, rec)
    return min(max(current, up), down)


def _changed(events: tuple[Event, ...], now: float, period_s: int, sign: int) -> int:
    return sum(abs(e.change) for e in events if e.at > now - period_s and e.change * sign > 0)


def _period_start(state: HpaState, current: int, now: float, period_s: int) -> int:
    return current - _changed(state.events, now, period_s, 1) + _changed(state.events, now, period_s, -1)


def up_limit(state: HpaState, rules: Rules, *, now: float, current: int) -> int:
    """Step 3 up: the most replicas the policies allow now."""
    if rules.select == "Disabled":
        return current
    proposals = []
    for p in rules.policies:
        start = _period_start(state, current, now, p.period_s)
        proposals.append(start + p.value if p.type == "Pods" else math.ceil(start * (1 + p.value / 100)))
    return max(proposals) if rules.select == "Max" else min(proposals)


def down_limit(state: HpaState, rules: Rules, *, now: float, current: int) -> int:
    """Step 3 down: the fewest replicas the policies allow now."""
    if rules.select == "Disabled":
        return current
    proposals = []
    for p in rules.policies:
        start = _period_start(state, current, now, p.period_s)
        proposals.append(start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100)))
    return min(proposals) if rules.select == "Max" else max(proposals)


def limit_rate(state: HpaState, behavior: Behavior, *, now: float, current: int, desired: int,
               low: int, high: int) -> int:
    """Steps 3 and 4: `desired` bounded by the step policies and by [low, high]."""
    if desired > current:
        desired = min(desired, up_limit(state, behavior.up, now=now, current=current), high)
    elif desired < current:
        desired = max(desired, down_limit(state, behavior.down, now=now, current=current), low)
    return min(max(desired, low), high)


def decide(state: HpaState, behavior: Behavior, *, now: float, current: int, value: float, target: float,
           low: int, high: int, average: bool = True,
           tolerance: float = DEFAULT_TOLERANCE) -> tuple[int, HpaState]:
    """One HPA evaluation: the replicas to run and the state to carry to the next one."""
    require(1 <= low <= high, "minReplicas", low, f"must be in 1..maxReplicas ({high})")
    raw = raw_desired(value, target, current, average=average, tolerance=tolerance)
    keep = max(behavior.up.window_s, behavior.down.window_s)
    recs = tuple(r for r in state.recommendations if r[0] > now - keep) + ((now, raw),)
    stable = stabilize(state, behavior, now=now, current=current, desired=raw)
    desired = limit_rate(state, behavior, now=now, current=current, desired=stable, low=low, high=high)
    longest = max((p.period_s for p in (*behavior.up.policies, *behavior.down.policies)), default=0)
    events = tuple(e for e in state.events if e.at > now - longest)
    if desired != current:
        events += (Event(now, desired - current),)
    return desired, replace(state, recommendations=recs, events=events)
