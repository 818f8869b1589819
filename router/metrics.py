"""The router's own Prometheus metrics (names from `router.contracts`, prefix `llmstack_router_`).

Counters and histograms are plain dicts keyed by label-value tuples, cheap enough for the
hot path (one dict update, one `bisect`). Gauges that mirror live engine state (health,
in-flight) are not stored: they are read from the engines when `/metrics` is rendered.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence

from router import contracts as c
from router.engine_metrics import EngineLoad
from router.policies.base import EngineState

TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)


class Counter:
    def __init__(self, name: str, help_: str, labels: Sequence[str]) -> None:
        self.name, self.help, self.labels = name, help_, tuple(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, key: tuple[str, ...], amount: float = 1.0) -> None:
        values = self.values
        values[key] = values.get(key, 0.0) + amount

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}\n# TYPE {self.name} counter\n"
        for key, value in self.values.items():
            yield f"{self.name}{{{_labels(self.labels, key)}}} {_num(value)}\n"


class Histogram:
    def __init__(self, name: str, help_: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        self.name, self.help, self.labels = name, help_, tuple(labels)
        self.buckets = tuple(buckets)
        self.series: dict[tuple[str, ...], list[float]] = {}  # bucket counts..., +Inf, sum

    def observe(self, key: tuple[str, ...], value: float) -> None:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = [0.0] * (len(self.buckets) + 2)
        series[bisect_left(self.buckets, value)] += 1
        series[-1] += value

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}\n# TYPE {self.name} histogram\n"
        for key, series in self.series.items():
            base = _labels(self.labels, key)
            sep = "," if base else ""
            running = 0.0
            for bound, count in zip((*self.buckets, float("inf")), series, strict=False):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                yield f'{self.name}_bucket{{{base}{sep}le="{le}"}} {_num(running)}\n'
            yield f"{self.name}_sum{{{base}}} {series[-1]!r}\n{self.name}_count{{{base}}} {_num(running)}\n"


class RouterMetrics:
    """Every metric the router exports; one instance per app."""

    def __init__(self) -> None:
        self.requests = Counter(c.ROUTER_REQUESTS, "Requests answered, by model, engine and HTTP status.",
                                ("model", "engine", "status"))
        self.decisions = Counter(c.ROUTER_DECISIONS, "Routing decisions by policy and outcome.",
                                 ("policy", "outcome"))
        self.retries = Counter(c.ROUTER_RETRIES, "Requests retried on another engine, by failed engine.",
                               ("engine",))
        self.stream_errors = Counter(c.ROUTER_STREAM_ERRORS, "Streams ended by an engine failure.",
                                     ("engine",))
        self.ttft = Histogram(c.ROUTER_TTFT, "Time to first byte of the answer, seen by the router.",
                              ("model", "engine"), TTFT_BUCKETS)
        self.itl = Histogram(c.ROUTER_ITL, "Time between pieces of a stream, seen by the router.",
                             ("model", "engine"), ITL_BUCKETS)

    def render(self, engines: Iterable[EngineState], loads: Mapping[str, EngineLoad] | None = None) -> bytes:
        """Prometheus text exposition (version 0.0.4); `loads` are the engines' last scraped
        figures, mirrored for clients that can reach only the router."""
        engines = list(engines)
        parts: list[str] = []
        for metric in (self.requests, self.decisions, self.retries, self.stream_errors, self.ttft, self.itl):
            parts.extend(metric.render())
        parts.append(_gauge(c.ROUTER_ENGINE_HEALTHY, "1 when the engine is in rotation.",
                            ((e.id, int(e.healthy)) for e in engines)))
        parts.append(_gauge(c.ROUTER_IN_FLIGHT, "Requests this router process has open to the engine.",
                            ((e.id, e.in_flight) for e in engines)))
        parts.extend(_engine_mirrors(loads or {}))
        return "".join(parts).encode()


def _engine_mirrors(loads: Mapping[str, EngineLoad]) -> list[str]:
    kv = [(url, load.kv_usage) for url, load in loads.items() if load.kv_usage is not None]
    cached = [(url, load) for url, load in loads.items() if load.prefix_queries is not None]
    return [
        _gauge(c.ROUTER_ENGINE_KV_USAGE, "The engine's KV-cache usage (0..1), as last scraped.", kv),
        _gauge(c.ROUTER_ENGINE_PREFIX_QUERIES, "The engine's prefix-cache tokens queried, as last scraped.",
               [(url, load.prefix_queries or 0.0) for url, load in cached], kind="counter"),
        _gauge(c.ROUTER_ENGINE_PREFIX_HITS, "The engine's prefix-cache tokens hit, as last scraped.",
               [(url, load.prefix_hits) for url, load in cached], kind="counter"),
    ]


def _gauge(name: str, help_: str, rows: Iterable[tuple[str, float]], kind: str = "gauge") -> str:
    """One value per engine; `kind` "counter" for mirrored engine counters."""
    lines = [f"# HELP {name} {help_}\n# TYPE {name} {kind}\n"]
    lines.extend(f'{name}{{engine="{_escape(engine)}"}} {_num(value)}\n' for engine, value in rows)
    return "".join(lines)


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
