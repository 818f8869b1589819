"""KEDA's layer over the HPA: a ScaledObject with `minReplicaCount: 0` sits at zero until a
trigger's value exceeds its activation threshold, then runs at least one replica (the HPA
takes over from there); after `cooldownPeriod` with no active trigger it returns to zero.
Pure, like `hpa`: the caller passes `now` and carries the state."""

from __future__ import annotations

from dataclasses import dataclass, replace

from policies.autoscaling import hpa
from policies.autoscaling.policy import EnginePolicy


@dataclass(frozen=True)
class ScalerState:
    """The HPA's memory plus when a trigger was last active."""

    hpa: hpa.HpaState = hpa.HpaState()
    last_active: float | None = None


def decide(state: ScalerState, policy: EnginePolicy, *, now: float, current: int, value: float,
           demand: float, held: float = 0.0) -> tuple[int, ScalerState]:
    """Replicas for `policy` given the load trigger's `value`, the router's `demand` (req/s)
    and the requests the routers `held` (each trigger active above its activation threshold:
    KEDA's `activationThreshold`, 0 for the held trigger)."""
    active = value > 0 or demand > policy.activation_rps or held > 0
    state = replace(state, last_active=now) if active else state
    low = max(1, policy.min_replicas)
    if current == 0:
        return (low if active else 0), state
    if policy.scales_to_zero and not active and (
            state.last_active is None or now - state.last_active >= policy.down_window_s):
        return 0, replace(state, hpa=hpa.HpaState())
    desired, inner = hpa.decide(state.hpa, policy.behavior(), now=now, current=current, value=value,
                                target=policy.target, low=low, high=policy.max_replicas,
                                average=policy.average)
    return desired, replace(state, hpa=inner)
