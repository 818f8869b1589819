"""The engines' LoRA state from `vllm:lora_requests_info`, read as vLLM 0.33 exports it, and
scraped into the engines' live state over loopback."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from router.shell.engine_metrics import LoraInfo, parse_load, parse_lora_info
from tests.router.fake_engine import FakeEngine
from tests.router.harness import run, running, settings_for, until


def vllm_lora_page(*states: tuple[str, str]) -> str:
    """A `/metrics` page holding `vllm:lora_requests_info` as vLLM 0.33's PrometheusStatLogger
    writes it (vllm/v1/metrics/loggers.py): a Gauge labelled max_lora, waiting_lora_adapters,
    running_lora_adapters, set to the time of each (running, waiting) state in turn (vLLM calls
    `set_to_current_time()`: here explicit, one second apart), so older label sets remain with
    older times."""
    registry = CollectorRegistry()
    gauge = Gauge("vllm:lora_requests_info", "Running stats on lora requests.",
                  labelnames=["max_lora", "waiting_lora_adapters", "running_lora_adapters"],
                  registry=registry)
    start = time.time()
    for i, (running_, waiting) in enumerate(states):
        gauge.labels(max_lora=4, waiting_lora_adapters=waiting, running_lora_adapters=running_).set(start + i)
    return generate_latest(registry).decode()


def test_the_newest_series_is_the_engines_lora_state() -> None:
    """Of several label sets the newest (largest time) is read: running and waiting adapters as
    sets, the slots from max_lora."""
    page = vllm_lora_page(("sql", ""), ("sql,legal", "support"))
    expected = LoraInfo(running=frozenset({"sql", "legal"}), waiting=frozenset({"support"}), max_loras=4)
    assert parse_lora_info(page) == expected
    assert parse_lora_info(vllm_lora_page(("sql,legal", "support"), ("", ""))) == LoraInfo(max_loras=4)


def test_an_engine_without_lora_reports_none() -> None:
    """No series (LoRA off), or only malformed ones: None, and the load figures still parse."""
    plain = 'vllm:num_requests_running{model_name="m"} 3\n'
    assert parse_lora_info(plain) is None and parse_load(plain).lora is None
    assert parse_load(plain).running == 3
    assert parse_lora_info('vllm:lora_requests_info{max_lora="4"} nan-ish\n') is None


def test_the_scraper_writes_each_engines_lora_state_into_its_live_state() -> None:
    """Over loopback: an engine exporting the gauge has its running/waiting adapters and slots
    in its `EngineState` after a scrape; one exporting none has empty state."""
    async def body() -> None:
        lora, plain = FakeEngine(name="a"), FakeEngine(name="b")
        lora.metrics_text = vllm_lora_page(("sql", ""), ("sql,legal", "support"))
        for engine in (lora, plain):
            await engine.start()
        async with running(settings_for([lora.url, plain.url])) as (app, _):
            state, other = app.registry.states[lora.url], app.registry.states[plain.url]
            await until(lambda: state.max_loras == 4 and plain.metrics_scrapes > 0)
            assert state.lora_running == {"sql", "legal"} and state.lora_waiting == {"support"}
            assert other.max_loras == 0 and not other.lora_running
        for engine in (lora, plain):
            await engine.stop()
    run(body())
