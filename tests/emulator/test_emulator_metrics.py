"""Prometheus exposition: contract names, model label, cumulative vLLM-like histograms."""

from __future__ import annotations

from emulator_promtext import parse, value

import contracts
from emulator.metrics import TTFT_BUCKETS, EngineMetrics, Gauges, Histogram


def _render(metrics: EngineMetrics) -> str:
    return metrics.render(Gauges(running=3, waiting=2, kv_usage=0.25), queried_tokens=1000, hit_tokens=640,
                          cpu_hit_tokens=200)


def test_every_engine_metric_of_the_contract_is_exported_with_its_type():
    """All current vLLM names from contracts appear, typed, with the model_name label."""
    types, samples = parse(_render(EngineMetrics("m/x")))
    expected = {
        contracts.VLLM_RUNNING: "gauge", contracts.VLLM_WAITING: "gauge", contracts.VLLM_KV_USAGE: "gauge",
        contracts.VLLM_PREFIX_QUERIES: "counter", contracts.VLLM_PREFIX_HITS: "counter",
        contracts.VLLM_PROMPT_TOKENS: "counter", contracts.VLLM_GENERATION_TOKENS: "counter",
        contracts.VLLM_TTFT: "histogram", contracts.VLLM_ITL: "histogram", contracts.VLLM_E2E: "histogram",
        contracts.VLLM_QUEUE_TIME: "histogram",
        contracts.LMCACHE_REQUESTED_TOKENS: "counter", contracts.LMCACHE_HIT_TOKENS: "counter",
        contracts.VLLM_EXTERNAL_PREFIX_QUERIES: "counter", contracts.VLLM_EXTERNAL_PREFIX_HITS: "counter",
    }
    assert types == expected
    assert {lab[contracts.ENGINE_MODEL_LABEL] for _, lab, _ in samples} == {"m/x"}


def test_gauges_and_counters_carry_the_given_values():
    """Scrape values equal the scheduler state and cache counters passed in."""
    metrics = EngineMetrics("m")
    metrics.prompt_tokens, metrics.generation_tokens = 1000, 7
    _, samples = parse(_render(metrics))
    assert value(samples, contracts.VLLM_RUNNING) == 3
    assert value(samples, contracts.VLLM_WAITING) == 2
    assert value(samples, contracts.VLLM_KV_USAGE) == 0.25
    assert value(samples, contracts.VLLM_PREFIX_QUERIES) == 1000
    assert value(samples, contracts.VLLM_PREFIX_HITS) == 640
    assert value(samples, contracts.VLLM_GENERATION_TOKENS) == 7
    assert value(samples, contracts.LMCACHE_REQUESTED_TOKENS) == 360  # what the GPU tier missed
    assert value(samples, contracts.LMCACHE_HIT_TOKENS) == 200


def test_histogram_buckets_are_cumulative_and_le_inclusive():
    """A value equal to a bound lands in that bucket; +Inf equals the count; sum is exact."""
    hist = Histogram((0.1, 1.0))
    for v in (0.1, 0.5, 3.0):
        hist.observe(v)
    lines = hist.lines("h", 'model_name="m"')
    assert lines[:3] == ['h_bucket{model_name="m",le="0.1"} 1', 'h_bucket{model_name="m",le="1.0"} 2',
                         'h_bucket{model_name="m",le="+Inf"} 3']
    assert lines[3:] == ['h_sum{model_name="m"} 3.6', 'h_count{model_name="m"} 3']


def test_ttft_histogram_renders_every_vllm_bucket():
    """The TTFT histogram exposes one bucket per vLLM bound plus +Inf."""
    metrics = EngineMetrics("m")
    metrics.ttft.observe(0.3)
    _, samples = parse(_render(metrics))
    buckets = [s for s in samples if s[0] == contracts.VLLM_TTFT + "_bucket"]
    assert len(buckets) == len(TTFT_BUCKETS) + 1
    assert value(samples, contracts.VLLM_TTFT + "_bucket", le="0.25") == 0
    assert value(samples, contracts.VLLM_TTFT + "_bucket", le="0.5") == 1


def test_model_name_is_escaped():
    """A quote in the model name is escaped, keeping the exposition parseable."""
    _, samples = parse(_render(EngineMetrics('we"ird')))
    assert samples[0][1][contracts.ENGINE_MODEL_LABEL] == 'we\\"ird'
