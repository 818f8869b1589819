"""The serving sections besides models: `lmcache`, `router`, `monitoring`, `autoscaling`, `benchmark`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from infra.config._parse import camel
from infra.errors import require

_IMAGE = re.compile(r"^[\w.-]+(:\d+)?(/[\w.-]+)+(:[\w.-]+|@sha256:[0-9a-f]{64})$")


def check_image(key: str, image: str) -> None:
    """A container image reference pinned by tag or digest (never implicit `latest`)."""
    require(bool(_IMAGE.match(image)) and not image.endswith(":latest"), key, image,
            "must be an image reference pinned by a tag other than 'latest' or by digest")


@dataclass(frozen=True, kw_only=True)
class CacheServerConfig:
    """The optional shared remote cache tier all engines share: one Redis-protocol server (Valkey)
    bounded by `maxmemory`, evicting least-recently-used entries (LMCache's own `lmcache_server`
    never evicts). One replica: LMCache's `redis://` URL names one server."""

    enabled: bool = False
    """Deploy the cache server and point every engine's LMCache remote URL at it."""
    memory_gib: int = 64
    """Cache size in GiB (the server's `maxmemory`); the pod gets 2 GiB more."""

    def __post_init__(self) -> None:
        require(1 <= self.memory_gib <= 4096, "memoryGiB", self.memory_gib, "must be in 1..4096")


@dataclass(frozen=True, kw_only=True)
class LmcacheConfig:
    """LMCache KV offload for every engine."""

    enabled: bool = True
    """Run engines with the LMCache KV connector."""
    cpu_buffer_gib: float = 20.0
    """CPU (host RAM) buffer in GiB per GPU, i.e. per tensor-parallel rank (LMCache's
    `max_local_cpu_size`: GiB, one buffer per rank); an engine with TP n holds n of them, which
    must fit its share of the node's RAM."""
    disk_buffer_gib: float = 0.0
    """Local-disk tier in GiB per GPU / TP rank, on the node's NVMe (0: off)."""
    chunk_size: int = 256
    """Tokens per LMCache chunk."""
    server: CacheServerConfig = field(default_factory=CacheServerConfig)
    """Optional shared cache server."""

    def __post_init__(self) -> None:
        require(self.cpu_buffer_gib >= 0, "cpuBufferGiB", self.cpu_buffer_gib, "must be >= 0")
        require(self.disk_buffer_gib >= 0, "diskBufferGiB", self.disk_buffer_gib, "must be >= 0")
        require(self.chunk_size in (64, 128, 256, 512, 1024), "chunkSize", self.chunk_size,
                "must be one of 64, 128, 256, 512, 1024")


@dataclass(frozen=True, kw_only=True)
class PolicyConfig:
    """The routing policy by kind, with its parameters: validated by the router's own policy
    registry (`router.policies.registry.build_policy`) when the config is parsed."""

    kind: str = "prefix"
    """One of the router's policies (`prefix`, `session`, `least_load`, `round_robin`)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Policy parameters, passed through to the router's settings."""


@dataclass(frozen=True, kw_only=True)
class RouterConfig:
    """The prefix-aware router in front of every engine."""

    image: str | None = None
    """Router image to run instead of building one; None (the default): `pulumi up` builds
    router/Dockerfile and pushes it to an ECR repository of the stack (Docker needed on the
    deploying machine). Required with `cluster.mode: existing`."""
    replicas: int = 2
    """Router pods."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Routing policy."""
    require_api_keys: bool = True
    """Refuse requests without one of the keys in the secret `llm-stack:routerApiKeys`."""
    service_type: Literal["ClusterIP", "LoadBalancer"] = "ClusterIP"
    """How the router Service is exposed (LoadBalancer: an internal NLB on EKS)."""

    def __post_init__(self) -> None:
        if self.image is not None:
            check_image("image", self.image)
        require(1 <= self.replicas <= 32, "replicas", self.replicas, "must be in 1..32")


@dataclass(frozen=True, kw_only=True)
class MonitoringConfig:
    """Prometheus scraping of engines and router, dashboards and alert rules."""

    enabled: bool = True
    """Deploy monitoring."""
    scrape_interval_seconds: int = 15
    """Prometheus scrape interval."""
    retention_days: int = 15
    """Prometheus retention."""

    def __post_init__(self) -> None:
        require(5 <= self.scrape_interval_seconds <= 300, "scrapeIntervalSeconds",
                self.scrape_interval_seconds, "must be in 5..300")
        require(1 <= self.retention_days <= 365, "retentionDays", self.retention_days, "must be in 1..365")


@dataclass(frozen=True, kw_only=True)
class AutoscalingConfig:
    """Engine autoscaling on engine queue depth (the node pool follows the pods)."""

    enabled: bool = True
    """Scale engines between each model's minReplicas and maxReplicas."""
    target_waiting_per_engine: float = 4.0
    """Waiting requests per engine (`vllm:num_requests_waiting`) the autoscaler aims at."""
    scale_down_stabilization_seconds: int = 600
    """How long load must stay low before an engine is removed (engines load slowly)."""

    def __post_init__(self) -> None:
        require(self.target_waiting_per_engine > 0, "targetWaitingPerEngine", self.target_waiting_per_engine,
                "must be > 0")
        require(0 <= self.scale_down_stabilization_seconds <= 3600, "scaleDownStabilizationSeconds",
                self.scale_down_stabilization_seconds, "must be in 0..3600")


@dataclass(frozen=True, kw_only=True)
class BenchmarkConfig:
    """The post-deploy multi-round QA benchmark Job (the seed's workload shape by default)."""

    enabled: bool = True
    """Run the benchmark Job after each deploy."""
    image: str | None = None
    """Benchmark image; None: the router image (it carries `llm-stack bench` and the publisher)."""
    model: str | None = None
    """Key of the model to benchmark; None: the first model."""
    users: int = 320
    """Concurrent simulated users."""
    rounds: int = 10
    """Rounds per user."""
    system_prompt_tokens: int = 1000
    """Shared system prompt length."""
    history_tokens: int = 20000
    """Per-user history length."""
    answer_tokens: int = 100
    """Answer length."""
    qps: tuple[float, ...] = (0.1, 1.1, 2.1, 3.1, 4.1)
    """Request rates swept, ascending."""

    def __post_init__(self) -> None:
        if self.image is not None:
            check_image("image", self.image)
        for name, low in (("users", 1), ("rounds", 1), ("answer_tokens", 1), ("system_prompt_tokens", 0),
                          ("history_tokens", 0)):
            require(getattr(self, name) >= low, camel(name), getattr(self, name), f"must be >= {low}")
        require(bool(self.qps) and all(q > 0 for q in self.qps) and list(self.qps) == sorted(set(self.qps)),
                "qps", list(self.qps), "must be a non-empty ascending list of distinct rates > 0")

