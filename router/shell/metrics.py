"""The router's own Prometheus metrics (names from `contracts`, prefix `llmstack_router_`),
on prometheus-client.

Every app has its own `CollectorRegistry` (no global registry). One process keeps its series
in plain Python objects exported by one custom collector (`router.shell._inproc_metrics`): an
update on the hot path is arithmetic, not a lock and a bucket scan. Under `--workers N` the parent
gives the workers one `PROMETHEUS_MULTIPROC_DIR` before they start (prometheus-client picks its
value store when it is imported), so counters, histograms and the in-flight gauge live in
memory-mapped files and `/metrics` on any worker shows every worker's series, summed by
prometheus-client's `MultiProcessCollector`. Figures mirrored from the engines (health,
KV-cache usage, prefix-cache counters) are the answering worker's view, collected at scrape
time; all workers scrape the same engines. A NaN or infinite figure from an engine is
exported as Prometheus' `NaN` / `+Inf`, which the text format allows.

The hot path keeps one child per label tuple (`_Family.child`), so a request costs a dict
lookup and an increment, not prometheus-client's `labels()` validation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as _PromCounter
from prometheus_client import Gauge as _PromGauge
from prometheus_client import Histogram as _PromHistogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

import contracts as c
from contracts.kv_events import FEED_STATES, GAP_LOST, GAP_REPLAYED, TIERS
from router.routing.base import Decision, EngineState
from router.routing.kv.feed import EngineFeed
from router.shell._inproc_metrics import InProcCollector, InProcFamily
from router.shell.engine_metrics import EngineLoad
from router.shell.tokenize import OUTCOMES as TOKENIZE_OUTCOMES

TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Family:
    """One labelled prometheus-client metric with a cache of its children."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def child(self, key: tuple[str, ...]) -> Any:
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = self.metric.labels(*key)
        return found


class Counter(_Family):
    def inc(self, key: tuple[str, ...], amount: float = 1.0) -> None:
        self.child(key).inc(amount)

    def value(self, registry: CollectorRegistry, key: tuple[str, ...]) -> float:
        """This process's count for one label tuple (0 when never counted)."""
        metric = self.metric
        if isinstance(metric, InProcFamily):
            names, base = metric.labelnames, metric.name
        else:
            names, base = metric._labelnames, metric._name
        labels = dict(zip(names, key, strict=True))
        return registry.get_sample_value(base.removesuffix("_total") + "_total", labels) or 0.0


class Histogram(_Family):
    def observe(self, key: tuple[str, ...], value: float) -> None:
        self.child(key).observe(value)


class Gauge(_Family):
    def inc(self, key: tuple[str, ...]) -> None:
        self.child(key).inc()

    def dec(self, key: tuple[str, ...]) -> None:
        self.child(key).dec()


