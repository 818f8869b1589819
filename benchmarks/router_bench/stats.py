"""Pure arithmetic for the router benchmark: percentiles, one load run's summary, and the
per-request / per-token CPU figures derived from CPU-time deltas. No I/O, no clock."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    """Median, NaN for no values (repeats of a config are summarised by this)."""
    return statistics.median(values) if values else float("nan")


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    """One load-generator run: counts, wall time and latency percentiles in seconds."""

    ok: int
    errors: int
    wall_s: float
    events: float
    p50_s: float
    p90_s: float
    p99_s: float
    mean_s: float
    ttfb_p50_s: float

    @property
    def rps(self) -> float:
        return self.ok / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadResult:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


def summarize(*, latencies: Sequence[float], ttfbs: Sequence[float], events: float,
              errors: int, wall_s: float) -> LoadResult:
    """Summarise one run's per-request timings."""
    return LoadResult(
        ok=len(latencies), errors=errors, wall_s=wall_s, events=events,
        p50_s=percentile(latencies, 50), p90_s=percentile(latencies, 90),
        p99_s=percentile(latencies, 99),
        mean_s=statistics.fmean(latencies) if latencies else float("nan"),
        ttfb_p50_s=percentile(ttfbs, 50),
    )


def cpu_per_request_us(cpu_s: float, requests: int) -> float:
    """Router CPU per request in microseconds."""
    if requests <= 0:
        raise ValueError(f"'requests' must be > 0 (got {requests})")
    return cpu_s / requests * 1e6


def cpu_per_token_us(stream_per_request_us: float, plain_per_request_us: float, tokens: int) -> float:
    """CPU per streamed token: the streaming request's extra CPU over the same request
    answered in one body, spread over its tokens."""
    if tokens <= 0:
        raise ValueError(f"'tokens' must be > 0 (got {tokens})")
    return (stream_per_request_us - plain_per_request_us) / tokens


def same_decisions(first: Mapping[str, Mapping[str, int]],
                   second: Mapping[str, Mapping[str, int]]) -> tuple[int, int]:
    """How many conversations were sent to the same single engine in both runs, out of
    how many conversations appear in either. Inputs: engine -> {conversation: requests}."""
    def placement(run: Mapping[str, Mapping[str, int]]) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {}
        for engine, counts in run.items():
            for conv in counts:
                out.setdefault(conv, set()).add(engine)
        return {conv: frozenset(engines) for conv, engines in out.items()}

    a, b = placement(first), placement(second)
    convs = set(a) | set(b)
    same = sum(1 for conv in convs if a.get(conv) == b.get(conv) and len(a.get(conv, ())) == 1)
    return same, len(convs)
