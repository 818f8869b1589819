"""Reading the figures the benchmark needs out of Prometheus text. Pure.

The router's prediction: `llmstack_router_kv_predicted_tokens_total{engine,tier,mode}`, the tokens
the policy predicted cached on the engine it chose (issue 19's scoring; absent from a router
without it). The engines' delivery: `vllm:prefix_cache_hits_total` (GPU prefix-cache hits, in
tokens; vLLM 0.33 `vllm/v1/metrics/loggers.py` registers `vllm:prefix_cache_hits`, which
prometheus-client exports with `_total`) plus the offload tier's hits: vLLM 0.33's
`vllm:external_prefix_cache_hits_total` (its KV connector's, i.e. LMCache's) or, where the
engine exports LMCache's own, `lmcache:num_hit_tokens_total` (what the emulator does) — one or
the other, never both. The KV-event feeds: `llmstack_router_kv_events_gaps_total{engine,outcome}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from contracts import (
    LMCACHE_HIT_TOKENS,
    ROUTER_DECISIONS,
    ROUTER_KV_EVENTS_GAPS,
    ROUTER_KV_FALLBACKS,
    ROUTER_KV_PREDICTED,
    VLLM_EXTERNAL_PREFIX_HITS,
    VLLM_PREFIX_HITS,
    VLLM_PREFIX_QUERIES,
)

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Labels = Mapping[str, str]


def samples(text: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    """Every sample of `name` in `text`: its labels and value."""
    for line in text.splitlines():
        if not line.startswith(name) or line[len(name):len(name) + 1] not in ("{", " "):
            continue
        head, _, value = line.rpartition(" ")
        labels = dict(_LABEL.findall(head[len(name):])) if head[len(name):].startswith("{") else {}
        try:
            yield labels, float(value)
        except ValueError:
            continue


def total(text: str, name: str, **match: str) -> float | None:
    """The sum of `name`'s samples whose labels include `match`; None when there is none."""
    values = [v for labels, v in samples(text, name) if all(labels.get(k) == x for k, x in match.items())]
    return sum(values) if values else None


def predicted_by_engine(text: str) -> dict[str, float] | None:
    """Tokens predicted cached, per engine URL, summed over tiers and modes; None when the router
    does not export the metric."""
    found = list(samples(text, ROUTER_KV_PREDICTED))
    if not found:
        return None
    out: dict[str, float] = {}
    for labels, value in found:
        engine = labels.get("engine", "")
        out[engine] = out.get(engine, 0.0) + value
    return out


def decisions(text: str) -> float:
    """Routing decisions made so far (any policy, outcome)."""
    return total(text, ROUTER_DECISIONS) or 0.0


def gaps(text: str) -> dict[str, float]:
    """KV-event gaps by outcome (replayed, lost), summed over engines."""
    return _by(text, ROUTER_KV_EVENTS_GAPS, "outcome")


def fallbacks(text: str) -> dict[str, float]:
    """Engines scored by the router's estimate in event mode, by reason, summed over engines."""
    return _by(text, ROUTER_KV_FALLBACKS, "reason")


def _by(text: str, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in samples(text, name):
        out[labels.get(label, "")] = out.get(labels.get(label, ""), 0.0) + value
    return out


def engine_cache(text: str) -> tuple[float, float]:
    """An engine's (queried, hit) prompt tokens: its prefix-cache queries, and its GPU hits plus
    its offload tier's (vLLM's external counter, else LMCache's own)."""
    queried = total(text, VLLM_PREFIX_QUERIES) or 0.0
    gpu = total(text, VLLM_PREFIX_HITS) or 0.0
    external = total(text, VLLM_EXTERNAL_PREFIX_HITS)
    offload = external if external is not None else total(text, LMCACHE_HIT_TOKENS) or 0.0
    return queried, gpu + offload
