"""The TTFT estimate: queue (KV-limited admission included) plus uncached prefill and eviction, and
the hot-path argmin that inlines it."""

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
    eviction_s,
    kv_bound,
    prefill_s,
    queue_wait_s,
    queued_requests,
)
from router.settings import SettingsError

MODEL = CostModel()


def engine(name: str = "e", *, kv: float = 0.0, gpu: int = 400_000, **load: int) -> EngineState:
    return EngineState(id=name, gpu_cache_tokens=gpu, cpu_cache_tokens=load.pop("cpu", 0), kv_usage=kv,
                       **load)


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


def test_an_engine_is_kv_bound_when_its_free_gpu_tokens_cannot_hold_the_prompt() -> None:
    """16k GPU tokens at 70 % usage leave ~4.9k free: a 4k prompt fits, a 6k prompt does not;
    an engine that reports no usage (0) is never KV-bound for a prompt it can hold at all."""
    full = engine(gpu=16_384, kv=0.7, running=2)
    assert not kv_bound(full, 4_000) and kv_bound(full, 6_000)
    assert not kv_bound(engine(gpu=16_384), 16_000)


def test_a_kv_bound_queue_drains_one_request_per_finishing_one() -> None:
    """KV-bound with R running: the first to finish frees room after kv_hold_s / (R + 1), each
    request ahead waits for one more, kv_hold_s / R (defaults: 1.2 s, 2 running, 1 waiting)."""
    bound = engine(gpu=16_384, kv=0.7, running=2, waiting=1, in_flight=3)
    steps = 3 * MODEL.running_request_s
    assert queue_wait_s(bound, MODEL, 6_000) == pytest.approx(1.2 / 3 + 1.2 / 2 + steps)
    assert queue_wait_s(bound, MODEL, 4_000) == pytest.approx(MODEL.queued_request_s + steps)  # fits


def test_a_kv_bound_home_loses_to_an_idle_engine_only_once_its_queue_costs_more_than_a_recompute() -> None:
    """The reason for the term: a 6k-token conversation cached on an engine whose KV is full is
    worth keeping while the wait (one finishing request) is below the 0.75 s of recomputing it
    elsewhere; with two waiting ahead it is not. Without KV usage the same queue looked like 0.1 s."""
    def home(waiting: int, kv: float) -> EngineState:
        return engine("home", gpu=16_384, kv=kv, running=2, waiting=waiting, in_flight=2 + waiting)
    idle = engine("idle", gpu=16_384)
    for waiting, kv, expected in ((0, 0.7, "home"), (2, 0.7, "idle"), (2, 0.0, "home")):
        pool = [home(waiting, kv), idle]
        assert cheapest(pool, 6_000, {"home": 6_000 // 64}, 64, MODEL).id == expected


def test_tokens_pushed_out_of_a_full_cache_are_charged_as_recompute() -> None:
    """Uncached tokens beyond the engine's free room evict others' cache: charged at prefill cost;
    with room enough, or room not known, nothing is charged."""
    assert eviction_s(6_000, 1_000, 2_000, MODEL) == pytest.approx(3_000 * 125e-6)
    assert eviction_s(6_000, 1_000, 10_000, MODEL) == 0.0
    assert eviction_s(6_000, 1_000, None, MODEL) == 0.0
    assert eviction_s(6_000, 9_000, -50, MODEL) == 0.0  # a full match computes nothing


loads = st.builds(lambda w, f, r: (w, f, r), st.integers(0, 400), st.integers(0, 400), st.integers(0, 300))


usage = st.floats(0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(first=loads, extra=st.integers(1, 100), tokens=st.integers(1, 50_000), matched=st.integers(0, 50_000),
       kv=usage, fuller=st.floats(0.0, 1.0), room=st.one_of(st.none(), st.integers(-100, 60_000)))
def test_estimate_grows_with_queue_and_kv_usage_and_falls_with_cache(
        first: tuple[int, int, int], extra: int, tokens: int, matched: int, kv: float, fuller: float,
        room: int | None) -> None:
    """More waiting or in-flight requests, or a fuller KV cache, never lower the estimate; more
    cached tokens never raise it."""
    waiting, in_flight, running = first
    base = engine(waiting=waiting, in_flight=in_flight, running=running, kv=kv, gpu=60_000)
    estimate = estimate_ttft_s(base, tokens, matched, MODEL, room)
    for busier in (engine(waiting=waiting + extra, in_flight=in_flight, running=running, kv=kv, gpu=60_000),
                   engine(waiting=waiting, in_flight=in_flight + extra, running=running, kv=kv, gpu=60_000),
                   engine(waiting=waiting, in_flight=in_flight, running=running, gpu=60_000,
                          kv=kv + (1.0 - kv) * fuller)):
        assert estimate_ttft_s(busier, tokens, matched, MODEL, room) >= estimate
    assert estimate_ttft_s(base, tokens, matched + extra, MODEL, room) <= estimate


@settings(max_examples=200, deadline=None)
@given(
    states=st.lists(st.tuples(loads, st.integers(0, 40), st.sampled_from([0, 920_000]), usage,
                              st.integers(-2, 600)),
                    min_size=1, max_size=8),
    tokens=st.integers(1, 30_000),
    prefer=st.one_of(st.none(), st.integers(0, 8)),
    with_room=st.booleans(),
)
def test_cheapest_is_the_argmin_of_the_estimate(states: list, tokens: int, prefer: int | None,
                                                with_room: bool) -> None:
    """The inlined hot-path argmin picks the engine `estimate_ttft_s` ranks first (ties: the
    preferred engine, then the smallest id), KV usage and cache room (in blocks) included."""
    pool, matched, rooms = [], {}, {}
    for i, ((waiting, in_flight, running), blocks, cpu, kv, room) in enumerate(states):
        pool.append(EngineState(id=f"e{i}", gpu_cache_tokens=40_000, cpu_cache_tokens=cpu,
                                waiting=waiting, in_flight=in_flight, running=running, kv_usage=kv))
        matched[f"e{i}"], rooms[f"e{i}"] = blocks, room
    preferred = None if prefer is None else f"e{prefer}"
    room_of = rooms if with_room else None

    def rank(e: EngineState) -> tuple[float, bool, str]:
        estimate = estimate_ttft_s(e, tokens, min(matched[e.id] * 64, tokens), MODEL,
                                   rooms[e.id] * 64 if with_room else None)
        return estimate, e.id != preferred, e.id

    expected = min(pool, key=rank)
    assert cheapest(pool, tokens, matched, 64, MODEL, preferred, room_of) is expected


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("prefill_s_per_token", -1.0, "finite number >= 0"),
        ("cpu_load_s_per_token", float("nan"), "finite number >= 0"),
        ("queued_request_s", "fast", "finite number >= 0"),
        ("running_request_s", True, "finite number >= 0"),
        ("max_running", 0, "integer >= 1"),
        ("max_running", 2.5, "integer >= 1"),
        ("kv_hold_s", -0.5, "finite number >= 0"),
    ],
)
def test_invalid_cost_parameters_name_the_param_and_value(field: str, value: object, allowed: str) -> None:
    """Each bad cost parameter raises SettingsError naming policy.params.<field>, the value and the rule."""
    with pytest.raises(SettingsError, match=allowed) as caught:
        CostModel(**{field: value})
    assert caught.value.field_name == f"policy.params.{field}"
    assert repr(value) in str(caught.value)