class RouterMetrics:
    """Every metric the router exports; one instance per app. `multiproc_dir`: the directory
    shared by the workers (None: one process)."""

    def __init__(self, multiproc_dir: str | None = None) -> None:
        self.multiproc_dir = multiproc_dir
        self.registry = reg = CollectorRegistry()
        make = _Makers(reg, None if multiproc_dir else InProcCollector())
        self.requests = Counter(make.counter(
            c.ROUTER_REQUESTS, "Requests answered, by model, engine and HTTP status.",
            ("model", "engine", "status")))
        self.decisions = Counter(make.counter(
            c.ROUTER_DECISIONS, "Routing decisions by policy and outcome.", ("policy", "outcome")))
        self.retries = Counter(make.counter(
            c.ROUTER_RETRIES, "Requests retried on another engine, by failed engine.", ("engine",)))
        self.stream_errors = Counter(make.counter(
            c.ROUTER_STREAM_ERRORS, "Streams ended by an engine failure.", ("engine",)))
        self.task_restarts = Counter(make.counter(
            c.ROUTER_TASK_RESTARTS, "Background tasks (discovery, health checks, metric scraping) that "
            "died and were restarted, by task.", ("task",)))
        self.ttft = Histogram(make.histogram(
            c.ROUTER_TTFT, "Time to first byte of the answer, seen by the router.", ("model", "engine"),
            buckets=TTFT_BUCKETS))
        self.itl = Histogram(make.histogram(
            c.ROUTER_ITL, "Time between pieces of a stream, seen by the router.", ("model", "engine"),
            buckets=ITL_BUCKETS))
        self.in_flight = Gauge(make.gauge(
            c.ROUTER_IN_FLIGHT, "Requests the router has open to the engine.", ("engine",)))
        self.held = Gauge(make.gauge(
            c.ROUTER_HELD, "Requests held for want of an engine that can take them (what wakes a "
            "model scaled to zero), by model.", ("model",)))
        self.hold_outcomes = Counter(make.counter(
            c.ROUTER_HOLD_OUTCOMES, "How held requests left the hold queue (dispatched, timed_out, "
            "refused, displaced, cancelled, closed), by model.", ("model", "outcome")))
        self.deadline_misses = Counter(make.counter(
            c.ROUTER_DEADLINE_MISSES, "Engine answers given up on at a deadline (first_byte, inter_chunk, "
            "whole), by engine.", ("engine", "deadline")))
        self.ejections = Counter(make.counter(
            c.ROUTER_EJECTIONS, "Engines taken out of rotation by passive ejection (repeated failed "
            "requests), by engine and the last failure's kind.", ("engine", "reason")))
        self.migrations = Counter(make.counter(
            c.ROUTER_MIGRATIONS, "Streams whose engine failed after the first byte, by how they ended: "
            "completed (continued on another engine to its end), failed (the continuation failed too), "
            "exhausted (limits.max_migrations reached), unsupported (a request a continuation cannot "
            "reproduce).", ("model", "outcome")))
        self.kv_predicted = Counter(make.counter(
            c.ROUTER_KV_PREDICTED, "Prompt tokens the policy predicted cached on the engine it chose, by "
            "engine, tier (gpu, cpu, storage) and how that engine was scored (events: by its KV events; "
            "approximate: by the router's own estimate). Compare with the engine's prefix-cache hits.",
            ("engine", "tier", "mode")))
        self.kv_fallbacks = Counter(make.counter(
            c.ROUTER_KV_FALLBACKS, "Candidate engines scored by the router's estimate although scoring by "
            "KV events is on, per routing decision, by engine and reason (syncing, untrusted, stale, "
            "unfollowed, no_tokens).", ("engine", "reason")))
        self.kv_tokenize = Counter(make.counter(
            c.ROUTER_KV_TOKENIZE, "Prompts tokenised by an engine's /tokenize for scoring by KV events, by "
            "outcome (ok, given, timeout, error, unsupported, no_engine).", ("outcome",)))
        for outcome in TOKENIZE_OUTCOMES:  # known label values start at 0, so the series exist
            self.kv_tokenize.child((outcome,))
        if make.inproc is not None:
            reg.register(make.inproc)
        self.mirror = EngineMirror()
        reg.register(self.mirror)
        self.kv_mirror = KvFeedMirror()
        reg.register(self.kv_mirror)

    def count_prediction(self, decision: Decision) -> None:
        """A decision's predicted cached tokens per tier, and the candidates that fell back."""
        engine = decision.engine.id
        for tier, tokens in zip(TIERS, decision.tier_tokens, strict=True):
            if tokens:
                self.kv_predicted.inc((engine, tier, decision.scored_by), tokens)
        for other, reason in decision.fallbacks.items():
            self.kv_fallbacks.inc((other, reason))

    def render(self, engines: Iterable[EngineState], loads: Mapping[str, EngineLoad] | None = None,
               feeds: Mapping[str, EngineFeed] | None = None, now: float | None = None) -> bytes:
        """Prometheus text exposition (version 0.0.4): the router's own series (every worker's
        under `--workers N`), the engines' figures and their KV-event streams as this process
        last saw them."""
        self.mirror.update(list(engines), dict(loads or {}))
        self.kv_mirror.update(dict(feeds or {}), time.monotonic() if now is None else now)
        if self.multiproc_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiproc_dir)
        merged.register(self.mirror)
        merged.register(self.kv_mirror)
        return generate_latest(merged)


