"""The KV-events benchmark reads labelled samples (the router's predictions per engine, the
engines' hits per tier without double counting) and writes router settings this router accepts,
with the capacity it is told; the plan's errors name the field."""

from __future__ import annotations

import pytest

from benchmarks.kv_events import scrape
from benchmarks.kv_events.cluster import engine_host, knows_scoring, router_settings
from benchmarks.kv_events.plan import KvPlan, PlanError
from local.procs import BenchError
from router.settings import RouterSettings

_ROUTER = """# HELP llmstack_router_kv_predicted_tokens_total x
# TYPE llmstack_router_kv_predicted_tokens_total counter
llmstack_router_kv_predicted_tokens_total{engine="http://127.0.0.2:1",tier="gpu",mode="events"} 100.0
llmstack_router_kv_predicted_tokens_total{engine="http://127.0.0.2:1",tier="cpu",mode="events"} 20.0
llmstack_router_kv_predicted_tokens_total{engine="http://127.0.0.3:1",tier="gpu",mode="approximate"} 7.0
llmstack_router_kv_predicted_tokens_total_created{engine="http://127.0.0.3:1"} 1.7e9
llmstack_router_routing_decisions_total{policy="prefix",outcome="cache_hit"} 4.0
llmstack_router_routing_decisions_total{policy="prefix",outcome="new"} 2.0
llmstack_router_kv_events_gaps_total{engine="a",outcome="replayed"} 3.0
llmstack_router_kv_events_gaps_total{engine="b",outcome="replayed"} 1.0
llmstack_router_kv_events_gaps_total{engine="b",outcome="lost"} 1.0
llmstack_router_kv_fallbacks_total{engine="a",reason="syncing"} 2.0
llmstack_router_kv_fallbacks_total{engine="b",reason="syncing"} 1.0
"""


def test_predictions_sum_over_tiers_and_modes_per_engine_and_read_none_when_absent() -> None:
    assert scrape.predicted_by_engine(_ROUTER) == {"http://127.0.0.2:1": 120.0, "http://127.0.0.3:1": 7.0}
    assert scrape.predicted_by_engine("llmstack_router_in_flight_requests 1\n") is None
    assert scrape.decisions(_ROUTER) == 6.0
    assert scrape.gaps(_ROUTER) == {"replayed": 4.0, "lost": 1.0}
    assert scrape.fallbacks(_ROUTER) == {"syncing": 3.0}


def test_engine_hits_add_the_offload_tier_once_preferring_vllms_own_counter() -> None:
    emulator = ('vllm:prefix_cache_queries_total{model_name="m"} 1000\n'
                'vllm:prefix_cache_hits_total{model_name="m"} 600\n'
                'lmcache:num_hit_tokens_total{model_name="m"} 100\n')
    assert scrape.engine_cache(emulator) == (1000.0, 700.0)
    vllm = emulator + 'vllm:external_prefix_cache_hits_total{model_name="m",engine="0"} 150\n'
    assert scrape.engine_cache(vllm) == (1000.0, 750.0)


def test_settings_tell_the_capacity_and_the_router_accepts_them() -> None:
    plan = KvPlan.quick()
    engines = [f"http://{engine_host(i)}:8000" for i in range(plan.engines)]
    scoring = knows_scoring()
    doubled = router_settings(plan, "approximate", engines, 7000, capacity_factor=2.0, scoring=scoring)
    built = RouterSettings.from_dict(doubled)
    assert [e.gpu_cache_tokens for e in built.engines] == [2 * plan.gpu_cache_tokens] * plan.engines
    assert (built.kv_events.port, built.kv_events.replay_port) == (7000, 7001)
    if knows_scoring():
        RouterSettings.from_dict(router_settings(plan, "events", engines, 7000, scoring=True))
    else:
        assert not built.kv_events.enabled  # today's router: no subscription
        with pytest.raises(BenchError, match="kv_events.scoring"):
            router_settings(plan, "events", engines, 7000, scoring=False)


def test_plan_errors_name_the_field_and_the_rule() -> None:
    with pytest.raises(PlanError, match=r"'engines' must be in 2\.\.8 .*\(got 1\)"):
        KvPlan(engines=1)
    with pytest.raises(PlanError, match=r"'drop_rate' must be in \(0, 1\).*\(got 1\.0\)"):
        KvPlan(drop_rate=1.0)
    assert KvPlan.quick().restart_window_s == pytest.approx(2.0)
