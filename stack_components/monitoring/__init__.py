"""Monitoring as a component: kube-prometheus-stack and dcgm-exporter as pinned Helm releases,
PodMonitors for the engines and the router, Grafana dashboards built with
grafana-foundation-sdk, and alert rules with runbooks — every query from one catalogue
(`manifests.shipped_queries`) that the suite proves on a real Prometheus."""

from stack_components.monitoring.args import MonitoringArgs
from stack_components.monitoring.component import Monitoring, MonitoringExtension
from stack_components.monitoring.dashboards.capacity import PoolLimit, ReplicaBounds
from stack_components.monitoring.helm import Receiver

__all__ = ["Monitoring", "MonitoringArgs", "MonitoringExtension", "PoolLimit", "Receiver", "ReplicaBounds"]
