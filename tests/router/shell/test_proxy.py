"""The proxy over real loopback HTTP: forwarding, streaming, retries, failures, cancellation."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from contracts import PATH_CHAT, PATH_COMPLETIONS, PATH_EMBEDDINGS, SSE_DONE
from router.settings import Limits
from tests.router.fake_engine import CLOSE_BEFORE, CLOSE_MID, HANG, UNAVAILABLE, FakeEngine
from tests.router.harness import RoundRobinStub, run, running, settings_for, until

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


async def _engines(n: int, **kwargs: object) -> list[FakeEngine]:
    engines = [FakeEngine(name=f"e{i}", **kwargs) for i in range(n)]  # type: ignore[arg-type]
    for engine in engines:
        await engine.start()
    return engines


async def _post(session: aiohttp.ClientSession, url: str, body: dict, path: str = PATH_CHAT
                ) -> tuple[int, dict, bytes]:
    async with session.post(url + path, data=orjson.dumps(body)) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def test_non_streaming_requests_reach_every_route_and_come_back_whole() -> None:
    """Chat, completions and embeddings are forwarded and the engine's JSON comes back as sent."""
    async def body() -> None:
        [engine] = await _engines(1)
        async with running(settings_for([engine.url])) as (_, url), aiohttp.ClientSession() as s:
            bodies = [(PATH_CHAT, CHAT), (PATH_COMPLETIONS, {"model": "m", "prompt": "hi"}),
                      (PATH_EMBEDDINGS, {"model": "m", "input": "hi"})]
            for path, payload in bodies:
                status, headers, data = await _post(s, url, payload, path)
                assert status == 200 and headers["Content-Type"] == "application/json"
                assert orjson.loads(data)["engine"] == "e0"
        assert engine.bodies == [payload for _, payload in bodies]
        await engine.stop()
    run(body())


def test_stream_arrives_chunk_by_chunk_before_the_engine_finishes() -> None:
    """The first SSE event reaches the client while the engine is still generating."""
    async def body() -> None:
        [engine] = await _engines(1, chunks=4, chunk_delay=0.3)
        async with running(settings_for([engine.url])) as (_, url), aiohttp.ClientSession() as s, \
                s.post(url + PATH_CHAT, json={**CHAT, "stream": True}) as resp:
            assert resp.headers["Content-Type"] == "text/event-stream"
            first = await resp.content.readuntil(b"\n\n")
            assert first.startswith(b"data: {") and engine.completed == 0
            rest = await resp.read()
        assert rest.endswith(SSE_DONE) and rest.count(b"data: ") == 4
        await engine.stop()
    run(body())


def test_engine_failing_before_first_byte_is_retried_on_another() -> None:
    """A connection closed without an answer, or a 503, is retried elsewhere and counted."""
    async def body() -> None:
        bad, good = await _engines(2)
        policy = RoundRobinStub()
        async with running(settings_for([bad.url, good.url]), policy) as (app, url), \
                aiohttp.ClientSession() as s:
            for mode in (CLOSE_BEFORE, UNAVAILABLE):
                bad.mode = mode
                policy.turn = 0  # the bad engine is picked first
                status, _, data = await _post(s, url, {**CHAT, "stream": mode == CLOSE_BEFORE})
                assert status == 200, data
            assert app.metrics.retries.value(app.metrics.registry, (bad.url,)) == 2
        assert bad.requests == 2 and good.requests == 2
        for engine in (bad, good):
            await engine.stop()
    run(body())


def test_all_engines_failing_gives_502_and_a_hung_one_504() -> None:
    """No answer anywhere is a 502 OpenAI error; an engine past the read timeout is a 504."""
    async def body() -> None:
        a, b = await _engines(2)
        a.mode = b.mode = CLOSE_BEFORE
        settings = settings_for([a.url, b.url], limits=Limits(upstream_read_timeout_s=0.3))
        async with running(settings) as (_, url), aiohttp.ClientSession() as s:
            status, _, data = await _post(s, url, CHAT)
            assert status == 502 and orjson.loads(data)["error"]["type"] == "upstream_error"
            a.mode = b.mode = HANG
            status, _, data = await _post(s, url, CHAT)
            assert status == 504 and orjson.loads(data)["error"]["code"] == "gateway_timeout"
        for engine in (a, b):
            await engine.stop()
    run(body())


