"""The PromQL each trigger evaluates, from the shared metric names (`contracts`).

Every query returns exactly one sample, even before any engine exists (`or vector(0)`), as
KEDA's Prometheus scaler requires a single-element result. Older vLLM releases export
`vllm:gpu_cache_usage_perc`; the KV query reads both (binary operators match on labels
without the metric name, so an engine exporting both is counted once)."""

from __future__ import annotations

from contracts import (
    ENGINE_MODEL_LABEL,
    ROUTER_HELD,
    ROUTER_REQUESTS,
    VLLM_KV_USAGE,
    VLLM_KV_USAGE_LEGACY,
    VLLM_QUEUE_TIME,
    VLLM_WAITING,
)


def _sel(model: str, label: str = ENGINE_MODEL_LABEL) -> str:
    escaped = model.replace("\\", "\\\\").replace('"', '\\"')
    return f'{{{label}="{escaped}"}}'


def queue_query(model: str) -> str:
    """Requests waiting across the model's engines (an AverageValue target divides by engines)."""
    return f"sum({VLLM_WAITING}{_sel(model)}) or vector(0)"


def kv_cache_query(model: str) -> str:
    """KV-cache usage (0..1) summed over the model's engines."""
    sel = _sel(model)
    return f"sum({VLLM_KV_USAGE}{sel} or {VLLM_KV_USAGE_LEGACY}{sel}) or vector(0)"


def queue_time_query(model: str, quantile: float, window: str) -> str:
    """The model's percentile of time spent waiting to be scheduled over `window`, from the
    engines' `vllm:request_queue_time_seconds` histograms; 0 when idle. Unlike TTFT it does not
    grow with prompt length: an uncached 16k-65k-token prefill on TP-4 A100s exceeds 2 s at an
    empty queue, which more replicas cannot shorten."""
    inner = f"sum by (le) (rate({VLLM_QUEUE_TIME}_bucket{_sel(model)}[{window}]))"
    return f"(histogram_quantile({quantile:g}, {inner}) > 0) or vector(0)"


def demand_query(model: str, window: str) -> str:
    """Requests per second the router received for the model (answered or refused): what
    wakes a model scaled to zero, whose engines export nothing."""
    return f'sum(rate({ROUTER_REQUESTS}{_sel(model, "model")}[{window}])) or vector(0)'


def held_query(model: str) -> str:
    """Requests the routers hold for the model, summed over router replicas and workers: at zero
    engines every request waits in a router's hold queue, so this wakes the model on the first."""
    return f'sum({ROUTER_HELD}{_sel(model, "model")}) or vector(0)'
