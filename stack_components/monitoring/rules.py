"""Alert rules as pure values, rendered into one PrometheusRule. Every rule carries a runbook
line; each alert's data-bearing part (`signals`) is what the query-proof harness evaluates on
a real Prometheus, the threshold logic is covered by `promtool test rules`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import contracts as c
from stack_components.monitoring import promql as q

RUNBOOK = "runbook"
NODE_POOL_LABEL_METRIC = "label_llmstack_io_node_pool"
"""kube-state-metrics' label for the `llmstack.io/node-pool` node label (allow-listed in its values)."""


@dataclass(frozen=True, kw_only=True)
class AlertRule:
    """One alert: `expr` fires; `signals` are the sub-queries that return data on a healthy stack."""

    name: str
    """Alert name (CamelCase)."""
    expr: str
    """The alerting expression."""
    signals: tuple[str, ...]
    """The expressions under the threshold (proven to return data)."""
    for_: str
    """How long the condition must hold."""
    severity: str
    """critical | warning."""
    summary: str
    """One line for the page."""
    runbook: str
    """What the operator does first."""


@dataclass(frozen=True, kw_only=True)
class RuleObjectives:
    """Thresholds from `llm-stack:monitoring`."""

    ttft_p95_seconds: float
    """TTFT objective."""
    max_waiting_per_engine: int
    """Queue bound per engine."""
    engine_namespace: str
    """Namespace of the engine pods (for the pending-pods alert)."""
    pool_max_nodes: Mapping[str, int]
    """Node pools by name with their maximum size."""
    lora: bool = False
    """Some engines serve LoRA adapters (`LLMLoraAdaptersWaiting` ships)."""


def _thresholded(name: str, signal: str, cond: str, for_: str, severity: str, summary: str,
                 runbook: str) -> AlertRule:
    return AlertRule(name=name, expr=f"{signal} {cond}", signals=(signal,), for_=for_, severity=severity,
                     summary=summary, runbook=runbook)


SERVED_WITHIN = "6h"
"""An engine pod counts as down only if it answered a scrape within this window: a pod is a
target as soon as it has an IP, but vLLM serves HTTP only once its weights are loaded (8B ~3
min, 70B ~10 min), so a fresh pod or a scale-up is not an outage. A pod that never comes up is
kube-prometheus-stack's KubePodNotReady (15m) / KubePodCrashLooping."""

HARDWARE_XIDS = (48, 63, 64, 74, 79, 92, 95, 119, 120, 140)
"""XIDs that mean the GPU (not the application) needs a reset or replacement: double-bit ECC
(48), row remapping pending/failed (63/64), NVLink (74), fallen off the bus (79), high single
-bit ECC rate (92), uncontained ECC (95), GSP RPC timeout/error (119/120), unrecovered ECC (140)
(NVIDIA's XID catalog). Application XIDs (13, 31, 43, 45, 94...) end with the process."""


def _engine_down() -> AlertRule:
    served = f"max_over_time({q.ENGINES_UP}[{SERVED_WITHIN}])"
    return AlertRule(
        name="LLMEngineDown", expr=f"({q.ENGINES_UP} == 0) and on (namespace, pod) ({served} == 1)",
        signals=(q.ENGINES_UP, served), for_="2m", severity="critical",
        summary="Engine {{ $labels.pod }} served /metrics before and stopped answering.",
        runbook="kubectl describe pod {{ $labels.pod }}; check its logs for GPU, OOM, model download.")


def _ttft_high(o: RuleObjectives) -> AlertRule:
    ttft = q.quantile(0.95, c.VLLM_TTFT, "model_name")
    waiting = q.quantile(0.95, c.VLLM_QUEUE_TIME, "model_name")
    objective = o.ttft_p95_seconds
    return AlertRule(
        name="LLMTimeToFirstTokenHigh",
        expr=f"({ttft} > {objective:g}) and on (model_name) ({waiting} > {objective / 2:g})",
        signals=(ttft, waiting), for_="10m", severity="warning",
        summary="p95 TTFT of {{ $labels.model_name }} is {{ $value }}s, half the objective or more queueing.",
        runbook="Load, not prompt length: is the autoscaler at maxReplicas? Check the prefix-cache hit rate.")


def _engine_rules(o: RuleObjectives) -> list[AlertRule]:
    return [
        _engine_down(),
        _thresholded("LLMEngineFlapping", f"changes({q.ENGINES_UP}[15m])", "> 2", "0m", "warning",
                     "Engine {{ $labels.pod }} went up/down {{ $value }} times in 15m.",
                     "Look for restarts and failing readiness probes; cordon the node on XID errors."),
        _thresholded("LLMRequestsQueueing", f"max by (model_name, pod) ({c.VLLM_WAITING})",
                     f"> {o.max_waiting_per_engine}", "5m", "warning",
                     "{{ $labels.pod }} has {{ $value }} requests waiting.",
                     "Check the autoscaler hit maxReplicas and the node pool can grow; shed load if not."),
        _ttft_high(o),
        _thresholded("LLMKVCacheSaturated", f"max by (model_name, pod) ({q.KV_USAGE})", "> 0.95", "10m",
                     "warning", "KV cache of {{ $labels.pod }} is {{ $value | humanizePercentage }} full.",
                     "Requests are being preempted: add replicas or lower max-num-seqs / max-model-len."),
        _thresholded("LLMPrefixCacheHitRateCollapsed",
                     q.gpu_hit_ratio("model_name"), "< 0.1", "15m",
                     "warning", "GPU prefix-cache hit rate of {{ $labels.model_name }} is {{ $value }}.",
                     "Check the router policy is prefix/session and engines are not thrashing (KV usage)."),
    ]


