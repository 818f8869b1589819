"""Emulated NVIDIA dcgm-exporter series for the GPU an emulated engine runs on, derived from
the engine's own load, so GPU dashboards and rules can be proven without a GPU.

Names and units are dcgm-exporter's default counters (`contracts`: utilisation in %,
framebuffer in MiB, power in W, temperature in C, last XID as a gauge). Labels are the ones
the exporter sets itself (`gpu`, `UUID`, `device`, `modelName`); the node (`Hostname`) and
the pod using the GPU are added by whoever scrapes, as target labels. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import contracts as c


@dataclass(frozen=True, kw_only=True)
class GpuSpec:
    """The emulated card (defaults: A100-SXM4-80GB)."""

    model_name: str = "NVIDIA A100-SXM4-80GB"
    memory_mib: int = 81_920
    idle_watts: float = 60.0
    max_watts: float = 400.0
    idle_celsius: float = 32.0
    max_celsius: float = 75.0
    memory_utilization: float = 0.9  # vLLM preallocates this fraction (--gpu-memory-utilization)
    busy_batch: int = 32  # a running batch this large keeps the GPU fully busy


@dataclass(frozen=True, kw_only=True)
class GpuSample:
    """One scrape's readings."""

    util_percent: float
    fb_used_mib: float
    fb_free_mib: float
    power_watts: float
    temp_celsius: float
    last_xid: int


def sample(spec: GpuSpec, *, running: int, last_xid: int = 0) -> GpuSample:
    """Readings for an engine with `running` sequences in its batch: utilisation rises with the
    batch (a third busy with one sequence), power and temperature follow utilisation, memory
    stays at vLLM's preallocation whatever the load."""
    busy = 0.0 if running <= 0 else min(1.0, 1 / 3 + (2 / 3) * running / spec.busy_batch)
    used = round(spec.memory_mib * spec.memory_utilization)
    return GpuSample(
        util_percent=round(100 * busy, 1), fb_used_mib=used, fb_free_mib=spec.memory_mib - used,
        power_watts=round(spec.idle_watts + busy * (spec.max_watts - spec.idle_watts), 1),
        temp_celsius=round(spec.idle_celsius + busy * (spec.max_celsius - spec.idle_celsius), 1),
        last_xid=last_xid)


def render(spec: GpuSpec, reading: GpuSample, *, gpu: int = 0, uuid: str = "GPU-emulated-0") -> str:
    """dcgm-exporter's text for one GPU."""
    labels = f'gpu="{gpu}",UUID="{uuid}",device="nvidia{gpu}",modelName="{spec.model_name}"'
    rows = ((c.DCGM_GPU_UTIL, "GPU utilization (in %).", reading.util_percent),
            (c.DCGM_FB_USED, "Framebuffer memory used (in MiB).", reading.fb_used_mib),
            (c.DCGM_FB_FREE, "Framebuffer memory free (in MiB).", reading.fb_free_mib),
            (c.DCGM_POWER, "Power draw (in W).", reading.power_watts),
            (c.DCGM_TEMP, "GPU temperature (in C).", reading.temp_celsius),
            (c.DCGM_XID, "Value of the last XID error encountered.", reading.last_xid))
    lines: list[str] = []
    for name, helptext, value in rows:
        lines += [f"# HELP {name} {helptext}", f"# TYPE {name} gauge", f"{name}{{{labels}}} {value:g}"]
    return "\n".join(lines) + "\n"
