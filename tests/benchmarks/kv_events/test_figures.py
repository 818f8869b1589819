"""The KV-events benchmark's pure figures: hit rate, percentiles, prediction errors that do not
cancel out, the count of requests sent to a wiped engine on a wrong belief, the line format."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from benchmarks.kv_events import figures as fig


@dataclass
class _R:
    engine: str | None
    prompt_tokens: int
    hit_tokens: int
    launched: float = 0.0
    predicted: dict[str, float] = field(default_factory=dict)
    ttft_s: float | None = 0.01
    status: int = 200
    available: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.ttft_s is not None


def test_hit_rate_is_delivered_over_prompt_tokens_of_served_requests_only() -> None:
    records = [_R("a", 100, 50), _R("b", 300, 250), _R("a", 1000, 1000, status=502), _R(None, 50, 0)]
    assert fig.hit_rate(records) == pytest.approx(300 / 400)
    assert math.isnan(fig.hit_rate([]))


def test_found_share_is_delivered_over_what_the_best_engine_held_of_probed_requests_only() -> None:
    records = [_R("a", 1000, 500, available=800), _R("b", 1000, 200, available=200),
               _R("a", 1000, 900), _R("a", 1000, 0, available=600, status=502)]
    assert fig.found_share(records) == pytest.approx(700 / 1000)
    assert math.isnan(fig.found_share([_R("a", 100, 0, available=0)])) and math.isnan(fig.found_share([]))


def test_p99_is_the_nearest_rank() -> None:
    assert fig.p99([float(i) for i in range(1, 101)]) == 99.0
    assert fig.p99([3.0, 1.0]) == 3.0
    assert math.isnan(fig.p99([]))


def test_errors_on_two_engines_do_not_cancel_per_engine_but_do_in_the_aggregate() -> None:
    predicted, delivered = {"a": 150.0, "b": 50.0}, {"a": 100.0, "b": 100.0}
    assert fig.relative_error(sum(predicted.values()), sum(delivered.values())) == 0.0
    assert fig.per_engine_error(predicted, delivered) == pytest.approx(0.5)
    assert fig.relative_error(5.0, 0.0) == math.inf and fig.relative_error(0.0, 0.0) == 0.0


def test_per_request_error_compares_each_prediction_on_its_own_engine() -> None:
    records = [_R("a", 100, 80, predicted={"a": 80.0}), _R("b", 100, 20, predicted={"b": 60.0, "a": 5.0})]
    assert fig.per_request_error(records) == pytest.approx(40 / 100)
    assert fig.attributed(records) == 145.0


def test_believed_warm_counts_only_over_predictions_on_that_engine_within_the_window() -> None:
    records = [
        _R("w", 500, 0, launched=1.0, predicted={"w": 480.0}),   # counted
        _R("w", 500, 448, launched=2.0, predicted={"w": 480.0}),  # within the slack
        _R("w", 500, 0, launched=2.5),                            # no belief: placed as new
        _R("x", 500, 0, launched=3.0, predicted={"x": 480.0}),   # another engine
        _R("w", 500, 0, launched=9.0, predicted={"w": 480.0}),   # past the window
        _R("w", 500, 0, launched=4.0, predicted={"w": 480.0}, status=502),  # not served
    ]
    assert fig.believed_warm(records, "w", 0.0, 5.0, slack=64) == 1
    assert fig.excess_tokens(records, "w", 0.0, 5.0) == 480.0 + 32.0


def test_verdicts_are_the_events_modes_and_lines_have_one_word_targets() -> None:
    assert fig.verdict("events", True) == "PASS" and fig.verdict("events", False) == "FAIL"
    assert fig.verdict("approximate", False) == "-" and fig.verdict("events", None) == "n/a"
    values = {"hit_rate": fig.fmt(0.51234), "n": fig.fmt(3)}
    line = fig.Figure("restart", "events", values, "<= 0 x", "PASS").line()
    assert line == "restart events hit_rate 0.5123 n 3 target <=0x PASS"
    assert fig.fmt(math.nan) == "nan" and fig.fmt(None) == "n/a"
