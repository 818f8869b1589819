"""Dashboards as plain values: a dashboard is panels, a panel is PromQL targets with legends.
The Grafana JSON is built from these by `grafana-foundation-sdk` (`build.py`); the demo's
picture and the query-proof harness read the same values, so all three show the same queries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Target:
    """One query of a panel."""

    expr: str
    """PromQL."""
    legend: str
    """Grafana legend format, e.g. `{{model_name}} p95`."""


@dataclass(frozen=True, kw_only=True)
class PanelSpec:
    """One time-series panel."""

    title: str
    """Panel title (unique within its dashboard)."""
    unit: str
    """Grafana unit id: `reqps`, `s`, `percentunit`, `percent`, `decmbytes`, `watt`, `celsius`, `short`."""
    targets: tuple[Target, ...]
    """Its queries."""


@dataclass(frozen=True, kw_only=True)
class DashboardSpec:
    """One dashboard."""

    uid: str
    """Stable Grafana uid (also the ConfigMap's key)."""
    title: str
    """Title shown in Grafana."""
    panels: tuple[PanelSpec, ...]
    """Panels, laid out two per row in this order."""

    def __post_init__(self) -> None:
        titles = [p.title for p in self.panels]
        if len(set(titles)) != len(titles):
            raise ValueError(f"dashboard {self.uid!r}: panel titles must be unique (got {titles})")


def panel(title: str, unit: str, *targets: tuple[str, str]) -> PanelSpec:
    """A panel from `(expr, legend)` pairs."""
    return PanelSpec(title=title, unit=unit, targets=tuple(Target(expr=e, legend=lg) for e, lg in targets))
