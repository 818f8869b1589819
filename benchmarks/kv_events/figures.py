"""From records and counters to the printed figures and their verdicts. Pure.

A figure line is `SCENARIO MODE key value ... target TEXT VERDICT`: the issue's targets are for
the events mode, so its lines say PASS or FAIL; approximate-mode lines are the comparison and
say `-`; a figure that could not be measured (the router exports no prediction) says `n/a`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

PASS, FAIL, INFO, NA = "PASS", "FAIL", "-", "n/a"
EVENTS = "events"


class Served(Protocol):
    """What a figure needs of one request (`client.Record`)."""

    @property
    def ok(self) -> bool: ...
    engine: str | None
    prompt_tokens: int
    hit_tokens: int
    ttft_s: float | None
    launched: float
    predicted: dict[str, float]
    available: int | None


def hit_rate(records: Iterable[Served]) -> float:
    """Delivered cached prompt tokens over prompt tokens, of the requests served (nan: none)."""
    served = [r for r in records if r.ok and r.engine is not None]
    prompt = sum(r.prompt_tokens for r in served)
    return sum(r.hit_tokens for r in served) / prompt if prompt else math.nan


def found_share(records: Iterable[Served]) -> float:
    """Delivered cached tokens over the most any engine held as each request was routed, of the
    requests served with that probe (`client.Users.probe`; nan: none, or nothing was held)."""
    probed = [r for r in records if r.ok and r.engine is not None and r.available is not None]
    held = sum(r.available or 0 for r in probed)
    return sum(r.hit_tokens for r in probed) / held if held else math.nan


def p99(values: Sequence[float]) -> float:
    """The 99th percentile (nearest rank; nan: no value)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def relative_error(predicted: float, delivered: float) -> float:
    """|predicted - delivered| / delivered (inf when nothing was delivered but something predicted)."""
    return _over(abs(predicted - delivered), delivered)


def _over(miss: float, delivered: float) -> float:
    if delivered:
        return miss / delivered
    return 0.0 if not miss else math.inf


def per_engine_error(predicted: Mapping[str, float], delivered: Mapping[str, float]) -> float:
    """Sum over engines of |predicted - delivered|, over the delivered total: errors on two engines
    do not cancel out."""
    engines = set(predicted) | set(delivered)
    miss = sum(abs(predicted.get(e, 0.0) - delivered.get(e, 0.0)) for e in engines)
    return _over(miss, sum(delivered.values()))


def per_request_error(records: Iterable[Served]) -> float:
    """Sum over requests of |predicted on its engine - delivered|, over the delivered total."""
    served = [r for r in records if r.ok and r.engine is not None]
    delivered = sum(r.hit_tokens for r in served)
    miss = sum(abs(r.predicted.get(r.engine or "", 0.0) - r.hit_tokens) for r in served)
    return _over(miss, delivered)


def attributed(records: Iterable[Served]) -> float:
    """Predicted tokens the gate attributed to single requests, all engines: equal to the router's
    counter growth over the same requests when the attribution is exact."""
    return sum(sum(r.predicted.values()) for r in records)


def believed_warm(records: Iterable[Served], engine: str, start: float, end: float, slack: int) -> int:
    """Requests launched in [start, end) and sent to `engine` with more predicted cached than it
    delivered, by more than `slack` tokens (the coarser of the two block sizes)."""
    return sum(1 for r in records
               if r.engine == engine and start <= r.launched < end and r.ok
               and r.predicted.get(engine, 0.0) - r.hit_tokens > slack)


def excess_tokens(records: Iterable[Served], engine: str, start: float, end: float) -> float:
    """Predicted-but-not-delivered tokens on `engine` over the window (never negative per request)."""
    return sum(max(0.0, r.predicted.get(engine, 0.0) - r.hit_tokens) for r in records
               if r.engine == engine and start <= r.launched < end and r.ok)


def verdict(mode: str, ok: bool | None) -> str:
    """PASS/FAIL for the events mode, `-` for the comparison mode, n/a when unmeasured."""
    if ok is None:
        return NA
    if mode != EVENTS:
        return INFO
    return PASS if ok else FAIL


def fmt(value: float | int | str | None, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    return f"{value:.{digits}f}"


@dataclass(frozen=True)
class Figure:
    """One printed line."""

    scenario: str
    mode: str
    values: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    verdict: str = INFO

    def line(self) -> str:
        body = " ".join(f"{k} {v}" for k, v in self.values.items())
        return f"{self.scenario} {self.mode} {body} target {self.target.replace(' ', '')} {self.verdict}"
