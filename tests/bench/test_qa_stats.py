"""Percentiles and per-point statistics."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.records import CANCELLED, RequestRecord
from bench.stats import distribution, percentile, summarize

latencies = st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=300)


@settings(deadline=None)
@given(latencies)
def test_percentiles_are_ordered_and_bounded(values):
    """min <= p50 <= p90 <= p99 <= max, and the mean lies within [min, max]."""
    dist = distribution(values)
    assert min(values) <= dist.p50 <= dist.p90 <= dist.p99 <= dist.max == max(values)
    assert min(values) - 1e-9 <= dist.mean <= max(values) + 1e-9
    assert dist.count == len(values)


@settings(deadline=None)
@given(latencies, st.floats(0, 100))
def test_percentile_splits_the_sample(values, q):
    """At least q% of the values are <= the q-th percentile, and at least (100-q)% are >= it."""
    ordered = sorted(values)
    p = percentile(ordered, q)
    below = sum(v <= p for v in ordered)
    above = sum(v >= p for v in ordered)
    assert below >= math.floor(q / 100 * (len(ordered) - 1)) + 1
    assert above >= len(ordered) - math.ceil(q / 100 * (len(ordered) - 1))


def test_percentile_interpolates_like_numpy():
    """Linear interpolation between order statistics (numpy's default method)."""
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([0.0, 10.0], 90) == 9.0
    assert percentile([5.0], 99) == 5.0
    with pytest.raises(ValueError, match="at least one value"):
        percentile([], 50)


def _rec(i, *, ttft=0.1, status=200, error="", itl=(0.01, 0.03)):
    return RequestRecord(request_id=f"r{i}", user_id="u", round=0, qps=2.0, launch_s=float(i),
                         ttft_s=ttft, e2e_s=None if error else ttft + sum(itl), itl_s=itl,
                         prompt_tokens=1000, output_tokens=3, status=status, error=error)


def test_summary_counts_rates_and_latencies():
    """Finished requests feed latencies and rates; errors and cancellations are counted apart."""
    records = [_rec(0, ttft=0.1), _rec(1, ttft=0.3), _rec(2, status=500, error="boom"),
               _rec(3, status=0, error=CANCELLED)]
    stats = summarize(records, qps=2.0, elapsed_s=2.0, cache_hit_rate=0.5)
    assert (stats.launched, stats.finished, stats.errors, stats.cancelled) == (4, 2, 1, 1)
    assert stats.ttft.mean == pytest.approx(0.2) and stats.ttft.p50 == pytest.approx(0.2)
    assert stats.itl.count == 4 and stats.itl.mean == pytest.approx(0.02)
    assert (stats.finished_rps, stats.input_tps, stats.output_tps) == (1.0, 1000.0, 3.0)
    assert stats.cache_hit_rate == 0.5
    assert stats.to_dict()["ttft"]["p99"] == pytest.approx(0.298)


def test_summary_of_nothing_finished_has_no_latencies():
    """A point where every request failed reports None latencies and zero rates."""
    stats = summarize([_rec(0, status=503, error="down")], qps=1.0, elapsed_s=1.0)
    assert stats.ttft is None and stats.itl is None and stats.finished_rps == 0.0 and stats.errors == 1
