"""Pinned Helm charts and their values, as pure functions: kube-prometheus-stack (Prometheus,
Alertmanager, Grafana with its dashboard sidecar, kube-state-metrics) and NVIDIA's
dcgm-exporter. Value keys follow each chart's values.yaml at the pinned version
(prometheus-community/helm-charts charts/kube-prometheus-stack 88.5.3, NVIDIA/dcgm-exporter
deployment/ 4.8.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stack_components import _validate as v
from stack_components.common import Placement

DASHBOARD_LABEL = ("grafana_dashboard", "1")
"""The label Grafana's sidecar loads dashboards from (the chart's sidecar.dashboards default)."""
NULL_RECEIVER = "null"
RECEIVER_KINDS = ("slack", "webhook", "pagerduty")
SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True, kw_only=True)
class ChartPin:
    """A Helm chart at an exact version."""

    name: str
    """Chart name."""
    version: str
    """Exact version (never a range)."""
    repo: str
    """Chart repository URL."""


KUBE_PROMETHEUS_STACK = ChartPin(name="kube-prometheus-stack", version="88.5.3",
                                 repo="https://prometheus-community.github.io/helm-charts")
DCGM_EXPORTER = ChartPin(name="dcgm-exporter", version="4.8.2",
                         repo="https://nvidia.github.io/dcgm-exporter/helm-charts")


@dataclass(frozen=True, kw_only=True)
class Receiver:
    """An Alertmanager receiver; its URL or key comes from the secrets mapping by name."""

    kind: str
    """`slack` | `webhook` | `pagerduty`."""
    channel: str | None = None
    """Slack channel."""
    severities: tuple[str, ...] = ("critical", "warning")
    """Severities routed to it."""

    def __post_init__(self) -> None:
        v.one_of("receiver.kind", self.kind, RECEIVER_KINDS)
        v.require(self.channel is None or self.kind == "slack", "receiver.channel", self.channel,
                  "is only allowed with kind slack")
        for severity in self.severities:
            v.one_of("receiver.severities", severity, SEVERITIES)


def _placement(p: Placement) -> dict[str, Any]:
    return {"nodeSelector": dict(p.node_selector), "tolerations": [t.to_manifest() for t in p.tolerations]}


def _receiver(name: str, r: Receiver, secret: str) -> dict[str, Any]:
    if r.kind == "slack":
        cfg: dict[str, Any] = {"api_url": secret, "send_resolved": True}
        if r.channel:
            cfg["channel"] = r.channel
        return {"name": name, "slack_configs": [cfg]}
    if r.kind == "webhook":
        return {"name": name, "webhook_configs": [{"url": secret, "send_resolved": True}]}
    return {"name": name, "pagerduty_configs": [{"routing_key": secret}]}


def alertmanager_config(receivers: Mapping[str, Receiver], secrets: Mapping[str, str]) -> dict[str, Any]:
    """Alertmanager's config: every receiver routed its severities; the chart's Watchdog stays
    on the null receiver. `secrets` maps receiver name to its URL/key (KeyError names a gap)."""
    routes: list[dict[str, Any]] = [{"receiver": NULL_RECEIVER, "matchers": ['alertname = "Watchdog"']}]
    routes += [{"receiver": name, "matchers": [f'severity =~ "{"|".join(r.severities)}"'], "continue": True}
               for name, r in sorted(receivers.items())]
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {"receiver": NULL_RECEIVER, "group_by": ["namespace", "alertname"], "group_wait": "30s",
                  "group_interval": "5m", "repeat_interval": "4h", "routes": routes},
        "receivers": [{"name": NULL_RECEIVER}]
        + [_receiver(name, r, secrets[name]) for name, r in sorted(receivers.items())],
    }


MANAGED_CONTROL_PLANE: dict[str, Any] = {
    component: {"enabled": False} for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd")}
"""EKS runs these on its own hosts and exposes no scrape targets for them: with them enabled the
chart's KubeSchedulerDown, KubeControllerManagerDown and etcd alerts fire forever. The flag
removes both the scrape config and the rules (templates/prometheus/rules-1.14/etcd.yaml,
kubernetes-system-scheduler.yaml, kubernetes-system-controller-manager.yaml test it at 88.5.3).
kube-proxy stays: EKS's add-on binds its metrics on 0.0.0.0:10249."""


