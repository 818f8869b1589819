"""KEDA's activation layer: zero until demand, never below one while active, back to zero
only after the cooldown."""

from __future__ import annotations

from policies.autoscaling.activation import ScalerState, decide
from policies.autoscaling.keda import FALLBACK_FAILURES
from policies.autoscaling.policy import EnginePolicy

POLICY = EnginePolicy(deployment="d", served_name="m", min_replicas=0, max_replicas=3, load_time_s=60,
                      scale_down_window_s=120, activation_rps=0.0)


def test_wakes_on_demand_and_sleeps_after_cooldown():
    """0 → 1 on router demand; held while active; 0 again after 2 × load time idle."""
    state = ScalerState()
    n, state = decide(state, POLICY, now=0, current=0, value=0, demand=0)
    assert n == 0
    n, state = decide(state, POLICY, now=15, current=0, value=0, demand=0.5)
    assert n == 1
    n, state = decide(state, POLICY, now=30, current=1, value=0, demand=0)
    assert n == 1
    n, state = decide(state, POLICY, now=15 + POLICY.down_window_s - 1, current=1, value=0, demand=0)
    assert n == 1
    n, state = decide(state, POLICY, now=15 + POLICY.down_window_s, current=1, value=0, demand=0)
    assert n == 0


def test_never_below_one_while_active():
    """An active model with min 0 keeps at least one engine."""
    n, _ = decide(ScalerState(), POLICY, now=0, current=2, value=0.1, demand=5)
    assert n >= 1


def test_one_held_request_wakes_a_model_whatever_the_rate_threshold():
    """A request held by a router activates the model even when its rate is below activationRps."""
    strict = EnginePolicy(deployment="d", served_name="m", min_replicas=0, max_replicas=3, load_time_s=60,
                          activation_rps=5.0)
    assert decide(ScalerState(), strict, now=0, current=0, value=0, demand=0.1)[0] == 0
    assert decide(ScalerState(), strict, now=0, current=0, value=0, demand=0.1, held=1)[0] == 1


def test_a_lost_load_signal_holds_the_replicas_instead_of_reading_zero():
    """An empty load query (Prometheus lost the engines) neither scales down nor to zero,
    however long it lasts; the same poll with the queue at 0 scales to zero after the cooldown."""
    state = ScalerState(last_active=0.0)
    for t in range(0, 3 * POLICY.down_window_s, 15):
        n, state = decide(state, POLICY, now=t, current=3, value=None, demand=0, held=0)
        assert n == 3
    n, _ = decide(ScalerState(last_active=0.0), POLICY, now=POLICY.down_window_s, current=3, value=0,
                  demand=0, held=0)
    assert n == 0


def test_a_lost_router_signal_keeps_a_model_awake():
    """Held/demand queries answering nothing are errors: an idle model is not put to sleep."""
    n, _ = decide(ScalerState(last_active=0.0), POLICY, now=10 * POLICY.down_window_s, current=1, value=0,
                  demand=None, held=None)
    assert n == 1


def test_a_model_at_zero_wakes_only_once_the_failures_pass_the_fallback_threshold():
    """At zero engines a failing trigger does nothing until KEDA's fallback applies (a trigger
    in fallback is active), then the model wakes; an answering idle trigger keeps it at zero."""
    state = ScalerState()
    for i in range(FALLBACK_FAILURES):
        n, state = decide(state, POLICY, now=15 * i, current=0, value=0, demand=0, held=None)
        assert n == 0
    n, state = decide(state, POLICY, now=60, current=0, value=0, demand=0, held=None)
    assert n == 1 and state.failures == FALLBACK_FAILURES + 1
    state = ScalerState()
    for i in range(3 * FALLBACK_FAILURES):
        n, state = decide(state, POLICY, now=15 * i, current=0, value=0, demand=0, held=0)
        assert n == 0
