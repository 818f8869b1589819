"""Holding requests over real loopback HTTP: a router with no engine is ready and lists its
models, holds requests (counted in a metric) and serves them when an engine comes; bounds,
deadlines, disconnects, priorities and fairness, each with a clear answer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import orjson
import pytest

from contracts import PATH_CHAT, PATH_HEALTH, PATH_METRICS, PATH_MODELS, ROUTER_HELD, ROUTER_HOLD_OUTCOMES
from router.settings import FileDiscovery, QueueSettings, RouterSettings, SettingsError
from router.shell.app import create_app
from tests.router.fake_engine import FakeEngine
from tests.router.harness import JSON_HEADERS, run, running, settings_for, until


def chat(text: str = "hello") -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def targets(path: Path, *urls: str) -> None:
    """Write a file_sd targets file atomically (as the local scaler does)."""
    tmp = path.with_suffix(".tmp")
    groups = [{"targets": [u.removeprefix("http://") for u in urls], "labels": {"model_name": "m"}}]
    tmp.write_text(json.dumps(groups if urls else []))
    tmp.replace(path)


def no_engines(tmp_path: Path, **queue: object) -> RouterSettings:
    path = tmp_path / "engines.json"
    targets(path)
    return settings_for([], engines=(), file_discovery=FileDiscovery(path=str(path), interval_s=0.05),
                        queue=QueueSettings(**queue))  # type: ignore[arg-type]


async def post(s: aiohttp.ClientSession, url: str, body: dict, headers: dict | None = None
               ) -> tuple[int, dict, dict]:
    sent = {**JSON_HEADERS, **(headers or {})}
    async with s.post(url + PATH_CHAT, data=orjson.dumps(body), headers=sent) as r:
        return r.status, dict(r.headers), orjson.loads(await r.read())


async def metric(s: aiohttp.ClientSession, url: str, name: str, labels: str) -> float | None:
    async with s.get(url + PATH_METRICS) as r:
        text = (await r.read()).decode()
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_a_router_with_no_engine_is_ready_lists_its_models_and_serves_when_one_comes(tmp_path: Path) -> None:
    """Scale from zero at the router: /health 200 and /v1/models with zero engines, a request
    held (and counted in the held metric) until an engine appears, then answered by it."""
    async def body() -> None:
        settings = no_engines(tmp_path)
        engine = FakeEngine(name="late")
        async with running(settings) as (app, url), aiohttp.ClientSession() as s:
            async with s.get(url + PATH_HEALTH) as r:
                health = await r.json()
                assert r.status == 200 and health["healthy_engines"] == 0 and health["status"] == "ok"
            async with s.get(url + PATH_MODELS) as r:
                assert [m["id"] for m in (await r.json())["data"]] == ["m"]
            assert await metric(s, url, ROUTER_HELD, 'model="m"') == 0.0
            first = asyncio.ensure_future(post(s, url, chat()))
            await until(lambda: app.held() == 1)
            assert await metric(s, url, ROUTER_HELD, 'model="m"') == 1.0
            await engine.start()
            targets(Path(settings.file_discovery.path), engine.url)  # type: ignore[union-attr]
            status, _, answer = await first
            assert status == 200 and answer["engine"] == "late" and app.held() == 0
            assert await metric(s, url, ROUTER_HELD, 'model="m"') == 0.0
            assert await metric(s, url, ROUTER_HOLD_OUTCOMES, 'outcome="dispatched"') == 1.0
        await engine.stop()
    run(body())


def test_a_request_held_past_its_deadline_gets_a_clean_503_with_retry_after(tmp_path: Path) -> None:
    """No engine within max_wait_s: 503 in vLLM's error shape (integer code), Retry-After."""
    async def body() -> None:
        async with running(no_engines(tmp_path, max_wait_s=0.3)) as (app, url), aiohttp.ClientSession() as s:
            status, headers, answer = await post(s, url, chat())
            assert status == 503 and headers["Retry-After"] == "30"
            assert answer["error"]["code"] == 503 and answer["error"]["type"] == "ServiceUnavailableError"
            assert "within 0.3 s" in answer["error"]["message"] and app.held() == 0
            assert await metric(s, url, ROUTER_HOLD_OUTCOMES, 'outcome="timed_out"') == 1.0
    run(body())


