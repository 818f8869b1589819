"""The HPA arithmetic: Kubernetes' rules, and the invariants the issue asks for (Hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.autoscaling import hpa
from policies.autoscaling.hpa import Behavior, HpaState, Rules, StepPolicy
from policies.autoscaling.policy import EnginePolicy

FREE = Behavior(up=Rules(window_s=0, policies=(StepPolicy(type="Percent", value=1000, period_s=1),)),
                down=Rules(window_s=0, policies=(StepPolicy(type="Percent", value=100, period_s=1),)))

behaviors = st.builds(
    lambda load, floor, top: EnginePolicy(deployment="d", served_name="m", max_replicas=top,
                                          load_time_s=load, scale_down_window_s=floor).behavior(),
    st.integers(1, 1800), st.integers(0, 3600), st.integers(1, 64))


def test_raw_desired_matches_kubernetes_examples():
    """ceil(value / target) for AverageValue, ceil(ratio × current) for Value; the 10 % band holds."""
    assert hpa.raw_desired(10, 4, 2) == 3  # 10 waiting at 4 per engine
    assert hpa.raw_desired(8.4, 4, 2) == 2  # ratio 1.05: inside the tolerance band
    assert hpa.raw_desired(2.0, 1.0, 3, average=False) == 6  # TTFT twice the objective
    assert hpa.raw_desired(0, 4, 5) == 0


@given(st.floats(0, 1e4), st.floats(0, 1e4), st.floats(0.1, 100), st.integers(1, 100))
def test_raw_desired_is_monotone_in_load(a, b, target, current):
    """More load never asks for fewer replicas."""
    lo, hi = sorted((a, b))
    assert hpa.raw_desired(lo, target, current) <= hpa.raw_desired(hi, target, current)


@given(st.floats(0.1, 100), st.integers(1, 100), st.floats(-0.099, 0.099))
def test_no_change_inside_tolerance(target, current, offset):
    """A metric within ±10 % of the target keeps the replica count."""
    value = target * current * (1 + offset)
    assert hpa.raw_desired(value, target, current) == current


@given(behaviors, st.lists(st.floats(0, 500), min_size=1, max_size=30), st.integers(1, 8), st.integers(0, 56))
@settings(max_examples=200)
def test_decisions_stay_within_bounds(behavior, loads, low, extra):
    """Whatever the load sequence, every decision is within [min, max]."""
    high = low + extra
    state, current = HpaState(), low
    for i, load in enumerate(loads):
        current, state = hpa.decide(state, behavior, now=i * 15.0, current=current, value=load, target=4,
                                    low=low, high=high)
        assert low <= current <= high


@given(st.integers(1, 1800), st.integers(0, 3600), st.integers(2, 32), st.integers(1, 200))
@settings(max_examples=200)
def test_scale_down_never_before_its_window(load_time, floor, start, steps):
    """After high load, no engine is removed until the scale-down window has passed."""
    policy = EnginePolicy(deployment="d", served_name="m", max_replicas=32, load_time_s=load_time,
                          scale_down_window_s=floor)
    behavior, state = policy.behavior(), HpaState()
    current, state = hpa.decide(state, behavior, now=0.0, current=start, value=4.0 * start, target=4,
                                low=1, high=32)
    assert current == start
    for i in range(1, steps + 1):
        now = i * 15.0
        current, state = hpa.decide(state, behavior, now=now, current=current, value=0.0, target=4,
                                    low=1, high=32)
        if now < policy.down_window_s:
            assert current == start, (now, policy.down_window_s)


@given(behaviors, st.floats(0, 400), st.floats(0, 400), st.integers(1, 32))
def test_decision_is_monotone_in_load(behavior, a, b, current):
    """From the same state, more load never yields fewer replicas."""
    lo, hi = sorted((a, b))
    d_lo, _ = hpa.decide(HpaState(), behavior, now=0.0, current=current, value=lo, target=4, low=1, high=64)
    d_hi, _ = hpa.decide(HpaState(), behavior, now=0.0, current=current, value=hi, target=4, low=1, high=64)
    assert d_lo <= d_hi


def test_scale_up_step_limited_per_period():
    """Percent 100 / Pods 2 per period with selectPolicy Max: from 2 engines at most 4, then no
    more within the same period, then again after it."""
    rules = Rules(window_s=0, policies=(StepPolicy(type="Percent", value=100, period_s=600),
                                        StepPolicy(type="Pods", value=2, period_s=600)))
    behavior = Behavior(up=rules, down=FREE.down)
    current, state = hpa.decide(HpaState(), behavior, now=0, current=2, value=100, target=4, low=1, high=30)
    assert current == 4
    current, state = hpa.decide(state, behavior, now=300, current=current, value=100, target=4, low=1,
                                high=30)
    assert current == 4
    current, state = hpa.decide(state, behavior, now=601, current=current, value=100, target=4, low=1,
                                high=30)
    assert current == 8


def test_scale_up_window_takes_lowest_recommendation():
    """A one-sample spike inside the scale-up window does not scale up."""
    behavior = Behavior(up=Rules(window_s=60, policies=FREE.up.policies), down=FREE.down)
    _, state = hpa.decide(HpaState(), behavior, now=0, current=2, value=8, target=4, low=1, high=10)
    current, _ = hpa.decide(state, behavior, now=15, current=2, value=40, target=4, low=1, high=10)
    assert current == 2


def test_behavior_sized_from_load_time():
    """A 70B engine loading for 10 minutes: down window >= 20 min, one engine per 10 min."""
    policy = EnginePolicy(deployment="d", served_name="m", max_replicas=6, load_time_s=600,
                          scale_down_window_s=300)
    b = policy.behavior()
    assert b.down.window_s == 1200
    assert b.down.policies[0].period_s == 600 and b.down.policies[0].value == 1
    assert all(p.period_s == 600 for p in b.up.policies)