PVC_RETENTION = {"whenDeleted": "Delete", "whenScaled": "Retain"}
"""Prometheus's claim goes with its StatefulSet (so with the release), not at some later namespace
deletion: the storage driver is asked to delete the volume while it still runs. prometheus-operator
`CommonPrometheusFields.persistentVolumeClaimRetentionPolicy` (the StatefulSet field, GA in
Kubernetes 1.32), passed through by kube-prometheus-stack as `prometheusSpec.*`."""


@dataclass(frozen=True, kw_only=True)
class PrometheusSettings:
    """What the kube-prometheus-stack values depend on."""

    scrape_interval_s: int
    """Scrape and rule evaluation interval."""
    retention_days: int
    """TSDB retention."""
    storage_gib: int
    """PVC size."""
    placement: Placement
    """Where Prometheus, Alertmanager, Grafana and the operator run."""
    node_pool_label: str
    """The node label naming a node's pool (allow-listed in kube-state-metrics)."""
    managed_control_plane: bool = True
    """Leave out the control-plane components (`MANAGED_CONTROL_PLANE`)."""


def kube_prometheus_stack_values(s: PrometheusSettings, alertmanager: Mapping[str, Any],
                                 admin_password: Any | None) -> dict[str, Any]:
    """Values: monitors and rules selected from every namespace (not only the chart's release
    label), retention and storage from config, Grafana loading labelled dashboard ConfigMaps, and
    no scrape or alert for a managed control plane."""
    where = _placement(s.placement)
    grafana: dict[str, Any] = {
        "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL[0],
                                   "labelValue": DASHBOARD_LABEL[1], "searchNamespace": "ALL"}},
        **where,
    }
    if admin_password is not None:
        grafana["adminPassword"] = admin_password
    spec = {
        "scrapeInterval": f"{s.scrape_interval_s}s", "evaluationInterval": f"{s.scrape_interval_s}s",
        "retention": f"{s.retention_days}d",
        "storageSpec": {"volumeClaimTemplate": {"spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{s.storage_gib}Gi"}},
        }}},
        "persistentVolumeClaimRetentionPolicy": PVC_RETENTION,
        **{f"{kind}SelectorNilUsesHelmValues": False for kind in ("serviceMonitor", "podMonitor", "rule")},
        **{f"{kind}NamespaceSelector": {} for kind in ("serviceMonitor", "podMonitor", "rule")},
        **where,
    }
    return {
        **(MANAGED_CONTROL_PLANE if s.managed_control_plane else {}),
        "prometheus": {"prometheusSpec": spec},
        "alertmanager": {"config": dict(alertmanager), "alertmanagerSpec": where},
        "grafana": grafana,
        "prometheusOperator": where,
        "kube-state-metrics": {"metricLabelsAllowlist": [f"nodes=[{s.node_pool_label}]"], **where},
    }


TARGET_POD_LABELS = ("pod", "namespace", "container")
"""The labels dcgm-exporter sets on a GPU mapped to a pod (internal/pkg/transformation/const.go
at 4.8.2) and the operator also sets on every target (the exporter pod's own)."""


def dcgm_exporter_values(gpu: Placement, scrape_interval_s: int) -> dict[str, Any]:
    """dcgm-exporter on GPU nodes only, tolerating their taint, with its own ServiceMonitor at
    our interval. `honorLabels` keeps the exporter's `pod`/`namespace`/`container` (the pod
    using each GPU); the target's own copies (the exporter pod's) are dropped before the scrape,
    so an idle GPU carries no `pod` at all instead of the exporter's: `{pod!=""}` counts GPUs in use."""
    drop = {"action": "labeldrop", "regex": "|".join(TARGET_POD_LABELS)}
    return {
        **_placement(gpu),
        "serviceMonitor": {"enabled": True, "interval": f"{scrape_interval_s}s", "honorLabels": True,
                           "relabelings": [drop]},
    }

