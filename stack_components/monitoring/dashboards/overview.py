"""*Serving overview*: traffic, errors, latency as the router and the engines see it, queues,
KV cache, prefix-cache hit rate per tier, routing decisions (with the KV-events prediction against
what the engines delivered) and engine health."""

from __future__ import annotations

import contracts as c
from stack_components.monitoring import promql as q
from stack_components.monitoring.dashboards.spec import DashboardSpec, PanelSpec, panel

UID = "llm-stack-serving"


def _percentiles(histogram: str, by: str, who: str) -> list[tuple[str, str]]:
    return [(q.quantile(p, histogram, by), f"{{{{{by}}}}} p{round(p * 100)} ({who})")
            for p in (0.5, 0.95, 0.99)]


def _errors() -> str:
    by, not_ok = "model, engine", 'status!~"2.."'
    return f"{q.rate(c.ROUTER_REQUESTS, by, not_ok)} or {q.rate(c.ROUTER_REQUESTS, by)} * 0"


def _traffic() -> list[PanelSpec]:
    return [
        panel("Requests by model and engine", "reqps",
              (q.rate(c.ROUTER_REQUESTS, "model, engine"), "{{model}} → {{engine}}")),
        panel("Errors (non-2xx) by model and engine", "reqps", (_errors(), "{{model}} → {{engine}}")),
        panel("TTFT seen by the router", "s", *_percentiles(c.ROUTER_TTFT, "model", "router")),
        panel("TTFT seen by the engines", "s", *_percentiles(c.VLLM_TTFT, "model_name", "engine")),
        panel("Inter-token latency, router and engines", "s",
              (q.quantile(0.5, c.ROUTER_ITL, "model"), "{{model}} p50 (router)"),
              (q.quantile(0.95, c.ROUTER_ITL, "model"), "{{model}} p95 (router)"),
              (q.quantile(0.5, c.VLLM_ITL, "model_name"), "{{model_name}} p50 (engine)"),
              (q.quantile(0.95, c.VLLM_ITL, "model_name"), "{{model_name}} p95 (engine)")),
    ]


def _engines() -> list[PanelSpec]:
    return [
        panel("Running and waiting requests", "short",
              (f"sum by (model_name, pod) ({c.VLLM_RUNNING})", "{{pod}} running"),
              (f"sum by (model_name, pod) ({c.VLLM_WAITING})", "{{pod}} waiting")),
        panel("KV-cache usage", "percentunit", (f"max by (model_name, pod) ({q.KV_USAGE})", "{{pod}}")),
        panel("Prefix-cache hit rate (GPU and LMCache tiers)", "percentunit",
              (q.gpu_hit_ratio("model_name"), "{{model_name}} GPU"),
              (q.hit_ratio(c.LMCACHE_HIT_TOKENS, c.LMCACHE_REQUESTED_TOKENS, "model_name"),
               "{{model_name}} LMCache")),
        panel("Routing decisions by outcome", "reqps",
              (q.rate(c.ROUTER_DECISIONS, "policy, outcome"), "{{policy}}: {{outcome}}")),
        *_kv_prediction(),
        panel("Engine health", "short",
              (f"min by (engine) ({c.ROUTER_ENGINE_HEALTHY})", "{{engine}} in rotation"),
              (f"sum by (pod) ({q.ENGINES_UP})", "{{pod}} scraped")),
        panel("In-flight requests per engine (router)", "short",
              (f"sum by (engine) ({c.ROUTER_IN_FLIGHT})", "{{engine}}")),
    ]


def _lora() -> list[PanelSpec]:
    state = f"count by (pod, max_lora, running_lora_adapters, waiting_lora_adapters) ({q.LORA_STATE})"
    return [panel("LoRA adapters per engine (running, waiting, GPU slots)", "short",
                  (state, "{{pod}} slots {{max_lora}}: running [{{running_lora_adapters}}] "
                          "waiting [{{waiting_lora_adapters}}]"),
                  (f"count({q.LORA_WAITING}) or vector(0)", "engines with adapters waiting"))]


def _kv_prediction() -> list[PanelSpec]:
    """Issue 19: the prompt tokens the router predicted cached on the engines it chose, per engine
    and tier, against what the engines delivered: the GPU tier's `vllm:prefix_cache_hits_total`
    (as the router mirrors it per engine URL, the same `engine` label as the prediction) and the
    KV connector's (LMCache's CPU and storage tiers) `vllm:external_prefix_cache_hits_total`
    (vLLM 0.33, vllm/v1/metrics/loggers.py); and the engines scored by the estimate instead."""
    return [
        panel("KV cache: predicted vs delivered cached tokens", "short",
              (q.rate(c.ROUTER_KV_PREDICTED, "engine, tier, mode"),
               "{{engine}} {{tier}} predicted ({{mode}})"),
              # every router replica mirrors the same engine counter: one of them, not their sum
              (f"max by (engine) (rate({c.ROUTER_ENGINE_PREFIX_HITS}[{q.WINDOW}]))",
               "{{engine}} gpu delivered"),
              (q.rate(c.VLLM_EXTERNAL_PREFIX_HITS, "model_name, pod"), "{{pod}} cpu+storage delivered")),
        panel("KV events: engines scored by the estimate", "short",
              # a series per (engine, reason) appears with its first fallback: none is a 0
              (f"{q.rate(c.ROUTER_KV_FALLBACKS, 'engine, reason')} or vector(0)", "{{engine}}: {{reason}}"),
              (q.rate(c.ROUTER_KV_TOKENIZE, "outcome"), "tokenize {{outcome}}")),
    ]


def dashboard(*, lora: bool = False) -> DashboardSpec:
    """The serving overview; with `lora`, the engines' LoRA state too."""
    panels = (*_traffic(), *_engines(), *(_lora() if lora else ()))
    return DashboardSpec(uid=UID, title="LLM Stack / Serving overview", panels=panels)
