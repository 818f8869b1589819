"""Grafana dashboard JSON from a `DashboardSpec`, built with grafana-foundation-sdk's typed
builders (no hand-written dashboard JSON). Panels go two per row, 12 columns by 8 rows each;
every target reads kube-prometheus-stack's provisioned datasource (uid `prometheus`, from the
chart's `grafana.sidecar.datasources.uid` default)."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard as gdash
from grafana_foundation_sdk.builders import prometheus as gprom
from grafana_foundation_sdk.builders import timeseries as gts
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

from stack_components.monitoring.dashboards.spec import DashboardSpec, PanelSpec

DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
WIDTH, HEIGHT = 12, 8


def _panel(spec: PanelSpec, index: int) -> gts.Panel:
    built = (gts.Panel().id(index + 1).title(spec.title).unit(spec.unit).datasource(DATASOURCE)
             .grid_pos(GridPos(h=HEIGHT, w=WIDTH, x=(index % 2) * WIDTH, y=(index // 2) * HEIGHT)))
    for ref, target in enumerate(spec.targets):
        built = built.with_target(gprom.Dataquery().expr(target.expr).legend_format(target.legend)
                                  .ref_id(chr(ord("A") + ref)).datasource(DATASOURCE))
    return built


def dashboard_model(spec: DashboardSpec) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a plain dict)."""
    board = (gdash.Dashboard(spec.title).uid(spec.uid).tags(["llm-stack"]).refresh("30s")
             .time("now-1h", "now").timezone("browser"))
    for index, panel in enumerate(spec.panels):
        board = board.with_panel(_panel(panel, index))
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def dashboard_json(spec: DashboardSpec) -> str:
    """The dashboard JSON text (sorted keys: stable in golden files)."""
    return json.dumps(dashboard_model(spec), indent=2, sort_keys=True) + "\n"
