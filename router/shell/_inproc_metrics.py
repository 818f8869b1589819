"""In-process metric families for a single router process: the hot path's `inc` / `observe`
is plain arithmetic on a Python object, and one custom collector turns the values into
prometheus-client metric families at scrape time (the same names, labels, buckets and
`_created` samples prometheus-client's own Counter / Gauge / Histogram export).

prometheus-client's objects take a lock per update and, for a histogram, scan its buckets in
Python; under `--workers N` they are still used (their multiprocess value store is what lets
every worker's series be summed), see `router.shell.metrics`.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString


class CounterValue:
    __slots__ = ("value", "created")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class GaugeValue:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class HistogramValue:
    """Per-bucket counts (not cumulative; the last is +Inf) and the sum of observations."""

    __slots__ = ("bounds", "counts", "sum", "created")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # first bucket with value <= le
        self.sum += value


class InProcFamily:
    """One labelled metric (`kind`: counter, gauge or histogram) with its children by label tuple;
    `labels(*key)` makes a child, as prometheus-client's `labels` does."""

    def __init__(self, kind: str, name: str, documentation: str, labelnames: tuple[str, ...],
                 buckets: tuple[float, ...] = ()) -> None:
        self.kind, self.name, self.documentation = kind, name, documentation
        self.labelnames = labelnames
        self.bounds = tuple(float(b) for b in buckets)
        self.children: dict[tuple[str, ...], Any] = {}

    def labels(self, *key: str) -> Any:
        found = self.children.get(key)
        if found is None:
            if self.kind == "counter":
                found = CounterValue()
            elif self.kind == "gauge":
                found = GaugeValue()
            else:
                found = HistogramValue(self.bounds)
            self.children[key] = found
        return found

    def collect(self) -> Metric:
        if self.kind == "counter":
            family: Any = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
            for key, child in self.children.items():
                family.add_metric(key, child.value, created=child.created)
        elif self.kind == "gauge":
            family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
            for key, child in self.children.items():
                family.add_metric(key, child.value)
        else:
            family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
            les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
            for key, child in self.children.items():
                running, buckets = 0, []
                for le, count in zip(les, child.counts, strict=True):
                    running += count
                    buckets.append((le, float(running)))
                family.add_metric(key, buckets, child.sum)
                labels = dict(zip(self.labelnames, key, strict=True))
                family.samples.append(Sample(self.name + "_created", labels, child.created))
        return family


class InProcCollector:
    """The custom collector over every in-process family, registered once per app."""

    def __init__(self) -> None:
        self.families: list[InProcFamily] = []

    def add(self, family: InProcFamily) -> InProcFamily:
        self.families.append(family)
        return family

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.collect()
