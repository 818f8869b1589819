"""The demo's capacity arithmetic: affinity fits, round-robin thrashes, the docstring's figures."""

from __future__ import annotations

import dataclasses

import pytest

from local.demo import plan as demo_plan
from local.demo.errors import DemoError
from local.demo.plan import DemoPlan, capacity, cold_capacity_qps, emulator_flags, user_tokens


def test_default_capacity_matches_the_documented_arithmetic() -> None:
    """The module docstring's table is what `capacity` computes for the defaults."""
    cap = capacity(DemoPlan())
    assert (cap.user_tokens, cap.affinity_tokens, cap.round_robin_tokens) == (14_084, 57_336, 212_260)
    assert (cap.gpu_tokens, cap.cpu_tokens, cap.total_tokens) == (57_336, 57_336, 114_672)
    for figure in ("14,084", "57,336", "212,260", "114,672"):
        assert figure in demo_plan.__doc__


@pytest.mark.parametrize("plan", [DemoPlan(), DemoPlan.quick()], ids=["default", "quick"])
def test_affinity_fits_and_round_robin_thrashes(plan: DemoPlan) -> None:
    """Each engine holds what affinity gives it, and round-robin needs >= thrash_margin x that."""
    cap = capacity(plan)
    assert cap.affinity_tokens <= cap.total_tokens
    assert cap.round_robin_tokens >= plan.thrash_margin * cap.total_tokens
    assert cap.gpu_tokens >= demo_plan.longest_prompt_tokens(plan)  # the engine can run the last round


@pytest.mark.parametrize("plan", [DemoPlan(), DemoPlan.quick()], ids=["default", "quick"])
def test_user_count_is_not_a_multiple_of_the_engines(plan: DemoPlan) -> None:
    """Round-robin must not pin users to engines by accident (users % engines != 0)."""
    assert plan.users % plan.engines != 0


def test_top_qps_overloads_round_robin_only() -> None:
    """The sweep's top QPS is above what the engines prefill with nothing cached."""
    plan = DemoPlan()
    assert plan.qps[-1] > cold_capacity_qps(plan) > plan.qps[0]


def test_too_few_users_to_thrash_is_rejected() -> None:
    """A workload where round-robin would fit too cannot make the demo's point: refused."""
    with pytest.raises(DemoError, match="round-robin needs"):
        DemoPlan(headroom=3.0)


@pytest.mark.parametrize(("change", "field"), [
    ({"qps": (3.0, 1.0), "durations_s": (1.0, 1.0)}, "qps"),
    ({"durations_s": (1.0,)}, "durations_s"),
    ({"policies": ("random",)}, "policies"),
    ({"time_scale": 0.0}, "time_scale"),
    ({"headroom": 0.5}, "headroom"),
    ({"users": 16}, "users"),
])
def test_bad_plans_name_the_field(change: dict, field: str) -> None:
    """Invalid plans fail with the field's name in the message."""
    with pytest.raises(DemoError, match=field):
        dataclasses.replace(DemoPlan(), **change)


def test_user_tokens_counts_history_turns_and_template() -> None:
    """P = history + rounds x (question + answer) + template tokens per message."""
    plan = DemoPlan(system_prompt_tokens=0, history_tokens=100, rounds=2, question_tokens=10,
                    answer_tokens=20, users=41)
    assert user_tokens(plan) == 100 + 2 * 30 + 4 * 5


def test_emulator_flags_carry_the_capacity_and_time_scale() -> None:
    """The engines are started with exactly the computed tiers and the plan's timing."""
    plan = DemoPlan()
    flags = emulator_flags(plan)
    cap = capacity(plan)
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    assert pairs == {"--gpu-cache-tokens": str(cap.gpu_tokens), "--cpu-cache-tokens": str(cap.cpu_tokens),
                     "--time-scale": "0.5", "--max-num-batched-tokens": "2048"}
