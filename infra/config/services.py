"""The serving sections besides models: `lmcache`, `kvEvents`, `router`, `monitoring`, `autoscaling`,
`benchmark`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from contracts.kv_events import KV_SCORING_EVENTS, KV_SCORINGS
from infra.config.exposure import ExposureConfig
from infra.config.parse import camel
from infra.errors import require
from stack_components.errors import ArgsError
from stack_components.monitoring.helm import Receiver

_IMAGE = re.compile(r"^[\w.-]+(:\d+)?(/[\w.-]+)+(:[\w.-]+|@sha256:[0-9a-f]{64})$")


def check_image(key: str, image: str) -> None:
    """A container image reference pinned by tag or digest (never implicit `latest`)."""
    require(bool(_IMAGE.match(image)) and not image.endswith(":latest"), key, image,
            "must be an image reference pinned by a tag other than 'latest' or by digest")


# Bucket naming rules: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
# (general purpose buckets: 3-63 characters of lowercase letters, digits, '.' and '-', beginning
# and ending with a letter or digit, no '..', not an IP address, reserved prefixes/suffixes).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


def bucket_name_problem(name: str) -> str | None:
    """Why `name` breaks S3's general-purpose bucket naming rules, or None when it follows them."""
    if not isinstance(name, str) or not _BUCKET.match(name):
        return ("must be 3-63 lowercase letters, digits, '.' or '-', "
                "beginning and ending with a letter or digit")
    if ".." in name:
        return "must not hold two adjacent periods"
    if _IPV4.match(name):
        return "must not be formatted as an IP address"
    if name.startswith(_BUCKET_RESERVED_PREFIXES) or name.endswith(_BUCKET_RESERVED_SUFFIXES):
        return (f"must not begin with {', '.join(_BUCKET_RESERVED_PREFIXES)} "
                f"nor end with {', '.join(_BUCKET_RESERVED_SUFFIXES)} (reserved by S3)")
    return None


@dataclass(frozen=True, kw_only=True)
class ModelStoreConfig:
    """Load every model's weights from S3 instead of the Hugging Face hub (EKS mode): an init
    container copies `s3://<bucket>/<prefix>/<modelId>/<revision>/` into the node's model cache
    once, and vLLM loads that directory. The program creates a read-only IRSA role for the
    engines; the VPC's S3 gateway endpoint (always there) carries the bytes, not NAT."""

    bucket: str
    """The S3 bucket holding the weights (an existing bucket; the stack only reads it)."""
    prefix: str = "models"
    """Key prefix under which `<modelId>/<revision>/` directories live (no leading or trailing '/')."""
    region: str | None = None
    """The bucket's region; None: the cluster's (`cluster.eks.region`). A gateway endpoint only
    carries traffic to buckets in the VPC's own region."""

    def __post_init__(self) -> None:
        problem = bucket_name_problem(self.bucket)
        require(problem is None, "bucket", self.bucket, problem or "")
        parts = self.prefix.split("/") if isinstance(self.prefix, str) else [""]
        require(all(p and p not in (".", "..") for p in parts), "prefix", self.prefix,
                "must be a non-empty S3 key prefix without leading or trailing '/', '//' "
                "or '.'/'..' segments")
        require(self.region is None or bool(_REGION.match(self.region)), "region", self.region,
                "must be an AWS region name such as 'us-east-1', or unset (the cluster's region)")


@dataclass(frozen=True, kw_only=True)
class CacheServerConfig:
    """The optional shared remote cache tier all engines share: one Redis-protocol server (Valkey)
    bounded by `maxmemory`, evicting least-recently-used entries (LMCache's own `lmcache_server`
    never evicts). One replica: LMCache's `redis://` URL names one server."""

    enabled: bool = False
    """Deploy the cache server and point every engine's LMCache remote URL at it."""
    memory_gib: int = 64
    """Cache size in GiB (the server's `maxmemory`); the pod also holds the clients' buffers
    (every engine rank at maxReplicas × 8 values of its largest LMCache chunk, Valkey's
    `maxmemory-clients`) and 2 GiB for the process, and must fit a system-pool node."""

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
class KvEventsConfig:
    """vLLM's KV-cache events: every engine publishes which blocks it holds, per tier (GPU, and
    LMCache's CPU tier republished), on ZMQ ports only the router may reach."""

    enabled: bool = True
    """Engines publish KV events (`--kv-events-config`, `LMCACHE_ENABLE_KV_EVENTS`) and the
    NetworkPolicy admits the router on the event and replay ports. On by default: switching it
    restarts every engine (a model load), while publishing with no subscriber costs a publisher
    thread and a replay buffer of the last 10,000 batches in the engine's host memory."""
    scoring: str = KV_SCORING_EVENTS
    """How the router scores engines while the events flow: `events` (each engine by the blocks
    its events report, each prompt tokenised by an engine's `/tokenize`; an engine whose events
    are missing, stale or lost falls back to the estimate) or `approximate` (the router's own
    estimate of what it sent; events still followed and shown). The router's
    `kv_events.scoring`."""

    def __post_init__(self) -> None:
        require(self.scoring in KV_SCORINGS, "scoring", self.scoring,
                f"must be one of {', '.join(KV_SCORINGS)}")


