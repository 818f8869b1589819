"""KEDA's layer over the HPA: a ScaledObject with `minReplicaCount: 0` sits at zero until a
trigger's value exceeds its activation threshold, then runs at least one replica (the HPA
takes over from there); after `cooldownPeriod` with no active trigger it returns to zero.

A trigger whose query answers nothing (`None`: its source is lost) is an error, as KEDA 2.20.2
counts it with `ignoreNullValues: false`, and the ScaledObject's `fallback` (see `keda`)
applies: while any trigger fails the model is never scaled to zero and keeps its replicas
(before the threshold the HPA lacks that metric; after it, `currentReplicas` holds them); a
model at zero wakes once a trigger has failed more than `FALLBACK_FAILURES` times in a row
(KEDA counts a trigger in fallback as active).
Pure, like `hpa`: the caller passes `now` and carries the state."""

from __future__ import annotations

from dataclasses import dataclass, replace

from policies.autoscaling import hpa
from policies.autoscaling.keda import FALLBACK_FAILURES
from policies.autoscaling.policy import EnginePolicy


@dataclass(frozen=True)
class ScalerState:
    """The HPA's memory, when a trigger was last active, and the consecutive failed polls."""

    hpa: hpa.HpaState = hpa.HpaState()
    last_active: float | None = None
    failures: int = 0


def decide(state: ScalerState, policy: EnginePolicy, *, now: float, current: int, value: float | None,
           demand: float | None, held: float | None = 0.0) -> tuple[int, ScalerState]:
    """Replicas for `policy` given the load trigger's `value`, the router's `demand` (req/s)
    and the requests the routers `held` (each trigger active above its activation threshold:
    KEDA's `activationThreshold`, 0 for the held trigger); `None` where a query answered nothing."""
    failing = None in (value, demand, held)
    state = replace(state, failures=state.failures + 1 if failing else 0)
    fallback = state.failures > FALLBACK_FAILURES
    active = fallback or (value or 0.0) > 0 or (demand or 0.0) > policy.activation_rps or (held or 0.0) > 0
    state = replace(state, last_active=now) if active else state
    low = max(1, policy.min_replicas)
    if current == 0:
        return (low if active else 0), state
    if value is None:
        return current, state
    if not failing and policy.scales_to_zero and not active and (
            state.last_active is None or now - state.last_active >= policy.down_window_s):
        return 0, replace(state, hpa=hpa.HpaState())
    desired, inner = hpa.decide(state.hpa, policy.behavior(), now=now, current=current, value=value,
                                target=policy.target, low=low, high=policy.max_replicas,
                                average=policy.average)
    # A failing router trigger holds the current count (its fallback); the load may still add.
    return (max(desired, current) if failing else desired), replace(state, hpa=inner)
