"""Prefix-cache counters read from Prometheus text, current and legacy names, as deltas."""

from __future__ import annotations

from bench.metrics_scrape import PrefixCounters, metrics_url, parse_prefix_counters, run_delta, total
from contracts import (
    ROUTER_ENGINE_PREFIX_HITS,
    ROUTER_ENGINE_PREFIX_QUERIES,
    VLLM_PREFIX_HITS,
    VLLM_PREFIX_HITS_LEGACY,
    VLLM_PREFIX_QUERIES,
    VLLM_PREFIX_QUERIES_LEGACY,
)


def test_current_names_summed_over_label_sets():
    """Every label set of the current counters is summed; comments and other series ignored."""
    text = (
        f"# HELP {VLLM_PREFIX_QUERIES} tokens queried\n# TYPE {VLLM_PREFIX_QUERIES} counter\n"
        f'{VLLM_PREFIX_QUERIES}{{model_name="a",engine="0"}} 100.0\n'
        f'{VLLM_PREFIX_QUERIES}{{model_name="b",engine="0"}} 50\n'
        f'{VLLM_PREFIX_HITS}{{model_name="a",engine="0"}} 60 1700000000000\n'
        'vllm:num_requests_running{model_name="a"} 3\n'
    )
    assert parse_prefix_counters(text) == PrefixCounters(queries=150.0, hits=60.0)


def test_legacy_names_read_when_current_absent_and_never_both():
    """An engine with only legacy names is read through them; with both, only current count."""
    legacy = f"{VLLM_PREFIX_QUERIES_LEGACY} 10\n{VLLM_PREFIX_HITS_LEGACY} 4\n"
    assert parse_prefix_counters(legacy) == PrefixCounters(queries=10, hits=4)
    both = legacy + f"{VLLM_PREFIX_QUERIES} 20\n{VLLM_PREFIX_HITS} 5\n"
    assert parse_prefix_counters(both) == PrefixCounters(queries=20, hits=5)
    assert parse_prefix_counters("llmstack_router_requests_total 5\n") is None


def test_router_mirror_read_when_no_engine_names():
    """A router's /metrics mirrors its engines' counters; they are summed over engines."""
    text = (
        f'{ROUTER_ENGINE_PREFIX_QUERIES}{{engine="http://e0"}} 100\n'
        f'{ROUTER_ENGINE_PREFIX_QUERIES}{{engine="http://e1"}} 300\n'
        f'{ROUTER_ENGINE_PREFIX_HITS}{{engine="http://e0"}} 40\n'
        f'{ROUTER_ENGINE_PREFIX_HITS}{{engine="http://e1"}} 200\n'
    )
    assert parse_prefix_counters(text) == PrefixCounters(queries=400, hits=240)
    direct = text + f"{VLLM_PREFIX_QUERIES} 7\n{VLLM_PREFIX_HITS} 1\n"
    assert parse_prefix_counters(direct) == PrefixCounters(queries=7, hits=1)


def test_run_delta_over_engines_and_restarts():
    """Rates use deltas; a restarted engine counts from zero; one unseen before is left out."""
    before = {"a": PrefixCounters(queries=100, hits=50), "b": PrefixCounters(queries=500, hits=400)}
    after = {"a": PrefixCounters(queries=300, hits=200), "b": PrefixCounters(queries=100, hits=20),
             "c": PrefixCounters(queries=999, hits=999)}
    delta = run_delta(before, after)
    assert delta == PrefixCounters(queries=300, hits=170)
    assert delta.hit_rate == 170 / 300
    assert PrefixCounters().hit_rate is None
    assert total(after).queries == 1399


def test_metrics_url_gets_the_path_only_when_missing():
    """A bare root gets /metrics; a URL with a path is used as given."""
    assert metrics_url("http://e:8000") == "http://e:8000/metrics"
    assert metrics_url("http://e:8000/") == "http://e:8000/metrics"
    assert metrics_url("http://e:9090/custom/metrics") == "http://e:9090/custom/metrics"