class _Makers:
    """Builds each metric: an in-process family when `inproc` is given (one process), else a
    prometheus-client object in `registry`, whose value store is multiprocess under workers."""

    def __init__(self, registry: CollectorRegistry, inproc: InProcCollector | None) -> None:
        self.registry, self.inproc = registry, inproc

    def counter(self, name: str, doc: str, labels: tuple[str, ...]) -> Any:
        if self.inproc is not None:
            return self.inproc.add(InProcFamily("counter", name, doc, labels))
        return _PromCounter(name, doc, labels, registry=self.registry)

    def gauge(self, name: str, doc: str, labels: tuple[str, ...]) -> Any:
        if self.inproc is not None:
            return self.inproc.add(InProcFamily("gauge", name, doc, labels))
        return _PromGauge(name, doc, labels, registry=self.registry, multiprocess_mode="livesum")

    def histogram(self, name: str, doc: str, labels: tuple[str, ...], *, buckets: tuple[float, ...]) -> Any:
        if self.inproc is not None:
            return self.inproc.add(InProcFamily("histogram", name, doc, labels, buckets))
        return _PromHistogram(name, doc, labels, buckets=buckets, registry=self.registry)


class EngineMirror:
    """A custom collector: engine health and the engines' own figures, from the live state."""

    def __init__(self) -> None:
        self._engines: list[EngineState] = []
        self._loads: dict[str, EngineLoad] = {}

    def update(self, engines: list[EngineState], loads: dict[str, EngineLoad]) -> None:
        self._engines, self._loads = engines, loads

    def describe(self) -> list[Metric]:
        return []  # collected at scrape time only; nothing to check for name clashes up front

    def collect(self) -> Iterator[Metric]:
        loads = self._loads
        yield _family(GaugeMetricFamily, c.ROUTER_ENGINE_HEALTHY, "1 when the engine is in rotation.",
                      ((e.id, float(e.healthy)) for e in self._engines))
        yield _family(GaugeMetricFamily, c.ROUTER_ENGINE_KV_USAGE,
                      "The engine's KV-cache usage (0..1), as last scraped.",
                      ((url, load.kv_usage) for url, load in loads.items() if load.kv_usage is not None))
        cached = [(url, load) for url, load in loads.items() if load.prefix_queries is not None]
        yield _family(CounterMetricFamily, c.ROUTER_ENGINE_PREFIX_QUERIES,
                      "The engine's prefix-cache tokens queried, as last scraped.",
                      ((url, load.prefix_queries or 0.0) for url, load in cached))
        yield _family(CounterMetricFamily, c.ROUTER_ENGINE_PREFIX_HITS,
                      "The engine's prefix-cache tokens hit, as last scraped.",
                      ((url, load.prefix_hits) for url, load in cached))


class KvFeedMirror:
    """A custom collector: each engine's KV-event stream (state, batches, gaps) at scrape time,
    this process's view (every worker subscribes on its own)."""

    def __init__(self) -> None:
        self._feeds: dict[str, EngineFeed] = {}
        self._now = 0.0

    def update(self, feeds: dict[str, EngineFeed], now: float) -> None:
        self._feeds, self._now = feeds, now

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        feeds = self._feeds
        if not feeds:
            return
        state = GaugeMetricFamily(c.ROUTER_KV_EVENTS_STATE, "1 for the state of each engine's KV-event "
                                  "stream (live: routed on; syncing, untrusted, stale: not).",
                                  labels=("engine", "state"))
        gaps = CounterMetricFamily(c.ROUTER_KV_EVENTS_GAPS, "Gaps in each engine's KV-event stream, "
                                   "by outcome (replayed, lost).", labels=("engine", "outcome"))
        for url, feed in feeds.items():
            now = feed.state(self._now).value
            for name in FEED_STATES:
                state.add_metric((url, name), float(name == now))
            gaps.add_metric((url, GAP_REPLAYED), feed.counts.gaps_replayed)
            gaps.add_metric((url, GAP_LOST), feed.counts.gaps_lost)
        yield state
        yield gaps
        yield _family(CounterMetricFamily, c.ROUTER_KV_EVENTS_BATCHES, "KV-event batches applied to the "
                      "index, per engine.", ((url, float(f.counts.batches)) for url, f in feeds.items()))


def _family(kind: Callable[..., Any], name: str, help_: str, rows: Iterable[tuple[str, float]]) -> Metric:
    family = kind(name, help_, labels=("engine",))  # a Counter/GaugeMetricFamily
    for engine, value in rows:
        family.add_metric((engine,), value)
    return family

