"""Dashboards built with grafana-foundation-sdk: the Grafana JSON carries every spec target,
panels have unique ids and titles and never overlap, every target reads the chart's datasource."""

from __future__ import annotations

import json

from stack_components.monitoring import MonitoringArgs, PoolLimit, ReplicaBounds
from stack_components.monitoring.dashboards.build import dashboard_json, dashboard_model
from stack_components.monitoring.manifests import dashboards, shipped_queries

ARGS = MonitoringArgs(models={"m": ReplicaBounds(min=1, max=3)},
                      pools={"a100": PoolLimit(max_nodes=2, gpus_per_node=8)})


def test_grafana_json_carries_every_target_of_the_spec() -> None:
    """Each panel's targets in the JSON equal the spec's expressions and legends, in order."""
    checked = 0
    for spec in dashboards(ARGS):
        model = dashboard_model(spec)
        assert (model["uid"], model["title"]) == (spec.uid, spec.title)
        for panel, built in zip(spec.panels, model["panels"], strict=True):
            assert built["title"] == panel.title and built["type"] == "timeseries"
            assert [(t["expr"], t["legendFormat"]) for t in built["targets"]] == [
                (t.expr, t.legend) for t in panel.targets]
            sources = {json.dumps(t["datasource"], sort_keys=True) for t in built["targets"]}
            assert sources == {'{"type": "prometheus", "uid": "prometheus"}'}
            checked += len(panel.targets)
    assert checked == sum(q.source.startswith("dashboard/") for q in shipped_queries(ARGS))


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    """Panel ids are unique and grid cells never overlap (Grafana would move them)."""
    for spec in dashboards(ARGS):
        panels = dashboard_model(spec)["panels"]
        assert len({p["id"] for p in panels}) == len(panels)
        cells = {(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels}
        assert len(cells) == len(panels)


def test_three_dashboards_with_the_issue_panels() -> None:
    """Serving overview, GPUs and Capacity; the JSON text is stable (sorted keys)."""
    specs = dashboards(ARGS)
    assert [s.uid for s in specs] == ["llm-stack-serving", "llm-stack-gpus", "llm-stack-capacity"]
    assert sum(len(s.panels) for s in specs) >= 20
    text = dashboard_json(specs[0])
    assert json.loads(text)["uid"] == "llm-stack-serving" and text == dashboard_json(specs[0])


def test_serving_shows_the_kv_prediction_against_what_the_engines_delivered() -> None:
    """Issue 19: per engine and tier, the router's predicted cached tokens next to the engines'
    delivered prefix-cache hits (GPU via the router's per-engine mirror, LMCache's tiers via vLLM's
    connector counter), and the fallbacks to the estimate by reason."""
    serving = dashboards(ARGS)[0]
    panels = {p.title: [t.expr for t in p.targets] for p in serving.panels}
    exprs = panels["KV cache: predicted vs delivered cached tokens"]
    assert "sum by (engine, tier, mode) (rate(llmstack_router_kv_predicted_tokens_total[" in exprs[0]
    assert "max by (engine) (rate(llmstack_router_engine_prefix_cache_hits_total[" in exprs[1]
    assert "rate(vllm:external_prefix_cache_hits_total[" in exprs[2]
    assert any("llmstack_router_kv_fallbacks_total" in e and "reason" in e
               for e in panels["KV events: engines scored by the estimate"])
