"""router.shell._inproc_metrics: the single-process families export exactly what prometheus-client's
own Counter / Gauge / Histogram would, for the same updates."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from router.shell._inproc_metrics import InProcCollector, InProcFamily

BUCKETS = (0.001, 0.005, 0.01, 0.1, 1.0)
KEYS = st.sampled_from((("a",), ("b",)))
values = st.floats(min_value=0.0, max_value=5.0, allow_nan=False)


def _lines(registry: CollectorRegistry) -> list[str]:
    return sorted(line for line in generate_latest(registry).decode().splitlines() if "_created" not in line)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(("inc", "dec", "observe")), KEYS, values), max_size=40))
def test_exposition_matches_prometheus_client(ops: list[tuple[str, tuple[str, ...], float]]) -> None:
    """Counters, gauges and histogram buckets (edges included) read the same as prometheus-client's."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    inproc = InProcCollector()
    fam = {"c": inproc.add(InProcFamily("counter", "x_total", "c.", ("k",))),
           "g": inproc.add(InProcFamily("gauge", "y", "g.", ("k",))),
           "h": inproc.add(InProcFamily("histogram", "z_seconds", "h.", ("k",), BUCKETS))}
    ours.register(inproc)
    ref = {"c": Counter("x_total", "c.", ("k",), registry=theirs),
           "g": Gauge("y", "g.", ("k",), registry=theirs),
           "h": Histogram("z_seconds", "h.", ("k",), buckets=BUCKETS, registry=theirs)}
    fam["c"].labels("a")
    ref["c"].labels("a")
    edges = [(("observe", ("a",), b)) for b in BUCKETS]  # a value on a bucket's bound counts in it
    for op, key, value in [*edges, *ops]:
        if op == "observe":
            targets: tuple[str, ...] = ("h",)
        else:
            targets = ("c", "g") if op == "inc" else ("g",)
        for name in targets:
            for family in (fam[name].labels(*key), ref[name].labels(*key)):
                getattr(family, op)(value)
    assert _lines(ours) == _lines(theirs)
    created = [line for line in generate_latest(ours).decode().splitlines() if "_created{" in line]
    assert {line.split("{")[0] for line in created} == {"x_created", "z_seconds_created"}
