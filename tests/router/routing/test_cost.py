"""The TTFT estimate: queue plus uncached prefill, and the hot-path argmin that inlines it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.routing.base import EngineState
from router.routing.cost import (
    CostModel,
    cheapest,
    cpu_share,
    estimate_ttft_s,
    prefill_s,
    queue_wait_s,
    queued_requests,
)
from router.settings import SettingsError

MODEL = CostModel()


def engine(name: str = "e", **load: int) -> EngineState:
    return EngineState(id=name, gpu_cache_tokens=400_000, cpu_cache_tokens=load.pop("cpu", 0), **load)


def test_a_cold_20k_prompt_costs_about_two_and_a_half_seconds() -> None:
    """Defaults follow DESIGN.md: 20k uncached tokens on an idle A100 ~2.5 s."""
    assert estimate_ttft_s(engine(), 20_000, 0, MODEL) == pytest.approx(2.5)


def test_cached_tokens_cost_nothing_on_gpu_and_load_time_on_cpu() -> None:
    """A GPU hit removes prefill; on a CPU-heavy engine part of the hit is charged at 200k tokens/s."""
    assert prefill_s(20_000, 19_800, 0.0, MODEL) == pytest.approx(200 * 125e-6)
    cpu_heavy = engine(cpu=1_200_000)  # write-through: 800k of its 1.2M distinct tokens are CPU-only
    assert cpu_share(cpu_heavy) == pytest.approx(2 / 3)
    assert estimate_ttft_s(cpu_heavy, 20_000, 20_000, MODEL) == pytest.approx(20_000 * (2 / 3) / 200_000)
    assert cpu_share(engine(cpu=300_000)) == 0.0  # a CPU tier no larger than the GPU's adds nothing


def test_a_waiting_request_strictly_raises_the_estimate_below_the_batch_limit() -> None:
    """While in-flight stays under the batch slots, each engine-reported waiting request adds wait."""
    one, two = (estimate_ttft_s(engine(waiting=w), 100, 0, MODEL) for w in (1, 2))
    assert two > one


def test_queue_counts_the_larger_of_engine_waiting_and_in_flight_beyond_the_batch() -> None:
    """Both views of one queue are not added: the larger wins."""
    assert queued_requests(engine(waiting=3, in_flight=300), MODEL) == 300 - 256
    assert queued_requests(engine(waiting=50, in_flight=300), MODEL) == 50
    assert queued_requests(engine(in_flight=10), MODEL) == 0
    assert queue_wait_s(engine(in_flight=10), MODEL) == pytest.approx(10 * 0.002)


def test_matched_tokens_are_clamped_to_the_prompt() -> None:
    """A match larger than the prompt (or negative) never makes prefill negative (or larger)."""
    assert prefill_s(100, 500, 0.0, MODEL) == 0.0
    assert prefill_s(100, -5, 0.0, MODEL) == pytest.approx(100 * 125e-6)


loads = st.builds(lambda w, f, r: (w, f, r), st.integers(0, 400), st.integers(0, 400), st.integers(0, 300))


@settings(max_examples=100, deadline=None)
@given(first=loads, extra=st.integers(1, 100), tokens=st.integers(1, 50_000), matched=st.integers(0, 50_000))
def test_estimate_grows_with_queue_and_falls_with_cache(first: tuple[int, int, int], extra: int,
                                                       tokens: int, matched: int) -> None:
    """More waiting or in-flight requests never lower the estimate; more cached tokens never raise it."""
    waiting, in_flight, running = first
    base = engine(waiting=waiting, in_flight=in_flight, running=running)
    estimate = estimate_ttft_s(base, tokens, matched, MODEL)
    for busier in (engine(waiting=waiting + extra, in_flight=in_flight, running=running),
                   engine(waiting=waiting, in_flight=in_flight + extra, running=running)):
        assert estimate_ttft_s(busier, tokens, matched, MODEL) >= estimate
    assert estimate_ttft_s(base, tokens, matched + extra, MODEL) <= estimate


@settings(max_examples=100, deadline=None)
@given(
    states=st.lists(st.tuples(loads, st.integers(0, 40), st.sampled_from([0, 920_000])),
                    min_size=1, max_size=8),
    tokens=st.integers(1, 30_000),
    prefer=st.one_of(st.none(), st.integers(0, 8)),
)
def test_cheapest_is_the_argmin_of_the_estimate(states: list, tokens: int, prefer: int | None) -> None:
    """The inlined hot-path argmin picks the engine `estimate_ttft_s` ranks first (ties: the
    preferred engine, then the smallest id)."""
    pool, matched = [], {}
    for i, ((waiting, in_flight, running), blocks, cpu) in enumerate(states):
        pool.append(EngineState(id=f"e{i}", gpu_cache_tokens=400_000, cpu_cache_tokens=cpu,
                                waiting=waiting, in_flight=in_flight, running=running))
        matched[f"e{i}"] = blocks
    preferred = None if prefer is None else f"e{prefer}"

    def rank(e: EngineState) -> tuple[float, bool, str]:
        return estimate_ttft_s(e, tokens, min(matched[e.id] * 64, tokens), MODEL), e.id != preferred, e.id

    expected = min(pool, key=rank)
    assert cheapest(pool, tokens, matched, 64, MODEL, preferred) is expected


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("prefill_s_per_token", -1.0, "finite number >= 0"),
        ("cpu_load_s_per_token", float("nan"), "finite number >= 0"),
        ("queued_request_s", "fast", "finite number >= 0"),
        ("running_request_s", True, "finite number >= 0"),
        ("max_running", 0, "integer >= 1"),
        ("max_running", 2.5, "integer >= 1"),
    ],
)
def test_invalid_cost_parameters_name_the_param_and_value(field: str, value: object, allowed: str) -> None:
    """Each bad cost parameter raises SettingsError naming policy.params.<field>, the value and the rule."""
    with pytest.raises(SettingsError, match=allowed) as caught:
        CostModel(**{field: value})
    assert caught.value.field_name == f"policy.params.{field}"
    assert repr(value) in str(caught.value)
