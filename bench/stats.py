"""Per-QPS-point statistics over request records. Pure.

Percentiles interpolate linearly between order statistics (numpy's default), so
p50 <= p90 <= p99 <= max always holds and a single sample is every percentile.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.records import CANCELLED, RequestRecord


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, linearly interpolated."""
    if not sorted_values:
        raise ValueError("percentile: needs at least one value (got none)")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must be within 0..100 (got {q})")
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    frac = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * frac


@dataclass(frozen=True, kw_only=True)
class Dist:
    """A latency distribution in seconds."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: float


def distribution(values: Iterable[float]) -> Dist | None:
    """Summary of `values`, or None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    return Dist(
        count=len(ordered),
        mean=math.fsum(ordered) / len(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        max=ordered[-1],
    )


@dataclass(frozen=True, kw_only=True)
class PointStats:
    """What one QPS point measured. Rates are per second of the point's wall time."""

    qps: float
    elapsed_s: float
    launched: int
    finished: int
    errors: int
    cancelled: int
    ttft: Dist | None
    itl: Dist | None
    e2e: Dist | None
    finished_rps: float
    input_tps: float
    output_tps: float
    cache_hit_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (nested dicts)."""
        return asdict(self)


def summarize(
    records: Sequence[RequestRecord], *, qps: float, elapsed_s: float, cache_hit_rate: float | None = None
) -> PointStats:
    """Statistics of one QPS point. Latencies come from finished requests only; a request
    cut off by Ctrl-C or the drain limit counts as cancelled, not as an error."""
    done = [r for r in records if r.ok]
    cancelled = sum(1 for r in records if r.error == CANCELLED)
    per_s = 1.0 / elapsed_s if elapsed_s > 0 else 0.0
    return PointStats(
        qps=qps,
        elapsed_s=elapsed_s,
        launched=len(records),
        finished=len(done),
        errors=len(records) - len(done) - cancelled,
        cancelled=cancelled,
        ttft=distribution(r.ttft_s for r in done if r.ttft_s is not None),
        itl=distribution(gap for r in done for gap in r.itl_s),
        e2e=distribution(r.e2e_s for r in done if r.e2e_s is not None),
        finished_rps=len(done) * per_s,
        input_tps=sum(r.prompt_tokens for r in done) * per_s,
        output_tps=sum(r.output_tokens for r in done) * per_s,
        cache_hit_rate=cache_hit_rate,
    )