@dataclass(frozen=True, kw_only=True)
class PolicyConfig:
    """The routing policy by kind, with its parameters: validated by the router's own policy
    registry (`router.routing.policies.registry.build_policy`) when the config is parsed."""

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
    exposure: ExposureConfig = field(default_factory=ExposureConfig)
    """Who can reach the router: in-cluster only (default), an internal NLB, or a public NLB with TLS."""

    def __post_init__(self) -> None:
        if self.image is not None:
            check_image("image", self.image)
        require(1 <= self.replicas <= 32, "replicas", self.replicas, "must be in 1..32")


@dataclass(frozen=True, kw_only=True)
class ReceiverConfig:
    """One Alertmanager receiver; its URL or key is the entry named like the receiver in the
    secret `llm-stack:alertReceiverSecrets` (a JSON object)."""

    kind: Literal["slack", "webhook", "pagerduty"]
    """Slack incoming webhook, a generic webhook, or a PagerDuty Events v2 routing key."""
    channel: str | None = None
    """Slack channel (slack only)."""
    severities: tuple[str, ...] = ("critical", "warning")
    """Alert severities routed to this receiver."""

    def __post_init__(self) -> None:
        """The component's `Receiver` holds the rules; its errors come back under this key."""
        try:
            Receiver(kind=self.kind, channel=self.channel, severities=self.severities)
        except ArgsError as err:
            require(False, camel(err.field_name.rsplit(".", 1)[-1]), err.value, err.allowed)


@dataclass(frozen=True, kw_only=True)
class MonitoringConfig:
    """Prometheus scraping of engines, router, cache server and GPUs; dashboards and alert rules."""

    enabled: bool = True
    """Deploy monitoring."""
    scrape_interval_seconds: int = 15
    """Prometheus scrape interval."""
    retention_days: int = 15
    """Prometheus retention."""
    storage_gib: int = 50
    """Prometheus volume (a PVC of the cluster's default StorageClass)."""
    ttft_objective_seconds: float = 2.0
    """p95 time to first token the TTFT alert holds the engines to."""
    max_waiting_per_engine: int = 32
    """Waiting requests per engine beyond which the queueing alert fires."""
    receivers: dict[str, ReceiverConfig] = field(default_factory=dict)
    """Alertmanager receivers keyed by name (none: alerts stay in Alertmanager's UI)."""

    def __post_init__(self) -> None:
        require(5 <= self.scrape_interval_seconds <= 300, "scrapeIntervalSeconds",
                self.scrape_interval_seconds, "must be in 5..300")
        require(1 <= self.retention_days <= 365, "retentionDays", self.retention_days, "must be in 1..365")
        require(1 <= self.storage_gib <= 16384, "storageGiB", self.storage_gib, "must be in 1..16384")
        require(0 < self.ttft_objective_seconds <= 600, "ttftObjectiveSeconds", self.ttft_objective_seconds,
                "must be in (0, 600]")
        require(1 <= self.max_waiting_per_engine <= 10_000, "maxWaitingPerEngine",
                self.max_waiting_per_engine, "must be in 1..10000")
        for name in self.receivers:
            require(bool(re.fullmatch(r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?", name)), "receivers", name,
                    "must be a DNS label (lowercase letters, digits, inner '-')")


@dataclass(frozen=True, kw_only=True)
class BenchmarkConfig:
    """The post-deploy multi-round QA benchmark Job (the seed's workload shape by default)."""

    enabled: bool = True
    """Run the benchmark Job after each deploy."""
    image: str | None = None
    """Benchmark image to run instead of building one; None (the default): `pulumi up` builds
    bench/Dockerfile (`llm-stack bench` and its publisher) and pushes it to an ECR repository of
    the stack (Docker needed on the deploying machine). Required with `cluster.mode: existing`."""
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