LORA_WAIT_FOR = "10m"
"""How long an engine's newest LoRA state must show waiting adapters before it pages: longer
than a burst of new conversations waiting their turn for a slot, shorter than users give up."""


def _lora_waiting() -> AlertRule:
    waiting = f"count by (namespace, pod) ({q.LORA_WAITING})"
    return AlertRule(
        name="LLMLoraAdaptersWaiting", expr=f"{waiting} > 0", signals=(waiting,), for_=LORA_WAIT_FOR,
        severity="warning",
        summary="{{ $labels.pod }} has had requests for LoRA adapters waiting for " + LORA_WAIT_FOR + ".",
        runbook="More adapters are asked for than the engine's GPU slots (max_lora): raise "
                "models.<m>.lora.maxLoras, add replicas, or check the router's LoRA placement.")


def _router_5xx() -> str:
    total = q.rate(c.ROUTER_REQUESTS, "model")
    errors = q.rate(c.ROUTER_REQUESTS, "model", 'status=~"5.."')
    return f"({errors} or {total} * 0) / ({total} > 0)"


def _platform_rules(o: RuleObjectives) -> list[AlertRule]:
    rules = [
        _thresholded("LLMRouterErrorRate", _router_5xx(), "> 0.05", "5m", "critical",
                     "{{ $value | humanizePercentage }} of {{ $labels.model }} requests end in 5xx.",
                     "Check llmstack_router_engine_healthy and the engines' logs; roll back a bad deploy."),
        *_xid_rules(),
    ]
    pending = f'sum(kube_pod_status_phase{{namespace="{o.engine_namespace}",phase="Pending"}})'
    for pool, max_nodes in sorted(o.pool_max_nodes.items()):
        nodes = f'count(kube_node_labels{{{NODE_POOL_LABEL_METRIC}="{pool}"}})'
        rules.append(AlertRule(
            name=f"NodePoolAtMaxWithPendingPods{_camel(pool)}",
            expr=f"({nodes} >= {max_nodes}) and on() ({pending} > 0)", signals=(nodes, pending),
            for_="10m", severity="warning",
            summary=f"Node pool {pool} is at its maximum ({max_nodes} nodes) with pods pending.",
            runbook=f"Raise nodePools.{pool}.maxSize (and the GPU quota) or lower the models' maxReplicas."))
    return rules


def _xid_rules() -> list[AlertRule]:
    """DCGM_FI_DEV_XID_ERRORS is the last XID seen (a sticky gauge): a hardware XID pages until
    the node is replaced (its series goes with it); any other XID warns only while it is new."""
    last = f"max by ({c.DCGM_NODE_LABEL}, gpu) ({c.DCGM_XID})"
    hardware = " or ".join(f"({last} == {xid})" for xid in HARDWARE_XIDS)
    changed = f"max by ({c.DCGM_NODE_LABEL}, gpu) (changes({c.DCGM_XID}[15m]))"
    return [
        AlertRule(name="GPUXidError", expr=hardware, signals=(last,), for_="0m", severity="critical",
                  summary="GPU {{ $labels.gpu }} on {{ $labels.Hostname }}: hardware XID {{ $value }}.",
                  runbook="Cordon and drain the node, then replace it (NVIDIA's XID catalog: reset or RMA)."),
        AlertRule(name="GPUXidApplicationError",
                  expr=f"({last} > 0) and on ({c.DCGM_NODE_LABEL}, gpu) ({changed} > 0) unless ({hardware})",
                  signals=(last, changed), for_="0m", severity="warning",
                  summary="GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID {{ $value }}.",
                  runbook="An application fault (e.g. 13, 31, 43): read the engine's log on that node."),
    ]


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("_", "-").split("-"))


def alert_rules(objectives: RuleObjectives) -> list[AlertRule]:
    """Every alert the stack ships."""
    lora = [_lora_waiting()] if objectives.lora else []
    return _engine_rules(objectives) + lora + _platform_rules(objectives)


def rule_groups(rules: list[AlertRule]) -> list[dict[str, Any]]:
    """The `groups` of a Prometheus rule file / PrometheusRule spec."""
    return [{"name": "llm-stack", "rules": [
        {"alert": r.name, "expr": r.expr, "for": r.for_, "labels": {"severity": r.severity},
         "annotations": {"summary": r.summary, RUNBOOK: r.runbook}}
        for r in rules]}]
