"""*Serving overview*: traffic, errors, latency as the router and the engines see it, queues,
KV cache, prefix-cache hit rate per tier, routing decisions and engine health."""

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


def dashboard(*, lora: bool = False) -> DashboardSpec:
    """The serving overview; with `lora`, the engines' LoRA state too."""
    panels = (*_traffic(), *_engines(), *(_lora() if lora else ()))
    return DashboardSpec(uid=UID, title="LLM Stack / Serving overview", panels=panels)