def test_mid_stream_failure_ends_with_an_error_event_and_is_counted() -> None:
    """An engine dying mid-stream yields an SSE error event, a clean end, and a counted error."""
    async def body() -> None:
        [engine] = await _engines(1, chunks=4)
        engine.mode = CLOSE_MID
        async with running(settings_for([engine.url])) as (app, url), aiohttp.ClientSession() as s:
            status, _, data = await _post(s, url, {**CHAT, "stream": True})
            assert status == 200
            events = [e for e in data.split(b"\n\n") if e]
            assert len(events) == 2 and b'"content":"t0"' in events[0]
            assert orjson.loads(events[1].removeprefix(b"data: "))["error"]["type"] == "upstream_error"
            assert app.metrics.stream_errors.value(app.metrics.registry, (engine.url,)) == 1
        await engine.stop()
    run(body())


def test_client_disconnect_cancels_the_upstream_request() -> None:
    """Closing the client connection mid-stream closes the engine's connection and frees the slot."""
    async def body() -> None:
        [engine] = await _engines(1, chunks=50, chunk_delay=0.05)
        policy = RoundRobinStub()
        async with running(settings_for([engine.url]), policy) as (app, url):
            reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
            payload = orjson.dumps({**CHAT, "stream": True})
            writer.write(b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s"
                         % (PATH_CHAT.encode(), len(payload), payload))
            await reader.readuntil(b"data: ")
            writer.transport.abort()
            await until(lambda: engine.cancelled == 1)
            await until(lambda: app.registry.states[engine.url].in_flight == 0)
            assert policy.completed == [(engine.url, False)] and engine.completed == 0
        await engine.stop()
    run(body())


def test_no_healthy_engine_is_503_with_retry_after() -> None:
    """When every engine is out of rotation the router answers 503 with Retry-After."""
    async def body() -> None:
        [engine] = await _engines(1)
        engine.healthy = False
        async with running(settings_for([engine.url])) as (app, url), aiohttp.ClientSession() as s:
            await until(lambda: app.registry.healthy_count() == 0)
            status, headers, data = await _post(s, url, CHAT)
            assert status == 503 and headers["Retry-After"] == "1"
            assert orjson.loads(data)["error"]["code"] == "no_healthy_engine"
        assert engine.requests == 0
        await engine.stop()
    run(body())


def test_keep_alive_connections_are_reused_upstream() -> None:
    """Twenty sequential requests ride a handful of pooled engine connections, not twenty."""
    async def body() -> None:
        [engine] = await _engines(1)
        async with running(settings_for([engine.url])) as (_, url), aiohttp.ClientSession() as s:
            for _ in range(20):
                assert (await _post(s, url, CHAT))[0] == 200
        assert engine.requests == 20 and engine.connections <= 4  # health checks may hold one or two
        await engine.stop()
    run(body())


def test_slow_client_gets_every_event_intact_while_the_engine_is_held_back() -> None:
    """A client reading slowly still gets every event, in order; the engine is held back meanwhile."""
    async def body() -> None:
        [engine] = await _engines(1, chunks=1000, pad=32_000)
        async with running(settings_for([engine.url])) as (_, url), aiohttp.ClientSession() as s, \
                s.post(url + PATH_CHAT, json={**CHAT, "stream": True}) as resp:
            await until(lambda: engine.chunk_written.is_set())
            await asyncio.sleep(0.3)  # a client that does not read for a while: buffers fill up
            held_back = engine.completed == 0
            data = await resp.read()
        events = [orjson.loads(e[6:]) for e in data.split(b"\n\n") if e.startswith(b"data: {")]
        contents = [e["choices"][0]["delta"]["content"] for e in events]
        assert len(contents) == 1000 and all(c.startswith(f"t{i}x") for i, c in enumerate(contents))
        assert held_back and engine.completed == 1 and data.endswith(SSE_DONE)
        await engine.stop()
    run(body())


def test_drain_lets_open_streams_finish_and_refuses_new_connections() -> None:
    """On drain, an open stream completes, /health turns 503 and the listener closes."""
    async def body() -> None:
        [engine] = await _engines(1, chunks=5, chunk_delay=0.05)
        async with running(settings_for([engine.url])) as (app, url), aiohttp.ClientSession() as s, \
                s.post(url + PATH_CHAT, json={**CHAT, "stream": True}) as resp:
            await resp.content.readuntil(b"\n\n")
            drain = asyncio.ensure_future(app.drain(timeout=5))
            await until(lambda: app.draining)
            data = await resp.read()
            await drain
            assert data.endswith(SSE_DONE) and engine.completed == 1
            async with s.get(url + "/health") as health:  # the kept-alive connection still answers
                assert health.status == 503 and (await health.json())["status"] == "draining"
            try:
                async with aiohttp.ClientSession() as fresh, fresh.get(url + "/health"):
                    refused = False
            except aiohttp.ClientConnectionError:
                refused = True
            assert refused
        await engine.stop()
    run(body())
