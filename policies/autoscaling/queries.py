"""The PromQL each trigger evaluates, from the shared metric names (`contracts`).

A query answers one sample whenever Prometheus sees what it measures, 0 when that is idle, and
nothing at all when Prometheus has lost its source: KEDA's Prometheus scaler (v2.20.2
`pkg/scalers/prometheus_scaler.go`) counts an empty result as an error once `ignoreNullValues`
is false, and the ScaledObject's `fallback` takes over (see `keda`). A trailing `or vector(0)`
made a monitoring outage read as zero load and every model drift to its minimum.

So each "legitimately zero" case has an anchor that exists only while its source is scraped:
- the engine signals (queue, KV, queue time) read 0 while the model's Deployment has no
  available engine (`kube_deployment_status_replicas_available == 0`, kube-state-metrics), so
  a model at zero engines, or with its first engine still loading, is not an error; with an
  engine available and its series missing, the query is empty;
- the queue-time percentile of idle engines (no observation in the window: NaN, dropped by
  `> 0`) reads 0 through the engines' own histogram count (rate 0, times 0);
- the router's signals read 0 through the held-requests gauge, which every router exports at 0
  for each model it serves before anything is held.

Older vLLM releases export `vllm:gpu_cache_usage_perc`; the KV query reads both (binary
operators match on labels without the metric name, so an engine exporting both is counted
once)."""

from __future__ import annotations

from contracts import (
    ENGINE_MODEL_LABEL,
    KSM_DEPLOYMENT_AVAILABLE,
    ROUTER_HELD,
    ROUTER_REQUESTS,
    VLLM_KV_USAGE,
    VLLM_KV_USAGE_LEGACY,
    VLLM_QUEUE_TIME,
    VLLM_WAITING,
)


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _sel(model: str, label: str = ENGINE_MODEL_LABEL) -> str:
    return f"{{{label}={_quote(model)}}}"


def no_engine(namespace: str, deployment: str) -> str:
    """0 while the Deployment has no available engine; empty when it has one (or when
    kube-state-metrics is not scraped)."""
    sel = f"{{namespace={_quote(namespace)},deployment={_quote(deployment)}}}"
    return f"(sum({KSM_DEPLOYMENT_AVAILABLE}{sel}) == 0)"


def queue_query(model: str, namespace: str, deployment: str) -> str:
    """Requests waiting across the model's engines (an AverageValue target divides by engines)."""
    return f"sum({VLLM_WAITING}{_sel(model)}) or {no_engine(namespace, deployment)}"


def kv_cache_query(model: str, namespace: str, deployment: str) -> str:
    """KV-cache usage (0..1) summed over the model's engines."""
    sel = _sel(model)
    return (f"sum({VLLM_KV_USAGE}{sel} or {VLLM_KV_USAGE_LEGACY}{sel}) "
            f"or {no_engine(namespace, deployment)}")


def queue_time_query(model: str, namespace: str, deployment: str, quantile: float, window: str) -> str:
    """The model's percentile of time spent waiting to be scheduled over `window`, from the
    engines' `vllm:request_queue_time_seconds` histograms; 0 when idle. Unlike TTFT it does not
    grow with prompt length: an uncached 16k-65k-token prefill on TP-4 A100s exceeds 2 s at an
    empty queue, which more replicas cannot shorten."""
    sel = _sel(model)
    inner = f"sum by (le) (rate({VLLM_QUEUE_TIME}_bucket{sel}[{window}]))"
    idle = f"(sum(rate({VLLM_QUEUE_TIME}_count{sel}[{window}])) * 0)"
    return f"(histogram_quantile({quantile:g}, {inner}) > 0) or {idle} or {no_engine(namespace, deployment)}"


def held_query(model: str) -> str:
    """Requests the routers hold for the model, summed over router replicas and workers: at zero
    engines every request waits in a router's hold queue, so this wakes the model on the first."""
    return f'sum({ROUTER_HELD}{_sel(model, "model")})'


def demand_query(model: str, window: str) -> str:
    """Requests per second the router received for the model (answered or refused): what
    wakes a model scaled to zero, whose engines export nothing. 0 before the first request
    (the counter has no series yet) while the router itself is scraped."""
    requests = f'sum(rate({ROUTER_REQUESTS}{_sel(model, "model")}[{window}]))'
    return f"{requests} or ({held_query(model)} * 0)"
