"""Pure builders of the monitoring objects: dashboard ConfigMaps for Grafana's sidecar, the
PrometheusRule, and the catalogue of every PromQL expression the component ships."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stack_components.kube import metadata
from stack_components.monitoring.args import MonitoringArgs
from stack_components.monitoring.dashboards import capacity, gpus, overview
from stack_components.monitoring.dashboards.build import dashboard_json
from stack_components.monitoring.dashboards.spec import DashboardSpec
from stack_components.monitoring.helm import DASHBOARD_LABEL
from stack_components.monitoring.promql import NamedQuery
from stack_components.monitoring.rules import AlertRule, RuleObjectives, alert_rules, rule_groups
from stack_components.monitoring.scrape import API_VERSION


def dashboards(args: MonitoringArgs) -> list[DashboardSpec]:
    """Serving overview, GPUs, Capacity."""
    return [overview.dashboard(lora=args.lora), gpus.dashboard(), capacity.dashboard(args.models, args.pools)]


def rules(args: MonitoringArgs) -> list[AlertRule]:
    """Every alert, with the thresholds from the args."""
    return alert_rules(RuleObjectives(
        ttft_p95_seconds=args.ttft_objective_s, max_waiting_per_engine=args.max_waiting_per_engine,
        engine_namespace=args.stack_namespace,
        pool_max_nodes={name: p.max_nodes for name, p in args.pools.items()}, lora=args.lora))


def shipped_queries(args: MonitoringArgs) -> list[NamedQuery]:
    """Every expression that must return data on a live stack: each dashboard target and each
    alert's signals."""
    found = [NamedQuery(source=f"dashboard/{d.uid}/{p.title}", expr=t.expr)
             for d in dashboards(args) for p in d.panels for t in p.targets]
    found += [NamedQuery(source=f"rule/{r.name}", expr=s) for r in rules(args) for s in r.signals]
    return found


def dashboard_configmap(spec: DashboardSpec, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """One dashboard in a ConfigMap labelled for Grafana's sidecar."""
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": metadata(spec.uid, namespace, {**labels, DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1]}),
        "data": {f"{spec.uid}.json": dashboard_json(spec)},
    }


def prometheus_rule(name: str, namespace: str, labels: Mapping[str, str],
                    alerts: list[AlertRule]) -> dict[str, Any]:
    """The PrometheusRule holding every alert."""
    return {"apiVersion": API_VERSION, "kind": "PrometheusRule",
            "metadata": metadata(name, namespace, labels), "spec": {"groups": rule_groups(alerts)}}
