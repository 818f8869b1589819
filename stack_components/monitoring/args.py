"""`MonitoringArgs`: everything the `Monitoring` component needs, frozen and validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from stack_components import _validate as v
from stack_components.common import GPU_TOLERATION, Placement
from stack_components.monitoring.dashboards.capacity import PoolLimit, ReplicaBounds
from stack_components.monitoring.helm import Receiver

GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
"""The label NVIDIA's GPU feature discovery / EKS GPU AMIs put on GPU nodes."""


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    """kube-prometheus-stack, dcgm-exporter, the stack's monitors, dashboards and alert rules."""

    namespace: str = "monitoring"
    """Namespace of the Helm releases, dashboards and rules (trust it in the stack's NetworkPolicies)."""
    create_namespace: bool = True
    """Create that namespace."""
    stack_namespace: str = "llm-stack"
    """Namespace of the engines and router (filled in by `LLMStack`)."""
    scrape_interval_s: int = 15
    """Scrape and rule evaluation interval, seconds."""
    retention_days: int = 15
    """Prometheus retention, days."""
    storage_gib: int = 50
    """Prometheus volume, GiB."""
    ttft_objective_s: float = 2.0
    """p95 TTFT above which `LLMTimeToFirstTokenHigh` fires."""
    max_waiting_per_engine: int = 32
    """Waiting requests per engine above which `LLMRequestsQueueing` fires."""
    lora: bool = False
    """Some engines serve LoRA adapters: the Serving dashboard's LoRA panel and the
    `LLMLoraAdaptersWaiting` alert ship (from `vllm:lora_requests_info`, which only such engines export)."""
    models: Mapping[str, ReplicaBounds] = field(default_factory=dict)
    """Replica bounds by served model name (the Capacity dashboard)."""
    pools: Mapping[str, PoolLimit] = field(default_factory=dict)
    """Node pools by name with their limits (Capacity dashboard, pool-at-max alert)."""
    node_pool_label: str = "llmstack.io/node-pool"
    """Node label holding a node's pool name."""
    managed_control_plane: bool = True
    """The cluster's scheduler, controller manager and etcd are the provider's (EKS, GKE, AKS) and
    cannot be scraped: leave out their scrape configs and their always-firing alerts."""
    placement: Placement = field(default_factory=Placement)
    """Where Prometheus, Alertmanager, Grafana and the operator run."""
    gpu_placement: Placement = field(
        default_factory=lambda: Placement(node_selector=GPU_NODE_SELECTOR, tolerations=(GPU_TOLERATION,)))
    """Where dcgm-exporter runs: GPU nodes, tolerating their taint."""
    grafana_admin_password: pulumi.Input[str] | None = None
    """Grafana's admin password (a Pulumi secret); None lets the chart generate one in its Secret."""
    receivers: Mapping[str, Receiver] = field(default_factory=dict)
    """Alertmanager receivers by name."""
    receiver_secrets: pulumi.Input[Mapping[str, str]] | None = None
    """Each receiver's URL or routing key by receiver name (a Pulumi secret)."""

    def __post_init__(self) -> None:
        v.dns_label("namespace", self.namespace)
        v.dns_label("stack_namespace", self.stack_namespace)
        v.int_in("scrape_interval_s", self.scrape_interval_s, 5, 300)
        v.int_in("retention_days", self.retention_days, 1, 365)
        v.int_in("storage_gib", self.storage_gib, 1, 16384)
        v.require(isinstance(self.ttft_objective_s, int | float) and 0 < self.ttft_objective_s <= 600,
                  "ttft_objective_s", self.ttft_objective_s, "must be a number in (0, 600]")
        v.int_in("max_waiting_per_engine", self.max_waiting_per_engine, 1, 10_000)
        for name, bounds in self.models.items():
            v.require(isinstance(bounds, ReplicaBounds) and 0 <= bounds.min <= bounds.max,
                      f"models[{name!r}]", bounds, "must be a ReplicaBounds with 0 <= min <= max")
        for name, pool in self.pools.items():
            v.dns_label("pools", name)
            v.require(isinstance(pool, PoolLimit) and pool.max_nodes >= 1 and pool.gpus_per_node >= 0,
                      f"pools[{name!r}]", pool, "must be a PoolLimit with max_nodes >= 1, gpus_per_node >= 0")
        for name, receiver in self.receivers.items():
            v.dns_label("receivers", name)
            v.require(isinstance(receiver, Receiver), f"receivers[{name!r}]", receiver, "must be a Receiver")
        v.require(not self.receivers or self.receiver_secrets is not None, "receiver_secrets", None,
                  "must be set when receivers are configured")
