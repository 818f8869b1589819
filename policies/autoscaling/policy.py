"""`EnginePolicy`: one model's autoscaling policy, typed and validated, and the HPA behaviour
sized from the model's load time.

A new engine is useless until its weights are loaded (minutes for a 70B model), so:
- scale-up steps are counted per load time: at most double (or `+max/4` engines) per load
  time, since engines added earlier are still loading and the queue has not yet felt them;
- the scale-down window is at least twice the load time: an engine is removed only after
  load stayed low for longer than it takes to bring one back;
- engines are removed one at a time, at most one per load time (≥ 60 s);
- a model scaled to zero wakes on the first request a router holds for it (its engines export
  nothing; the router holds what no engine can take yet) or on the router's request rate for
  it, and sleeps again after the scale-down window of idleness (KEDA's cooldown).
- a new ScaledObject waits one load time plus that window before its first scale to zero
  (KEDA's `initialCooldownPeriod`, default 0: it would put a just-deployed model to sleep on
  its first poll, before the post-deploy benchmark's first request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from policies.autoscaling import queries
from policies.autoscaling.errors import require
from policies.autoscaling.hpa import MAX_PERIOD_S, MAX_STABILIZATION_S, Behavior, Rules, StepPolicy

Metric = Literal["queue", "kvCache", "queueTime"]
METRICS: tuple[Metric, ...] = ("queue", "kvCache", "queueTime")
"""What a model scales on: waiting requests per engine, KV-cache usage per engine, or a
queue-time percentile objective. Never TTFT: it grows with uncached prompt length at zero load,
so long prompts would add replicas that cannot lower it."""


@dataclass(frozen=True, kw_only=True)
class EnginePolicy:
    """How one model's engine Deployment scales."""

    deployment: str = ""
    """Name of the engine Deployment (same namespace as the ScaledObject); the `Autoscaling`
    component fills it from the stack's engines."""
    served_name: str = ""
    """The model name engines report in `model_name` and the router in `model`; filled like
    `deployment`."""
    namespace: str = ""
    """Namespace of the Deployment (the engine queries read its available replicas from
    kube-state-metrics); `keda.scaled_object` sets it to the ScaledObject's."""
    metric: Metric = "queue"
    """Scaling signal (see `METRICS`)."""
    target: float = 4.0
    """queue: waiting requests per engine; kvCache: usage per engine in (0, 1]; queueTime: seconds."""
    quantile: float = 0.9
    """The queue-time percentile the `queueTime` objective holds (0.5..0.99)."""
    min_replicas: int = 1
    """Fewest engines; 0 lets the model scale to zero when idle."""
    max_replicas: int = 1
    """Most engines (the node pool must hold them: checked in the stack config)."""
    activation_rps: float = 0.0
    """Router requests/s for the model above which a model at zero engines wakes up."""
    load_time_s: int = 120
    """Seconds from pod start to engine ready (weights download and load); sizes the windows."""
    scale_down_window_s: int = 600
    """Floor of the scale-down stabilisation window (raised to 2 × load time)."""
    polling_interval_s: int = 15
    """How often KEDA evaluates the trigger."""
    rate_window: str = "2m"
    """Range of the rate() windows in the queries (PromQL duration)."""

    def __post_init__(self) -> None:
        require(self.metric in METRICS, "metric", self.metric, f"must be one of {', '.join(METRICS)}")
        require(self.target > 0 and (self.metric != "kvCache" or self.target <= 1), "target", self.target,
                "must be > 0 (and <= 1 for kvCache)")
        require(0.5 <= self.quantile <= 0.99, "quantile", self.quantile, "must be in 0.5..0.99")
        require(0 <= self.min_replicas <= self.max_replicas, "minReplicas", self.min_replicas,
                f"must be in 0..maxReplicas ({self.max_replicas})")
        require(self.max_replicas >= 1, "maxReplicas", self.max_replicas, "must be >= 1")
        require(self.activation_rps >= 0, "activationRps", self.activation_rps, "must be >= 0")
        require(1 <= self.load_time_s <= MAX_PERIOD_S, "loadTimeSeconds", self.load_time_s,
                f"must be in 1..{MAX_PERIOD_S}")
        require(0 <= self.scale_down_window_s <= MAX_STABILIZATION_S, "scaleDownStabilizationSeconds",
                self.scale_down_window_s, f"must be in 0..{MAX_STABILIZATION_S}")
        require(1 <= self.polling_interval_s <= 300, "pollingInterval", self.polling_interval_s,
                "must be in 1..300")

    @property
    def scales_to_zero(self) -> bool:
        return self.min_replicas == 0

    @property
    def average(self) -> bool:
        """AverageValue target (queue, kvCache: per engine) or Value (a latency objective)."""
        return self.metric != "queueTime"

    def query(self) -> str:
        """The trigger query for this policy's metric."""
        where = (self.served_name, self.namespace, self.deployment)
        if self.metric == "queue":
            return queries.queue_query(*where)
        if self.metric == "kvCache":
            return queries.kv_cache_query(*where)
        return queries.queue_time_query(*where, self.quantile, self.rate_window)

    def demand_query(self) -> str:
        """The router's request rate for the model: keeps a scaled-to-zero model awake."""
        return queries.demand_query(self.served_name, self.rate_window)

    def held_query(self) -> str:
        """The requests the routers hold for the model: what wakes it at zero engines."""
        return queries.held_query(self.served_name)

    @property
    def down_window_s(self) -> int:
        """Scale-down stabilisation: the configured floor, at least twice the load time."""
        return min(MAX_STABILIZATION_S, max(self.scale_down_window_s, 2 * self.load_time_s))

    @property
    def initial_cooldown_s(self) -> int:
        """KEDA's `initialCooldownPeriod` (seconds after the ScaledObject's creation before it may
        first scale to zero; KEDA 2.20 `scale_executor.go` defaults it to 0): the engines may
        still be loading when it is created (`load_time_s`), then they get the same idle window as
        after any request (`down_window_s`), so the post-deploy benchmark finds them awake."""
        return self.load_time_s + self.down_window_s

    def behavior(self) -> Behavior:
        """The HPA behaviour sized from the load time (see the module docstring)."""
        period = min(MAX_PERIOD_S, self.load_time_s)
        up = Rules(window_s=min(60, self.load_time_s // 10), select="Max", policies=(
            StepPolicy(type="Percent", value=100, period_s=period),
            StepPolicy(type="Pods", value=max(1, self.max_replicas // 4), period_s=period)))
        down = Rules(window_s=self.down_window_s, select="Max", policies=(
            StepPolicy(type="Pods", value=1, period_s=min(MAX_PERIOD_S, max(60, self.load_time_s))),))
        return Behavior(up=up, down=down)
