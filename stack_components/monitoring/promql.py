"""PromQL building blocks shared by the dashboards and the alert rules. Pure string functions
over the metric names of `contracts`: no query text names a metric twice.

Labels the queries rely on: `model_name` (vLLM), `pod` and `namespace` (set by the
PodMonitor/ServiceMonitor from the target, or by the local harness), `model`/`engine`/
`status`/`policy`/`outcome` (the router), `Hostname`/`gpu` (dcgm-exporter).
"""

from __future__ import annotations

from dataclasses import dataclass

import contracts as c

WINDOW = "5m"
"""Rate window: at least four scrapes at the slowest allowed interval would need 20m; 5m
matches kube-prometheus-stack's own rules at its 30s default and the 15s default here."""


@dataclass(frozen=True, kw_only=True)
class NamedQuery:
    """One PromQL expression the stack ships, with where it is used (for error messages)."""

    source: str
    """`dashboard/<uid>/<panel title>`, `rule/<alert name>` or `trigger/<name>`."""
    expr: str
    """The expression; it must return data on a live stack."""


def rate(metric: str, by: str = "", where: str = "") -> str:
    """Per-second rate of a counter, summed by the labels in `by` (comma-separated)."""
    inner = f"rate({metric}{{{where}}}[{WINDOW}])" if where else f"rate({metric}[{WINDOW}])"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def quantile(q: float, histogram: str, by: str = "") -> str:
    """The q-quantile of a histogram over the rate window, per `by` group."""
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q:g}, sum by ({group}) (rate({histogram}_bucket[{WINDOW}])))"


def hit_ratio(hits: str, queries: str, by: str = "") -> str:
    """hits / queries over the rate window (NaN-free: no division when nothing was queried)."""
    return f"{rate(hits, by)} / ({rate(queries, by)} > 0)"


def gpu_hit_ratio(by: str) -> str:
    """GPU prefix-cache hit ratio from vLLM's current counters, or its older names where only
    those exist."""
    hits = f"({rate(c.VLLM_PREFIX_HITS, by)} or {rate(c.VLLM_PREFIX_HITS_LEGACY, by)})"
    queries = f"({rate(c.VLLM_PREFIX_QUERIES, by)} or {rate(c.VLLM_PREFIX_QUERIES_LEGACY, by)})"
    return f"{hits} / ({queries} > 0)"


def either(current: str, legacy: str) -> str:
    """A gauge under vLLM's current name, or its older name on engines that still export it."""
    return f"({current} or {legacy})"


KV_USAGE = either(c.VLLM_KV_USAGE, c.VLLM_KV_USAGE_LEGACY)

_LORA_NEWEST = f"max by (namespace, pod) ({c.VLLM_LORA_INFO})"
LORA_STATE = f"({c.VLLM_LORA_INFO} >= on (namespace, pod) group_left () {_LORA_NEWEST})"
"""Each engine's current LoRA state: of the `vllm:lora_requests_info` series (one per label set
ever set, each gauge set to the time it was last the state: vLLM's `set_to_current_time`,
vllm/v1/metrics/loggers.py), the newest per pod; its labels name the running and waiting
adapters and `max_lora`."""
LORA_WAITING = (f'({c.VLLM_LORA_INFO}{{{c.VLLM_LORA_WAITING_LABEL}!=""}} '
                f">= on (namespace, pod) group_left () {_LORA_NEWEST})")
"""The engines whose current LoRA state has requests waiting (for a GPU adapter slot or the batch)."""
ENGINES_UP = f'up{{job="{c.JOB_ENGINES}"}}'
