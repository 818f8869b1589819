"""Emulated dcgm-exporter series: DCGM names, units and labels, readings that follow the load."""

from __future__ import annotations

from emulator_promtext import parse, value
from hypothesis import given
from hypothesis import strategies as st

import contracts
from emulator.gpu import GpuSpec, render, sample

SPEC = GpuSpec()


def test_idle_gpu_reads_idle_and_keeps_vllm_preallocation() -> None:
    """No running sequence: 0 % busy, idle power and temperature, memory still preallocated."""
    idle = sample(SPEC, running=0)
    assert (idle.util_percent, idle.power_watts) == (0.0, SPEC.idle_watts)
    assert idle.temp_celsius == SPEC.idle_celsius
    assert idle.fb_used_mib + idle.fb_free_mib == SPEC.memory_mib
    assert idle.fb_used_mib == round(SPEC.memory_mib * SPEC.memory_utilization)


@given(st.integers(0, 500), st.integers(0, 500))
def test_readings_are_monotone_in_the_batch(a: int, b: int) -> None:
    """A bigger running batch never reads less busy, cooler or lower-power; utilisation stays in 0..100."""
    lo, hi = sample(SPEC, running=min(a, b)), sample(SPEC, running=max(a, b))
    assert 0 <= lo.util_percent <= hi.util_percent <= 100
    assert lo.power_watts <= hi.power_watts <= SPEC.max_watts
    assert lo.temp_celsius <= hi.temp_celsius <= SPEC.max_celsius


def test_exposition_uses_dcgm_names_and_exporter_labels() -> None:
    """Every DCGM field the dashboards read is a gauge with gpu/UUID/device/modelName labels."""
    types, samples = parse(render(SPEC, sample(SPEC, running=8, last_xid=79), gpu=2, uuid="GPU-x"))
    names = (contracts.DCGM_GPU_UTIL, contracts.DCGM_FB_USED, contracts.DCGM_FB_FREE, contracts.DCGM_POWER,
             contracts.DCGM_TEMP, contracts.DCGM_XID)
    assert types == dict.fromkeys(names, "gauge")
    assert {(lab["gpu"], lab["UUID"], lab["device"], lab["modelName"]) for _, lab, _ in samples} == {
        ("2", "GPU-x", "nvidia2", SPEC.model_name)}
    assert value(samples, contracts.DCGM_XID) == 79