def test_the_bound_refuses_with_429_and_a_flood_gives_way_to_another_caller(tmp_path: Path) -> None:
    """At max_held a newcomer is refused 429 + Retry-After, unless its caller holds two fewer
    than the heaviest: then the flooder's newest request is answered 429 and the newcomer held."""
    async def body() -> None:
        async with running(no_engines(tmp_path, max_held=2)) as (app, url), aiohttp.ClientSession() as s:
            flood = [asyncio.ensure_future(post(s, url, chat(f"a{i}"), {"x-user-id": "a"})) for i in range(2)]
            await until(lambda: app.held() == 2)
            status, headers, answer = await post(s, url, chat("a2"), {"x-user-id": "a"})
            assert status == 429 and headers["Retry-After"] == "1" and answer["error"]["code"] == 429
            light = asyncio.ensure_future(post(s, url, chat("b"), {"x-user-id": "b"}))
            done, _ = await asyncio.wait(flood, timeout=5, return_when=asyncio.FIRST_COMPLETED)
            [displaced] = done
            assert displaced.result()[0] == 429 and "gave way" in displaced.result()[2]["error"]["message"]
            assert app.held() == 2 and not light.done()
            assert await metric(s, url, ROUTER_HOLD_OUTCOMES, 'outcome="displaced"') == 1.0
            assert await metric(s, url, ROUTER_HOLD_OUTCOMES, 'outcome="refused"') == 1.0
            await app.stop()  # stopping answers what is still held: 503, nothing dropped
            results = [await t for t in flood if t not in done] + [await light]
            assert [r[0] for r in results] == [503, 503] and app.held() == 0
    run(body())


def test_a_client_that_leaves_while_held_is_taken_out(tmp_path: Path) -> None:
    """A held client disconnecting leaves nothing behind: held back to 0, outcome cancelled."""
    async def body() -> None:
        async with running(no_engines(tmp_path)) as (app, url), aiohttp.ClientSession() as s:
            async with aiohttp.ClientSession() as leaving:
                task = asyncio.ensure_future(post(leaving, url, chat()))
                await until(lambda: app.held() == 1)
                task.cancel()
            await until(lambda: app.held() == 0)
            await until(lambda: metric(s, url, ROUTER_HOLD_OUTCOMES, 'outcome="cancelled"'))
    run(body())


def test_held_requests_go_by_priority_then_callers_in_turn(tmp_path: Path) -> None:
    """With one slot per engine: a high-priority request goes first, then callers take turns
    (a, b, a, a), each caller's requests in arrival order; a bad priority header is a 400."""
    async def body() -> None:
        engine = FakeEngine(name="e", chunk_delay=0.05)
        await engine.start()
        settings = settings_for([engine.url], queue=QueueSettings(max_in_flight_per_engine=1))
        async with running(settings) as (app, url), aiohttp.ClientSession() as s:
            await until(lambda: app.registry.healthy_count() == 1)
            status, _, answer = await post(s, url, chat(), {"x-priority": "urgent"})
            assert status == 400
            assert "'x-priority' must be one of high, normal, low" in answer["error"]["message"]
            stream = {**chat("first"), "stream": True}
            busy = asyncio.ensure_future(s.post(url + PATH_CHAT, data=orjson.dumps(stream),
                                                headers=JSON_HEADERS))
            await until(lambda: engine.requests == 1)
            tasks = []
            arrivals = [("a1", "a", None), ("a2", "a", None), ("a3", "a", None), ("b1", "b", None),
                        ("h1", "c", "high")]
            for n, (text, user, prio) in enumerate(arrivals, 1):
                headers = {"x-user-id": user, **({"x-priority": prio} if prio else {})}
                tasks.append(asyncio.ensure_future(post(s, url, chat(text), headers)))
                await until(lambda n=n: app.held() == n)
            async with await busy as r:
                await r.read()
            assert all(status == 200 for status, _, _ in await asyncio.gather(*tasks))
            order = [b["messages"][0]["content"] for b in engine.bodies]
            assert order == ["first", "h1", "a1", "b1", "a2", "a3"]
        await engine.stop()
    run(body())


def test_a_keys_class_sets_priority_and_the_header_can_only_lower_it(tmp_path: Path) -> None:
    """`KEY class=low` puts that key's requests in the low band; its header cannot raise it;
    a keys-file line with an unknown class is a settings error that does not echo the key."""
    keys = tmp_path / "keys"
    keys.write_text("k-top class=high\nk-low class=low\n")
    settings = settings_for(["http://127.0.0.1:1"], api_keys_file=str(keys))
    app = create_app(settings, environ={})
    holding = app.holding
    assert holding is not None
    low, top = app.proxy.keys.check("Bearer k-low"), app.proxy.keys.check("Bearer k-top")
    assert holding.band({b"x-priority": b"high"}, app.proxy.keys.priority_class(low), True) == 2
    assert holding.band({}, app.proxy.keys.priority_class(top), True) == 0
    assert holding.band({b"x-priority": b"low"}, app.proxy.keys.priority_class(top), True) == 2
    assert holding.band({b"x-priority": b"high"}, None, False) == 0
    keys.write_text("secret-key class=vip\n")
    with pytest.raises(SettingsError, match="class=NAME' with NAME one of high, normal, low") as err:
        create_app(settings, environ={})
    assert "secret-key" not in str(err.value)
