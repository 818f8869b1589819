"""`llm-stack:autoscaling`: engine autoscaling policies per model and the router's HPA.

```yaml
llm-stack:autoscaling:
  enabled: true
  targetWaitingPerEngine: 4
  scaleDownStabilizationSeconds: 900
  routerMaxReplicas: 6
  models:
    llama70b: {metric: queueTime, target: 1.0, loadTimeSeconds: 600}
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from infra.errors import require

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

SCALING_METRICS = ("queue", "kvCache", "queueTime")
"""What a model scales on (see `policies.autoscaling.policy`)."""


@dataclass(frozen=True, kw_only=True)
class ModelScalingConfig:
    """One model's autoscaling policy (`llm-stack:autoscaling.models.<model key>`); the replica
    range is the model's own `minReplicas`/`maxReplicas` (`minReplicas: 0` scales to zero)."""

    metric: Literal["queue", "kvCache", "queueTime"] = "queue"
    """`queue`: waiting requests per engine; `kvCache`: KV-cache usage per engine; `queueTime`: a
    percentile of the time requests wait to be scheduled (`vllm:request_queue_time_seconds`).
    There is no TTFT metric: TTFT grows with uncached prompt length at zero load, so long prompts
    would add replicas (and GPU nodes) that cannot lower it."""
    target: float | None = None
    """queue: waiting per engine (None: `targetWaitingPerEngine`); kvCache: usage in (0, 1]
    (None: 0.8); queueTime: the objective in seconds (required)."""
    quantile: float = 0.9
    """The percentile the queueTime objective holds."""
    load_time_seconds: int | None = None
    """Measured seconds from pod start to ready; sizes the windows (None: estimated from the
    weights' size, 60 s + 2 s per GB)."""
    activation_rps: float = 0.0
    """Router requests/s that wake a model at zero engines."""

    def __post_init__(self) -> None:
        require(self.target is None or self.target > 0, "target", self.target, "must be > 0")
        require(self.metric != "kvCache" or self.target is None or self.target <= 1, "target", self.target,
                "must be in (0, 1] for metric kvCache")
        require(self.metric != "queueTime" or self.target is not None, "target", self.target,
                "must be set (seconds) for metric queueTime")
        require(0.5 <= self.quantile <= 0.99, "quantile", self.quantile, "must be in 0.5..0.99")
        require(self.load_time_seconds is None or 1 <= self.load_time_seconds <= 1800, "loadTimeSeconds",
                self.load_time_seconds, "must be in 1..1800")
        require(self.activation_rps >= 0, "activationRps", self.activation_rps, "must be >= 0")


@dataclass(frozen=True, kw_only=True)
class AutoscalingConfig:
    """Engine autoscaling (KEDA ScaledObjects on Prometheus triggers) and the router's CPU HPA;
    the node pools follow the pods (each pool's maxSize must hold its models' maxReplicas)."""

    enabled: bool = True
    """Scale engines between each model's minReplicas and maxReplicas."""
    target_waiting_per_engine: float = 4.0
    """Waiting requests per engine (`vllm:num_requests_waiting`) the autoscaler aims at."""
    scale_down_stabilization_seconds: int = 600
    """How long load must stay low before an engine is removed (raised to twice each model's
    load time: engines load slowly)."""
    models: dict[str, ModelScalingConfig] = field(default_factory=dict)
    """Per-model policy keyed by model key; models not listed scale on queue depth."""
    prometheus_url: str = "http://prometheus-operated.monitoring.svc.cluster.local:9090"
    """Prometheus the triggers query (default: the `prometheus-operated` Service prometheus-operator
    creates beside each Prometheus, in namespace `monitoring`)."""
    prometheus_token_secret: str | None = None
    """Existing Secret (key `token`) with a bearer token for Prometheus; None: no auth."""
    polling_interval_seconds: int = 15
    """How often KEDA evaluates each trigger."""
    router_max_replicas: int | None = None
    """Most router pods under its CPU HPA (min: `router.replicas`); None: no router HPA."""
    router_cpu_utilization: int = 70
    """The router HPA's CPU utilisation target, percent."""

    def __post_init__(self) -> None:
        require(self.target_waiting_per_engine > 0, "targetWaitingPerEngine", self.target_waiting_per_engine,
                "must be > 0")
        require(0 <= self.scale_down_stabilization_seconds <= 3600, "scaleDownStabilizationSeconds",
                self.scale_down_stabilization_seconds, "must be in 0..3600")
        require(self.prometheus_url.startswith(("http://", "https://")), "prometheusUrl", self.prometheus_url,
                "must be an http(s):// URL")
        require(1 <= self.polling_interval_seconds <= 300, "pollingIntervalSeconds",
                self.polling_interval_seconds, "must be in 1..300")
        require(self.router_max_replicas is None or 1 <= self.router_max_replicas <= 32, "routerMaxReplicas",
                self.router_max_replicas, "must be in 1..32")
        require(10 <= self.router_cpu_utilization <= 100, "routerCpuUtilization", self.router_cpu_utilization,
                "must be in 10..100")


def check_autoscaling(config: StackConfig) -> None:
    """`autoscaling.models` names only configured models."""
    for name in config.autoscaling.models:
        require(name in config.models, f"llm-stack:autoscaling.models.{name}", name,
                f"must name a model in llm-stack:models ({', '.join(sorted(config.models))})")
