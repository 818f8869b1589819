"""Pure arithmetic of the router benchmark: percentiles, CPU per request/token, decision agreement."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.router_bench.stats import (
    LoadResult,
    cpu_per_request_us,
    cpu_per_token_us,
    percentile,
    same_decisions,
    summarize,
)


@given(st.lists(st.floats(min_value=0, max_value=1e3), min_size=1, max_size=50))
def test_percentiles_are_ordered_and_bounded(values: list[float]) -> None:
    """p0 is the min, p100 the max, and p50 <= p90 <= p99 in between."""
    ps = [percentile(values, q) for q in (0, 50, 90, 99, 100)]
    assert ps[0] == min(values) and ps[-1] == max(values)
    assert all(a <= b + 1e-9 for a, b in zip(ps, ps[1:], strict=False))


def test_percentile_of_nothing_is_nan() -> None:
    """No samples: NaN, never a made-up zero."""
    assert math.isnan(percentile([], 50))


def test_summarize_and_round_trip() -> None:
    """A run's summary survives to_dict/from_dict, and rps is ok / wall."""
    result = summarize(latencies=[0.001, 0.002, 0.003], ttfbs=[0.0005] * 3, events=0, errors=1, wall_s=0.5)
    assert result.ok == 3 and result.errors == 1 and result.p50_s == 0.002 and result.rps == 6.0
    assert LoadResult.from_dict(result.to_dict()) == result


def test_cpu_figures() -> None:
    """CPU per request in us; per streamed token is the streaming surplus over the tokens."""
    assert cpu_per_request_us(0.5, 5000) == pytest.approx(100.0)
    assert cpu_per_token_us(740.0, 100.0, 64) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="requests"):
        cpu_per_request_us(1.0, 0)
    with pytest.raises(ValueError, match="tokens"):
        cpu_per_token_us(1.0, 1.0, 0)


def test_same_decisions_counts_conversations_on_one_identical_engine() -> None:
    """A conversation agrees only if both runs sent all of it to the same single engine."""
    first = {"e1": {"a": 3, "b": 1}, "e2": {"b": 2, "c": 4}}
    second = {"e1": {"a": 2}, "e2": {"b": 3, "c": 1}, "e3": {"d": 1}}
    # a: e1/e1 agree; b: split in the first run; c: e2/e2 agree; d: only in the second run
    assert same_decisions(first, second) == (2, 4)
