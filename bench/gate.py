"""The post-deploy benchmark's gate: the run's `summary.json` as a Markdown table (for a CI
run's summary page) and the bounds it must stay within (a regression past one fails the deploy).

Pure: a parsed summary and a `Bounds` in, text and violations out. Bounds come from the stack
file's `ci:benchmarkBounds` key (read by `llm-stack bench-gate`), never from the program."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


class GateConfigError(ValueError):
    """A bound that cannot be used (names the key, the value and what is allowed)."""


@dataclass(frozen=True, kw_only=True)
class Bounds:
    """What a deploy's benchmark must meet (camelCase keys in `ci:benchmarkBounds`); None: unchecked."""

    ttft_p99_ms_max: float | None = None
    """`ttftP99MsMax`: p99 time to first token, ms."""
    itl_p99_ms_max: float | None = None
    """`itlP99MsMax`: p99 inter-token latency, ms."""
    output_tps_min: float | None = None
    """`outputTokensPerSecondMin`: generated tokens per second."""
    cache_hit_rate_min: float | None = None
    """`cacheHitRateMin`: prefix-cache hit rate, 0..1."""
    error_rate_max: float | None = None
    """`errorRateMax`: errors / launched requests, 0..1."""
    qps: float | None = None
    """`qps`: check only the point at this QPS (None: every point)."""


_KEYS = {
    "ttftP99MsMax": "ttft_p99_ms_max",
    "itlP99MsMax": "itl_p99_ms_max",
    "outputTokensPerSecondMin": "output_tps_min",
    "cacheHitRateMin": "cache_hit_rate_min",
    "errorRateMax": "error_rate_max",
    "qps": "qps",
}


def bounds_from_mapping(raw: Mapping[str, Any]) -> Bounds:
    """`Bounds` from the stack file's camelCase keys; unknown keys and non-numbers are errors."""
    values = {}
    for key, value in raw.items():
        if key not in _KEYS:
            raise GateConfigError(
                f"ci:benchmarkBounds.{key} is not a known key; allowed: {', '.join(_KEYS)} (got {value!r})"
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise GateConfigError(f"ci:benchmarkBounds.{key} must be a number >= 0 (got {value!r})")
        values[_KEYS[key]] = float(value)
    return Bounds(**values)


def _ms(dist: Mapping[str, Any] | None, key: str) -> float | None:
    return None if not dist or dist.get(key) is None else float(dist[key]) * 1000


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def markdown_table(summary: Mapping[str, Any]) -> str:
    """One row per QPS point: TTFT and ITL percentiles (ms), throughput, hit rate, errors."""
    lines = [
        f"#### Benchmark `{summary.get('label', '')}` on `{summary.get('model', '')}`",
        "",
        "| QPS | TTFT p50 | TTFT p90 | TTFT p99 | ITL p50 | ITL p99 | tok/s | req/s | hit rate | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in summary.get("points", []):
        ttft, itl = p.get("ttft"), p.get("itl")
        hit = p.get("cache_hit_rate")
        lines.append(
            "| "
            + " | ".join(
                [
                    _cell(p.get("qps"), "g"),
                    _cell(_ms(ttft, "p50"), ".0f"),
                    _cell(_ms(ttft, "p90"), ".0f"),
                    _cell(_ms(ttft, "p99"), ".0f"),
                    _cell(_ms(itl, "p50"), ".1f"),
                    _cell(_ms(itl, "p99"), ".1f"),
                    _cell(p.get("output_tps"), ".0f"),
                    _cell(p.get("finished_rps"), ".2f"),
                    _cell(None if hit is None else hit * 100, ".0f") + ("%" if hit is not None else ""),
                    f"{p.get('errors', 0)}/{p.get('launched', 0)}",
                ]
            )
            + " |"
        )
    lines.append("")
    lines.append("Latencies in ms.")
    return "\n".join(lines) + "\n"


def _point_violations(p: Mapping[str, Any], b: Bounds) -> Iterator[str]:
    where = f"at QPS {p.get('qps')}"
    ttft, itl = _ms(p.get("ttft"), "p99"), _ms(p.get("itl"), "p99")
    if b.ttft_p99_ms_max is not None and (ttft is None or ttft > b.ttft_p99_ms_max):
        yield f"TTFT p99 {_cell(ttft, '.0f')} ms {where} exceeds {b.ttft_p99_ms_max:g} ms (ttftP99MsMax)"
    if b.itl_p99_ms_max is not None and (itl is None or itl > b.itl_p99_ms_max):
        yield f"ITL p99 {_cell(itl, '.1f')} ms {where} exceeds {b.itl_p99_ms_max:g} ms (itlP99MsMax)"
    tps = float(p.get("output_tps") or 0)
    if b.output_tps_min is not None and tps < b.output_tps_min:
        yield f"output {tps:.0f} tok/s {where} is below {b.output_tps_min:g} (outputTokensPerSecondMin)"
    hit = p.get("cache_hit_rate")
    if b.cache_hit_rate_min is not None and (hit is None or hit < b.cache_hit_rate_min):
        yield f"cache hit rate {hit} {where} is below {b.cache_hit_rate_min:g} (cacheHitRateMin)"
    rate = p.get("errors", 0) / max(p.get("launched", 0), 1)
    if b.error_rate_max is not None and rate > b.error_rate_max:
        yield f"error rate {rate:.3f} {where} exceeds {b.error_rate_max:g} (errorRateMax)"


def violations(summary: Mapping[str, Any], bounds: Bounds) -> list[str]:
    """Every bound the run misses (an interrupted run or a missing point is one too)."""
    points = [p for p in summary.get("points", []) if bounds.qps is None or p.get("qps") == bounds.qps]
    out = ["the benchmark was interrupted"] if summary.get("interrupted") else []
    if not points:
        out.append(f"no benchmark point {'at QPS ' + format(bounds.qps, 'g') if bounds.qps else 'recorded'}")
    for p in points:
        out += list(_point_violations(p, bounds))
    return out

