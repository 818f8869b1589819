"""The router's /metrics: prometheus-client's exposition, read back with prometheus-client's own
parser; router-prefixed names, figures that add up, and engines' NaN / +Inf carried safely."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

import contracts as c
from contracts import PATH_CHAT
from router.settings import Limits
from tests.router.fake_engine import CLOSE_MID, FakeEngine
from tests.router.harness import json_session, run, running, settings_for, until


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample values by name and sorted labels, parsed by prometheus-client (raises on bad text)."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def test_exposition_parses_and_counts_requests_decisions_health_and_streams() -> None:
    """After traffic, every router metric is present, valid, prefixed, and the counts match."""
    async def body() -> None:
        engine = FakeEngine(chunks=3)
        await engine.start()
        no_move = settings_for([engine.url], limits=Limits(max_migrations=0))  # the broken stream ends
        async with running(no_move) as (_, url), json_session() as s:
            chat = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
            for stream in (False, True, True):
                async with s.post(url + PATH_CHAT, json={**chat, "stream": stream}) as r:
                    await r.read()
            engine.mode = CLOSE_MID
            async with s.post(url + PATH_CHAT, json={**chat, "stream": True}) as r:
                await r.read()
            async with s.get(url + "/metrics") as r:
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                found = samples(await r.text())
        e = engine.url
        assert all(name.startswith(c.ROUTER_PREFIX) for name in found)
        requests = found[c.ROUTER_REQUESTS]
        assert requests[_key(model="m", engine=e, status="200")] == 3
        assert requests[_key(model="m", engine=e, status="502")] == 1
        assert found[c.ROUTER_DECISIONS] == {_key(policy="test_round_robin", outcome="new"): 4}
        assert found[c.ROUTER_ENGINE_HEALTHY] == {_key(engine=e): 1}
        assert found[c.ROUTER_IN_FLIGHT] == {_key(engine=e): 0}
        assert found[c.ROUTER_STREAM_ERRORS] == {_key(engine=e): 1}
        assert found[c.ROUTER_TTFT + "_count"][_key(model="m", engine=e)] == 4
        # 3 events + [DONE] per full stream: 1 to 3 gaps each, as the engine's writes coalesce in reads
        assert 2 <= found[c.ROUTER_ITL + "_count"][_key(model="m", engine=e)] <= 2 * 3
        await engine.stop()
    run(body())


def test_nan_and_infinite_engine_figures_never_break_metrics_or_the_scraper() -> None:
    """An engine exporting NaN / +Inf: the router's /metrics still parses and carries them,
    its load reads 0 for the non-finite counts, and the scrape task is never restarted."""
    async def body() -> None:
        engine = FakeEngine()
        engine.metrics_text = ('vllm:num_requests_waiting{model_name="m"} NaN\n'
                               'vllm:num_requests_running{model_name="m"} +Inf\n'
                               'vllm:kv_cache_usage_perc{model_name="m"} NaN\n'
                               'vllm:prefix_cache_queries_total{model_name="m"} +Inf\n'
                               'vllm:prefix_cache_hits_total{model_name="m"} -Inf\n')
        await engine.start()
        async with running(settings_for([engine.url])) as (app, url), json_session() as s:
            await until(lambda: engine.url in app.scraper.loads)
            await until(lambda: engine.metrics_scrapes >= 3)
            async with s.get(url + "/metrics") as r:
                found = samples(await r.text())
            state = app.registry.states[engine.url]
            assert (state.waiting, state.running) == (0, 0)
            assert app.supervisor.restarts == {"health": 0, "deadlines": 0, "metrics_scrape": 0}
        kv = found[c.ROUTER_ENGINE_KV_USAGE][_key(engine=engine.url)]
        assert kv != kv  # NaN
        assert found[c.ROUTER_ENGINE_PREFIX_QUERIES][_key(engine=engine.url)] == float("inf")
        await engine.stop()
    run(body())
