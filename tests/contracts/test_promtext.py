"""The shared Prometheus-text reader: sums over label sets, and one counter pair, never mixed."""

from __future__ import annotations

from contracts import (
    VLLM_PREFIX_HITS,
    VLLM_PREFIX_HITS_LEGACY,
    VLLM_PREFIX_QUERIES,
    VLLM_PREFIX_QUERIES_LEGACY,
)
from contracts.promtext import ENGINE_PREFIX_PAIRS, counter_pair, sum_samples
from router.shell.engine_metrics import parse_load


def test_sum_samples_adds_label_sets_and_skips_the_rest() -> None:
    """Label sets add up; comments, unwanted metrics, timestamps and malformed values are handled."""
    text = (
        "# HELP a help with a { brace\n# TYPE a counter\n"
        'a{x="1",y="}"} 2.5\n'
        'a{x="2"} 1 1700000000000\n'
        "a 0.5\n"
        "b 9\n"
        "a{x=\"3\"} not-a-number\n"
        "\n"
    )
    assert sum_samples(text, {"a"}) == {"a": 4.0}
    assert sum_samples(text, {"c"}) == {}


def test_counter_pair_takes_the_first_present_pair_only() -> None:
    """With current and legacy names both present, only the current pair counts."""
    both = {VLLM_PREFIX_QUERIES: 20.0, VLLM_PREFIX_HITS: 5.0,
            VLLM_PREFIX_QUERIES_LEGACY: 10.0, VLLM_PREFIX_HITS_LEGACY: 4.0}
    assert counter_pair(both, ENGINE_PREFIX_PAIRS) == (20.0, 5.0)
    assert counter_pair({VLLM_PREFIX_QUERIES_LEGACY: 10.0}, ENGINE_PREFIX_PAIRS) == (10.0, 0.0)
    assert counter_pair({}, ENGINE_PREFIX_PAIRS) is None


def test_engine_scrape_reads_legacy_prefix_counters() -> None:
    """The router's engine scrape reads an older vLLM's prefix counters and never adds both names."""
    legacy = f"{VLLM_PREFIX_QUERIES_LEGACY} 10\n{VLLM_PREFIX_HITS_LEGACY} 4\n"
    load = parse_load(legacy)
    assert (load.prefix_queries, load.prefix_hits) == (10.0, 4.0)
    load = parse_load(legacy + f"{VLLM_PREFIX_QUERIES} 20\n{VLLM_PREFIX_HITS} 5\n")
    assert (load.prefix_queries, load.prefix_hits) == (20.0, 5.0)
    assert parse_load("vllm:num_requests_running 1\n").prefix_queries is None
