"""Active health checks, served models and engine load scraping, against live fake engines."""

from __future__ import annotations

import asyncio
import time

import orjson

from contracts import PATH_CHAT
from router.settings import HealthSettings
from tests.router.fake_engine import FakeEngine
from tests.router.harness import json_session, run, running, settings_for, until

FAST = HealthSettings(interval_s=0.2, timeout_s=0.3, unhealthy_after=3)
EVICTION_BOUND_S = 2.0  # unhealthy_after × max(interval_s, timeout_s) + interval_s = 1.1 s, with slack


def test_engine_that_stops_answering_leaves_within_its_bound_and_returns() -> None:
    """A hung /health evicts the engine within unhealthy_after × max(interval, timeout) +
    interval; answering again restores it."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        settings = settings_for([engine.url], health=FAST)
        async with running(settings) as (app, _):
            state = app.registry.states[engine.url]
            await until(lambda: app.health._oks.get(engine.url, 0) >= 1)
            engine.hang_health = True
            started = time.monotonic()
            await until(lambda: not state.healthy, timeout=EVICTION_BOUND_S)
            evicted_after = time.monotonic() - started
            engine.hang_health = False
            await until(lambda: state.healthy, timeout=EVICTION_BOUND_S)
        assert evicted_after <= EVICTION_BOUND_S
        await engine.stop()
    run(body())


def test_busy_engine_stays_in_rotation_with_the_default_health_settings() -> None:
    """An engine whose event loop is busy (a /health answered in 1.5 s) is not ejected by the
    default checks (3 s timeout, 3 failures): moving its load would only spread the stress
    (issue 18 defect 5, issue 21 item 12). The old defaults (0.5 s, 2 failures) ejected it in ~1.5 s."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url], health=HealthSettings())) as (app, _):
            state = app.registry.states[engine.url]
            await until(lambda: app.health._oks.get(engine.url, 0) >= 1)
            engine.health_delay = 1.5
            seen_out = False
            for _ in range(40):  # 4 s: more than two of the old ejections
                await asyncio.sleep(0.1)
                seen_out = seen_out or not state.healthy
            assert not seen_out
        await engine.stop()
    run(body())


def test_engine_answering_503_leaves_and_traffic_goes_elsewhere() -> None:
    """An engine whose /health fails takes no requests until it recovers."""
    async def body() -> None:
        sick, well = FakeEngine(name="sick"), FakeEngine(name="well")
        for engine in (sick, well):
            await engine.start()
        async with running(settings_for([sick.url, well.url])) as (app, url), json_session() as s:
            sick.healthy = False
            await until(lambda: not app.registry.states[sick.url].healthy)
            for _ in range(4):
                chat = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
                async with s.post(url + PATH_CHAT, json=chat) as r:
                    assert (await r.json())["engine"] == "well"
            sick.healthy = True
            await until(lambda: app.registry.states[sick.url].healthy)
        assert sick.requests == 0 and well.requests == 4
        for engine in (sick, well):
            await engine.stop()
    run(body())


def test_models_are_the_union_of_engines_and_route_by_model() -> None:
    """/v1/models lists what the engines serve, in rotation or not; a model goes only to its
    engines; others 404; a model whose engines are all out is held until one is back."""
    async def body() -> None:
        a, b = FakeEngine(model="alpha", name="a"), FakeEngine(model="beta", name="b")
        for engine in (a, b):
            await engine.start()
        async with running(settings_for([a.url, b.url], models=())) as (app, url), \
                json_session() as s:
            async def models() -> list[str]:
                async with s.get(url + "/v1/models") as r:
                    return [m["id"] for m in orjson.loads(await r.read())["data"]]
            await until(lambda: len(app.registry.served_models()) == 2)
            assert await models() == ["alpha", "beta"]
            for model, engine in [("beta", "b"), ("alpha", "a"), ("beta", "b")]:
                body = {"model": model, "messages": [{"role": "user"}]}
                async with s.post(url + PATH_CHAT, json=body) as r:
                    assert (await r.json())["engine"] == engine
            async with s.post(url + PATH_CHAT, json={"model": "gamma", "messages": [{"role": "user"}]}) as r:
                assert r.status == 404
            b.healthy = False
            await until(lambda: not app.registry.states[b.url].healthy)
            assert await models() == ["alpha", "beta"]
            beta = {"model": "beta", "messages": [{"role": "user"}]}
            held = asyncio.ensure_future(s.post(url + PATH_CHAT, json=beta))
            await until(lambda: app.held() == 1)
            b.healthy = True
            async with await held as r:
                assert r.status == 200 and (await r.json())["engine"] == "b"
            assert app.held() == 0
        for engine in (a, b):
            await engine.stop()
    run(body())


def test_engine_reported_queue_is_scraped_into_live_state() -> None:
    """`vllm:num_requests_waiting` / running from the engine's /metrics reach its EngineState."""
    async def body() -> None:
        engine = FakeEngine()
        engine.waiting = 7
        await engine.start()
        async with running(settings_for([engine.url])) as (app, _):
            state = app.registry.states[engine.url]
            await until(lambda: state.waiting == 7 and state.running == 1)
            engine.waiting = 0
            await until(lambda: state.waiting == 0)
        await engine.stop()
    run(body())


def test_engine_reported_kv_usage_is_scraped_clamped_and_nan_reads_zero() -> None:
    """`vllm:kv_cache_usage_perc` reaches the EngineState as 0..1: above 1 reads 1 (label sets
    summed), NaN or absent reads 0, so a broken gauge never makes an engine look KV-bound."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url])) as (app, _):
            state = app.registry.states[engine.url]
            for text, expected in (("vllm:kv_cache_usage_perc 0.83\n", 0.83),
                                   ("vllm:kv_cache_usage_perc 1.7\n", 1.0),
                                   ("vllm:kv_cache_usage_perc NaN\n", 0.0),
                                   ("vllm:kv_cache_usage_perc 0.4\n", 0.4),
                                   ("vllm:num_requests_waiting 0\n", 0.0)):
                engine.metrics_text = text
                await until(lambda expected=expected: state.kv_usage == expected)
        await engine.stop()
    run(body())
