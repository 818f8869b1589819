"""The ScaledObject renderer: KEDA's cooldowns sized from the policy's load time and window."""

from __future__ import annotations

import pytest

from policies.autoscaling.keda import scaled_object
from policies.autoscaling.policy import EnginePolicy


@pytest.mark.parametrize(("load_time", "floor", "initial"), [(92, 900, 992), (600, 300, 1800), (120, 0, 360)])
def test_new_scaled_object_waits_load_time_plus_idle_window(load_time, floor, initial):
    """initialCooldownPeriod (KEDA default 0: scale to zero on the first poll) is one load time
    plus the idle window, so it never ends before the regular cooldownPeriod could."""
    policy = EnginePolicy(deployment="d", served_name="m", min_replicas=0, max_replicas=2,
                          load_time_s=load_time, scale_down_window_s=floor)
    spec = scaled_object("d", "ns", policy, prometheus_url="http://p:9090", labels={})["spec"]
    assert spec["initialCooldownPeriod"] == initial
    assert spec["initialCooldownPeriod"] == spec["cooldownPeriod"] + load_time
    assert isinstance(spec["initialCooldownPeriod"], int)
