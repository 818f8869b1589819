"""Drain and rollout arithmetic: the longest request, grace periods, rollout steps and the await."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stack_components import drain


def test_longest_request_is_a_full_sequence_at_the_slowest_decode():
    """16k tokens: 2 s of prefill plus 655 s of decode at 25 tokens/s; grace adds the teardown."""
    assert drain.longest_request_s(16_384) == 658
    assert drain.engine_grace_s(658) == 658 + drain.TEARDOWN_S


@given(st.integers(1, 1_000_000), st.integers(1, 1_000_000))
def test_longest_request_is_monotone_in_length(a, b):
    """A longer max_model_len never allows a shorter longest request."""
    lo, hi = sorted((a, b))
    assert drain.longest_request_s(lo) <= drain.longest_request_s(hi)


def test_rollout_steps_follow_kubernetes_rounding():
    """25 %: rounded down and at least one pod, so 1..7 engines roll one at a time (7 steps at 7),
    8 roll in 4 steps; the most over 1..24 engines is 7."""
    assert [drain.rollout_batch(n, 25) for n in (1, 3, 4, 7, 8, 24)] == [1, 1, 1, 1, 2, 6]
    assert drain.rollout_steps(1, 25) == 1
    assert drain.rollout_steps(4, 25) == 4
    assert drain.rollout_steps(24, 25) == 7
    assert drain.rollout_steps(24, 100) == 1


@given(st.integers(1, 300), st.integers(1, 100))
def test_rollout_steps_never_exceed_the_replicas(replicas, percent):
    """A rolling update takes at least one step and never more than one per engine."""
    assert 1 <= drain.rollout_steps(replicas, percent) <= replicas


def test_await_covers_every_step_and_one_slow_start():
    """The issue's case: 13 one-at-a-time 8B steps of 120 s grace + 180 s load outlast the old
    2,400 s await; the sized await covers them, one 1,800 s start and the slack."""
    sized = drain.rollout_await_s(steps=13, grace_s=120, load_time_s=180, startup_timeout_s=1800)
    assert 13 * (120 + 180) > 2400
    assert sized == 13 * 300 + (1800 - 180) + drain.AWAIT_SLACK_S
