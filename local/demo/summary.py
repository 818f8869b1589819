"""summary.json, the comparison table and the seed's finding, from each policy's per-QPS
statistics (`bench` `PointStats.to_dict()` documents). Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from local.demo.plan import Capacity, DemoPlan, cold_capacity_qps

BASELINE = "round_robin"
CHALLENGER = "prefix"
HIT_RATE_IS = ("GPU prefix-cache hits / queried prompt tokens over each point, from the engines' "
               "vllm:prefix_cache_* counters (LMCache CPU-tier hits not included)")
FINDING_RATIO = 3.0  # the seed: prefix-aware routing >= 3x lower mean TTFT at the highest QPS


def _dist(dist: Mapping[str, Any] | None) -> dict[str, float | None]:
    if not dist:
        return {"mean": None, "p50": None, "p99": None}
    return {"mean": dist["mean"], "p50": dist["p50"], "p99": dist["p99"]}


def point_entry(stats: Mapping[str, Any]) -> dict[str, Any]:
    """One policy at one QPS: TTFT and ITL (mean/p50/p99, seconds), throughput, hit rate."""
    return {
        "qps": stats["qps"],
        "requests": stats["finished"],
        "errors": stats["errors"],
        "cancelled": stats["cancelled"],
        "ttft_s": _dist(stats.get("ttft")),
        "itl_s": _dist(stats.get("itl")),
        "throughput": {"requests_per_s": stats["finished_rps"], "output_tokens_per_s": stats["output_tps"],
                       "input_tokens_per_s": stats["input_tps"]},
        "cache_hit_rate": stats.get("cache_hit_rate"),
    }


def _mean_ttft(points: Sequence[Mapping[str, Any]], qps: float) -> float | None:
    for p in points:
        if p["qps"] == qps:
            return p["ttft_s"]["mean"]
    return None


def finding(policies: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any] | None:
    """round_robin's mean TTFT over prefix's at the highest QPS both ran; None if either is absent."""
    if BASELINE not in policies or CHALLENGER not in policies:
        return None
    shared = {p["qps"] for p in policies[BASELINE]} & {p["qps"] for p in policies[CHALLENGER]}
    if not shared:
        return None
    top = max(shared)
    base, chal = _mean_ttft(policies[BASELINE], top), _mean_ttft(policies[CHALLENGER], top)
    ratio = base / chal if base is not None and chal else None
    return {"qps": top, f"{BASELINE}_ttft_mean_s": base, f"{CHALLENGER}_ttft_mean_s": chal,
            "ratio": ratio, "target_ratio": FINDING_RATIO,
            "reproduced": ratio is not None and ratio >= FINDING_RATIO}


def build_summary(plan: DemoPlan, cap: Capacity, stats: Mapping[str, Sequence[Mapping[str, Any]]], *,
                  elapsed_s: float, prometheus: str | None) -> dict[str, Any]:
    """The summary.json document."""
    policies = {name: [point_entry(s) for s in points] for name, points in stats.items()}
    return {
        "plan": {**dataclasses.asdict(plan), "cold_capacity_qps": cold_capacity_qps(plan)},
        "capacity_tokens_per_engine": dataclasses.asdict(cap),
        "policies": policies,
        "cache_hit_rate_is": HIT_RATE_IS,
        "finding": finding(policies),
        "elapsed_s": elapsed_s,
        "prometheus": prometheus,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def table(doc: Mapping[str, Any]) -> str:
    """The comparison table: one row per policy and QPS (latencies in ms)."""
    lines = ["| policy | QPS | TTFT mean | TTFT p50 | TTFT p99 | ITL mean | req/s | hit rate | errors |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, points in doc["policies"].items():
        for p in points:
            t, i = p["ttft_s"], p["itl_s"]
            lines.append(f"| {name} | {p['qps']:g} | {_ms(t['mean'])} | {_ms(t['p50'])} | {_ms(t['p99'])} "
                         f"| {_ms(i['mean'])} | {p['throughput']['requests_per_s']:.2f} "
                         f"| {_pct(p['cache_hit_rate'])} | {p['errors'] + p['cancelled']} |")
    return "\n".join(lines)


def finding_line(doc: Mapping[str, Any]) -> str:
    """One sentence on the seed's finding."""
    f = doc.get("finding")
    if not f or f["ratio"] is None:
        return "finding: not measured (round_robin and prefix must both run a common QPS)"
    verdict = "reproduced" if f["reproduced"] else "NOT reproduced"
    return (f"finding at {f['qps']:g} QPS: prefix mean TTFT {_ms(f[f'{CHALLENGER}_ttft_mean_s'])} ms vs "
            f"round_robin {_ms(f[f'{BASELINE}_ttft_mean_s'])} ms = {f['ratio']:.1f}x lower "
            f"(seed: >= {FINDING_RATIO:g}x): {verdict}")
