"""`Monitoring`: a thin Pulumi shell over the pure builders — two pinned Helm releases, the
stack's PodMonitors, dashboard ConfigMaps and one PrometheusRule. `MonitoringExtension` plugs
it into `LLMStack` (the stack's namespace is filled in from the context)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stack_components import kube
from stack_components.labels import object_labels
from stack_components.monitoring import helm
from stack_components.monitoring.args import MonitoringArgs
from stack_components.monitoring.manifests import dashboard_configmap, dashboards, prometheus_rule, rules
from stack_components.monitoring.scrape import stack_monitors
from stack_components.stack import StackContext

ROLE = "monitoring"


def _custom(resource_name: str, manifest: Mapping[str, Any],
            opts: pulumi.ResourceOptions) -> pulumi.Resource:
    return k8s.apiextensions.CustomResource(
        resource_name, api_version=manifest["apiVersion"], kind=manifest["kind"],
        metadata=manifest["metadata"], spec=manifest["spec"], opts=opts)


def _alertmanager(args: MonitoringArgs) -> pulumi.Input[dict[str, Any]]:
    if not args.receivers:
        return helm.alertmanager_config({}, {})
    assert args.receiver_secrets is not None  # MonitoringArgs: receivers need their secrets
    secrets = pulumi.Output.secret(args.receiver_secrets)
    return secrets.apply(lambda values: helm.alertmanager_config(args.receivers, values))


class Monitoring(pulumi.ComponentResource):
    """Prometheus, Alertmanager and Grafana (kube-prometheus-stack), dcgm-exporter, and the
    stack's scrape config, dashboards and alert rules."""

    dashboard_uids: pulumi.Output[list[str]]
    """The Grafana uids of the dashboards (open `/d/<uid>`)."""
    rule_names: pulumi.Output[list[str]]
    """The alert names."""
    namespace: pulumi.Output[str]
    """Where Prometheus, Grafana and Alertmanager run."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmstack:components:Monitoring", name, None, opts)
        child = kube.child_opts(self, opts)
        labels = object_labels(ROLE, name)
        releases = self._releases(name, args, self._namespace(name, args, labels, child), child)
        after = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=releases))
        monitors = stack_monitors(name, args.stack_namespace, args.scrape_interval_s, labels)
        for key, monitor in monitors.items():
            _custom(f"{name}-{key}", monitor, after)
        boards = dashboards(args)
        for spec in boards:
            kube.create(f"{name}-{spec.uid}", dashboard_configmap(spec, args.namespace, labels), after)
        alerts = rules(args)
        _custom(f"{name}-rules", prometheus_rule(f"{name}-rules", args.namespace, labels, alerts), after)
        self.dashboard_uids = pulumi.Output.from_input([b.uid for b in boards])
        self.rule_names = pulumi.Output.from_input([r.name for r in alerts])
        self.namespace = pulumi.Output.from_input(args.namespace)
        self.register_outputs({"dashboard_uids": self.dashboard_uids, "rule_names": self.rule_names,
                               "namespace": self.namespace})

    def _namespace(self, name: str, args: MonitoringArgs, labels: dict[str, str],
                   child: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        if not args.create_namespace:
            return []
        manifest = {"apiVersion": "v1", "kind": "Namespace",
                    "metadata": kube.metadata(args.namespace, None, labels)}
        return [kube.create(f"{name}-namespace", manifest, child)]

    def _releases(self, name: str, args: MonitoringArgs, prereqs: list[pulumi.Resource],
                  child: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        opts = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=prereqs))
        settings = helm.PrometheusSettings(
            scrape_interval_s=args.scrape_interval_s, retention_days=args.retention_days,
            storage_gib=args.storage_gib, placement=args.placement, node_pool_label=args.node_pool_label,
            managed_control_plane=args.managed_control_plane)
        password = pulumi.Output.secret(args.grafana_admin_password) if args.grafana_admin_password else None
        kps = helm.kube_prometheus_stack_values(settings, {}, password)
        kps["alertmanager"]["config"] = _alertmanager(args)
        stack = self._release(f"{name}-kps", helm.KUBE_PROMETHEUS_STACK, args.namespace, kps, opts)
        gpu = helm.dcgm_exporter_values(args.gpu_placement, args.scrape_interval_s)
        after_crds = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[stack]))
        return [stack, self._release(f"{name}-dcgm", helm.DCGM_EXPORTER, args.namespace, gpu, after_crds)]

    @staticmethod
    def _release(resource_name: str, chart: helm.ChartPin, namespace: str, values: dict[str, Any],
                 opts: pulumi.ResourceOptions) -> pulumi.Resource:
        return k8s.helm.v3.Release(
            resource_name, name=chart.name, chart=chart.name, version=chart.version, namespace=namespace,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo), values=values, atomic=True,
            timeout=900, opts=opts)


@dataclasses.dataclass(frozen=True)
class MonitoringExtension:
    """`LLMStack`'s monitoring seam: builds `Monitoring` for the stack's namespace."""

    args: MonitoringArgs
    """The monitoring args (`stack_namespace` is replaced by the stack's)."""
    name: str = "monitoring"
    """Component name."""

    def build(self, ctx: StackContext) -> None:
        """Create the `Monitoring` component with the stack's options."""
        Monitoring(self.name, dataclasses.replace(self.args, stack_namespace=ctx.namespace), ctx.opts)

    def dashboard_paths(self) -> list[str]:
        """Grafana paths of the dashboards (`/d/<uid>`), known before deploy."""
        return [f"/d/{spec.uid}" for spec in dashboards(self.args)]
