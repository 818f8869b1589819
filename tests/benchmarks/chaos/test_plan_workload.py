"""The chaos plan's validation and scenario order; the load's conversations are deterministic."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks.chaos.plan import ORDER, SCALE_FROM_ZERO, ChaosPlan, PlanError, scenarios
from benchmarks.chaos.workload import Conversation
from router.settings import RouterSettings


def test_scenarios_run_in_the_issue_order_from_zero_engines():
    """Scale from zero first (no engine, the holding patience), then the rest from two engines."""
    plan = ChaosPlan.quick()
    got = scenarios(plan)
    assert tuple(s.name for s in got) == ORDER and len(ORDER) == 7
    assert got[0].name == SCALE_FROM_ZERO and got[0].engines_before == 0
    assert got[0].read_timeout_s == plan.hold_read_timeout_s
    assert {s.read_timeout_s for s in got[1:]} == {plan.read_timeout_s}
    assert [s.engines_before for s in got[1:]] == [1] + [plan.scale_in_to] * 5


@pytest.mark.parametrize(("field", "value"), [
    ("users", 0), ("stall_after_tokens", 24), ("engine_shutdown_timeout_s", 0), ("soak_s", 0),
    ("queue_max_wait_s", 20.0), ("scale_in_to", 1), ("deadline_s", -1.0), ("read_timeout_s", 2.0),
])
def test_bad_plan_values_name_the_field_and_value(field, value):
    with pytest.raises(PlanError, match=rf"'{field}' .*\(got {value!r}\)"):
        dataclasses.replace(ChaosPlan.quick(), **{field: value})


def test_quick_and_full_plans_are_valid_and_drains_outlast_a_request():
    """Engines' --shutdown-timeout and the routers' drain exceed the longest request by far."""
    for plan in (ChaosPlan.quick(), ChaosPlan()):
        assert plan.engine_shutdown_timeout_s > 5 * plan.request_s
        assert plan.router_drain_s > plan.engine_shutdown_timeout_s


def test_router_deadlines_are_the_rendered_ones_on_the_run_clock():
    """47 s / 19 s / 1,362 s for the 8B reference (stack_components.deadlines) times the policy
    clock; ejection windows likewise; both are router settings the router accepts."""
    plan = ChaosPlan()
    scale = plan.wake.time_scale
    clock = plan.router_clock
    assert clock["deadlines"]["default"] == {"first_byte_s": round(47 * scale, 3),
                                             "inter_chunk_s": round(19 * scale, 3),
                                             "whole_s": round(1362 * scale, 3)}
    settings = RouterSettings.from_dict({"engines": [{"url": "http://127.0.0.1:1"}], **clock})
    assert settings.ejection.min_out_s == round(30 * scale, 3)
    assert settings.deadlines.for_model("any").first_byte_s < plan.read_timeout_s


def _talk(user: int) -> Conversation:
    return Conversation(user, model="m", prompt_tokens=8, history_rounds=2, max_tokens=4, created=1)


def test_conversations_are_deterministic_unique_and_carry_the_twins_answers():
    """Same user, same requests; ids unique across users and rounds; history = earlier twins."""
    a, b, other = _talk(0), _talk(0), _talk(1)
    first = [a.next_request() for _ in range(4)]
    assert [r.body for r in first] == [b.next_request().body for _ in range(4)]
    ids = [r.rid for r in first] + [other.next_request().rid for _ in range(4)]
    assert len(set(ids)) == len(ids)
    last = first[3].body["messages"]
    assert len(last) == 5 and [m["content"] for m in last if m["role"] == "assistant"] == \
        [first[1].twin.text, first[2].twin.text]
    assert all(r.body["temperature"] == 0 and r.body["max_tokens"] == 4 for r in first)
