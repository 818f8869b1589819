"""`Monitoring` under the recording mocks: pinned releases, PodMonitors, dashboard ConfigMaps
and one PrometheusRule, wired from the args; invalid args name the field."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from contracts import JOB_ENGINES, JOB_ROUTER, ROLE_ENGINE, ROLE_ROUTER
from stack_components.common import Placement
from stack_components.errors import ArgsError
from stack_components.monitoring import (
    Monitoring,
    MonitoringArgs,
    PoolLimit,
    Receiver,
    ReplicaBounds,
)
from stack_components.monitoring.helm import (
    DCGM_EXPORTER,
    KUBE_PROMETHEUS_STACK,
    PrometheusSettings,
    kube_prometheus_stack_values,
)
from stack_components.monitoring.rules import RUNBOOK

RELEASE = "kubernetes:helm.sh/v3:Release"
SIG_SECRET = "1b47061264138c4ac30d75fd1eb44270"
ARGS = MonitoringArgs(
    stack_namespace="llm", scrape_interval_s=20, retention_days=9, storage_gib=77, ttft_objective_s=1.5,
    models={"llama-8b": ReplicaBounds(min=1, max=4)},
    pools={"a100": PoolLimit(max_nodes=3, gpus_per_node=8),
           "system": PoolLimit(max_nodes=2, gpus_per_node=0)},
    grafana_admin_password="hunter2-but-long",
    receivers={"oncall": Receiver(kind="pagerduty"), "team": Receiver(kind="slack", channel="#llm")},
    receiver_secrets={"oncall": "pd-routing-key", "team": "https://hooks.slack.example/T0"},
)


def _plain(value):
    """A recorded state value with Pulumi's secret wrappers removed."""
    if isinstance(value, dict):
        if value.get("4dabf18193072939515e22adb298388d") == SIG_SECRET:
            return _plain(value["value"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _objects(pulumi_mocks, kind: str) -> list[dict]:
    return [r.inputs for r in pulumi_mocks.resources if r.inputs.get("kind") == kind]


def _releases(pulumi_mocks) -> dict[str, dict]:
    return {r.inputs["chart"]: _plain(r.state) for r in pulumi_mocks.of_type(RELEASE)}


def test_releases_are_pinned_with_config_values(deploy, pulumi_mocks) -> None:
    """kube-prometheus-stack and dcgm-exporter at their pinned versions; retention, storage,
    interval, secret Grafana password and every-namespace selection from the args."""
    deploy(lambda: Monitoring("mon", ARGS))
    releases = _releases(pulumi_mocks)
    assert set(releases) == {KUBE_PROMETHEUS_STACK.name, DCGM_EXPORTER.name}
    for chart in (KUBE_PROMETHEUS_STACK, DCGM_EXPORTER):
        assert releases[chart.name]["version"] == chart.version
        assert releases[chart.name]["repositoryOpts"]["repo"] == chart.repo
        assert releases[chart.name]["namespace"] == "monitoring"
    kps = releases[KUBE_PROMETHEUS_STACK.name]["values"]
    spec = kps["prometheus"]["prometheusSpec"]
    assert (spec["retention"], spec["scrapeInterval"]) == ("9d", "20s")
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "77Gi"
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False and spec["ruleNamespaceSelector"] == {}
    assert kps["grafana"]["adminPassword"] == "hunter2-but-long"
    (recorded,) = [r for r in pulumi_mocks.of_type(RELEASE)
                   if r.inputs["chart"] == KUBE_PROMETHEUS_STACK.name]
    assert "hunter2-but-long" not in json.dumps(recorded.inputs)
    dcgm = releases[DCGM_EXPORTER.name]["values"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in dcgm["tolerations"]
    drop = {"action": "labeldrop", "regex": "pod|namespace|container"}
    assert dcgm["serviceMonitor"] == {"enabled": True, "interval": "20s", "honorLabels": True,
                                      "relabelings": [drop]}
    assert all(kps[c] == {"enabled": False} for c in ("kubeControllerManager", "kubeScheduler", "kubeEtcd"))


def test_alertmanager_routes_every_receiver_with_its_secret(deploy, pulumi_mocks) -> None:
    """Each configured receiver gets its URL/key from the secret mapping and a severity route."""
    deploy(lambda: Monitoring("mon", ARGS))
    config = _releases(pulumi_mocks)[KUBE_PROMETHEUS_STACK.name]["values"]["alertmanager"]["config"]
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == {"null", "oncall", "team"}
    assert receivers["oncall"]["pagerduty_configs"] == [{"routing_key": "pd-routing-key"}]
    assert receivers["team"]["slack_configs"][0]["api_url"] == "https://hooks.slack.example/T0"
    routed = {r["receiver"] for r in config["route"]["routes"]}
    assert routed == {"null", "oncall", "team"}


def test_pod_monitors_select_engines_and_router(deploy, pulumi_mocks) -> None:
    """One PodMonitor per role in the stack's namespace, relabelling `job` to the shared names."""
    deploy(lambda: Monitoring("mon", ARGS))
    monitors = {m["spec"]["selector"]["matchLabels"]["llmstack.io/role"]: m
                for m in _objects(pulumi_mocks, "PodMonitor")}
    assert set(monitors) == {ROLE_ENGINE, ROLE_ROUTER}
    for role, job in ((ROLE_ENGINE, JOB_ENGINES), (ROLE_ROUTER, JOB_ROUTER)):
        (endpoint,) = monitors[role]["spec"]["podMetricsEndpoints"]
        assert monitors[role]["metadata"]["namespace"] == "llm"
        assert endpoint["interval"] == "20s" and endpoint["relabelings"][0]["replacement"] == job


def test_dashboards_and_rules_are_delivered(deploy, pulumi_mocks) -> None:
    """Three dashboard ConfigMaps labelled for Grafana's sidecar; one PrometheusRule whose every
    alert has a summary, a runbook and a severity."""
    deploy(lambda: Monitoring("mon", ARGS))
    maps = [m for m in _objects(pulumi_mocks, "ConfigMap")
            if m["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(maps) == 3
    for cm in maps:
        (text,) = cm["data"].values()
        assert json.loads(text)["uid"] == cm["metadata"]["name"]
    (rule,) = _objects(pulumi_mocks, "PrometheusRule")
    alerts = rule["spec"]["groups"][0]["rules"]
    assert len(alerts) >= 10
    for alert in alerts:
        assert alert["annotations"][RUNBOOK] and alert["annotations"]["summary"]
        assert alert["labels"]["severity"] in ("critical", "warning")


@pytest.mark.parametrize(("change", "field"), [
    ({"scrape_interval_s": 2}, "scrape_interval_s"),
    ({"namespace": "Monitoring"}, "namespace"),
    ({"models": {"m": ReplicaBounds(min=3, max=1)}}, "models['m']"),
    ({"pools": {"a100": PoolLimit(max_nodes=0, gpus_per_node=8)}}, "pools['a100']"),
    ({"receivers": {"team": Receiver(kind="webhook")}}, "receiver_secrets"),
])
def test_invalid_args_name_the_field(change, field) -> None:
    """Each invalid value fails at construction naming its field."""
    with pytest.raises(ArgsError, match=field.replace("[", r"\[")):
        MonitoringArgs(**change)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"kind": "email"}, "receiver.kind"),
    ({"kind": "webhook", "channel": "#x"}, "receiver.channel"),
    ({"kind": "slack", "severities": ("page",)}, "receiver.severities"),
])
def test_invalid_receiver_names_the_field(kwargs, field) -> None:
    """A receiver with an unknown kind, a misplaced channel or an unknown severity names the field."""
    with pytest.raises(ArgsError, match=field):
        Receiver(**kwargs)


def test_a_self_managed_control_plane_keeps_its_components() -> None:
    """`managed_control_plane=False` leaves the chart's scheduler, controller-manager and etcd
    scrapes (and their alerts) on, for clusters whose control plane can be scraped."""
    settings = PrometheusSettings(scrape_interval_s=15, retention_days=1, storage_gib=1,
                                  placement=Placement(), node_pool_label="pool", managed_control_plane=False)
    values = kube_prometheus_stack_values(settings, {}, None)
    assert not {"kubeControllerManager", "kubeScheduler", "kubeEtcd"} & set(values)
    managed = kube_prometheus_stack_values(replace(settings, managed_control_plane=True), {}, None)
    assert managed["kubeEtcd"] == {"enabled": False}
