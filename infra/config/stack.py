"""`StackConfig`: the whole validated stack configuration (every `llm-stack:` key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from infra.config.adapter_sources import AdapterSourcesConfig
from infra.config.autoscaling import AutoscalingConfig
from infra.config.cluster import ClusterConfig, dns_label
from infra.config.models import ModelConfig
from infra.config.pools import NodePoolConfig
from infra.config.services import (
    BenchmarkConfig,
    KvEventsConfig,
    LmcacheConfig,
    ModelStoreConfig,
    MonitoringConfig,
    RouterConfig,
)
from infra.errors import require

SECRET_KEYS = ("hfToken", "routerApiKeys", "kubeconfig", "grafanaAdminPassword", "alertReceiverSecrets")
"""Top-level keys that must be Pulumi secrets (`pulumi config set --secret llm-stack:KEY ...`):
the Hugging Face token, the router's API keys (comma-separated), with mode `existing` the
cluster's kubeconfig, Grafana's admin password, and the Alertmanager receivers' URLs/keys (a
JSON object keyed by receiver name)."""


@dataclass(frozen=True, kw_only=True)
class SecretRef:
    """Marks a configured secret: its key only, never its value (values stay Pulumi Outputs)."""

    key: str
    """The config key without the `llm-stack:` prefix, e.g. `hfToken`."""


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """Every `llm-stack:` key, typed and validated (field rules here, cross-field rules in `rules`)."""

    cluster: ClusterConfig
    """`llm-stack:cluster`."""
    node_pools: dict[str, NodePoolConfig]
    """`llm-stack:nodePools`, keyed by pool name."""
    models: dict[str, ModelConfig]
    """`llm-stack:models`, keyed by model name."""
    router: RouterConfig
    """`llm-stack:router`."""
    namespace: str = "llm-stack"
    """Kubernetes namespace for the whole serving stack."""
    lmcache: LmcacheConfig = field(default_factory=LmcacheConfig)
    """`llm-stack:lmcache`."""
    kv_events: KvEventsConfig = field(default_factory=KvEventsConfig)
    """`llm-stack:kvEvents`."""
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    """`llm-stack:monitoring`."""
    autoscaling: AutoscalingConfig = field(default_factory=AutoscalingConfig)
    """`llm-stack:autoscaling`."""
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    """`llm-stack:benchmark`."""
    model_store: ModelStoreConfig | None = None
    """`llm-stack:modelStore`: load weights from S3 (EKS mode); None downloads from the Hugging Face hub."""
    adapter_sources: AdapterSourcesConfig = field(default_factory=AdapterSourcesConfig)
    """`llm-stack:adapterSources`: where LoRA adapters may come from, and whether they must be pinned."""
    secret_keys: frozenset[str] = field(default=frozenset(), metadata={"config": False})
    """Which of `SECRET_KEYS` are set (as secrets); their values are read as Outputs by the program."""
    today: date = field(default_factory=date.today, metadata={"config": False})
    """The date the config is judged on (EKS version support); the loader passes it in."""

    def __post_init__(self) -> None:
        dns_label("namespace", self.namespace)
        require(bool(self.models), "models", {}, "must define at least one model")
        for name in self.node_pools:
            dns_label(f"nodePools.{name}", name, max_len=40)
        for name in self.models:
            dns_label(f"models.{name}", name, max_len=40)

    def uses_lmcache(self, model: str) -> bool:
        """Whether `model`'s engines run with LMCache: the stack's LMCache on, and the model not opted out."""
        return self.lmcache.enabled and self.models[model].lmcache

    def served_name(self, model: str) -> str:
        """The name clients send for `model` (its `servedName`, else its key)."""
        return self.models[model].served_name or model
