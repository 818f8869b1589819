"""A picture of the *Serving overview* dashboard: the same panel queries Grafana will run
(`stack_components.monitoring.dashboards.overview`), evaluated as range queries on the demo's
Prometheus and drawn with matplotlib (Agg) into one PNG, two panels per row.

`legend` and `layout` are pure; `fetch_panels` reads Prometheus; `draw` writes the file."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from local.demo import prometheus
from stack_components.monitoring.dashboards.spec import DashboardSpec

_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_SCALE = {"percentunit": (100.0, "%"), "s": (1000.0, "ms"), "reqps": (1.0, "req/s")}


@dataclass(frozen=True, kw_only=True)
class Line:
    """One series of a panel."""

    legend: str
    times: tuple[float, ...]
    values: tuple[float, ...]


@dataclass(frozen=True, kw_only=True)
class PanelData:
    """A panel's title, unit and series."""

    title: str
    unit: str
    lines: tuple[Line, ...]


def legend(template: str, labels: Mapping[str, str]) -> str:
    """Grafana's legend format filled with a series' labels (a missing label renders empty)."""
    return _LABEL.sub(lambda m: labels.get(m.group(1), ""), template)


def _points(values: Sequence[Sequence]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    kept = [(float(t), float(v)) for t, v in values if math.isfinite(float(v))]
    return tuple(t for t, _ in kept), tuple(v for _, v in kept)


def fetch_panels(base_url: str, spec: DashboardSpec, start: float, end: float,
                 step_s: float) -> list[PanelData]:
    """Every panel of `spec` evaluated over [start, end] on the Prometheus at `base_url`."""
    panels = []
    for panel in spec.panels:
        lines = []
        for target in panel.targets:
            for series in prometheus.query_range(base_url, target.expr, start, end, step_s):
                times, values = _points(series["values"])
                if times:
                    name = legend(target.legend, series["metric"])
                    lines.append(Line(legend=name, times=times, values=values))
        panels.append(PanelData(title=panel.title, unit=panel.unit, lines=tuple(lines[:12])))
    return panels


def layout(count: int, columns: int = 2) -> tuple[int, int]:
    """Rows and columns for `count` panels."""
    return max(1, math.ceil(count / columns)), columns


def draw(panels: Sequence[PanelData], title: str, path: Path) -> None:
    """Write the panels as one PNG."""
    from bench.plot import pyplot

    plt = pyplot()
    rows, cols = layout(len(panels))
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 3.2 * rows), squeeze=False)
    start = min((ln.times[0] for p in panels for ln in p.lines), default=0.0)
    for ax, panel in zip(axes.flat, panels, strict=False):
        scale, unit = _SCALE.get(panel.unit, (1.0, panel.unit))
        for line in panel.lines:
            xs, ys = [t - start for t in line.times], [v * scale for v in line.values]
            ax.plot(xs, ys, label=line.legend, lw=1.2)
        ax.set_title(panel.title, fontsize=10)
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        if panel.lines:
            ax.legend(fontsize=6, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("seconds since the demo started", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_dashboard_png(base_url: str, start: float, end: float, path: Path) -> int:
    """The serving overview over the demo's run into `path`; returns how many panels had data."""
    from stack_components.monitoring.dashboards import overview

    spec = overview.dashboard()
    step = max(1.0, round((end - start) / 240))
    panels = fetch_panels(base_url, spec, start, end, step)
    draw(panels, f"{spec.title} (demo, evaluated on its Prometheus)", path)
    return sum(1 for p in panels if p.lines)
