"""The proxy over real loopback HTTP: forwarding, streaming, retries, failures, cancellation."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from contracts import PATH_CHAT, PATH_COMPLETIONS, PATH_EMBEDDINGS, SSE_DONE
from router.settings import Deadlines, DeadlineSettings, HealthSettings, Limits, QueueSettings
from router.shell.app import create_app
from tests.router.fake_engine import CLOSE_BEFORE, CLOSE_MID, HANG, UNAVAILABLE, FakeEngine
from tests.router.harness import RoundRobinStub, json_session, run, running, settings_for, until

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
        async with running(settings_for([engine.url])) as (_, url), json_session() as s:
            bodies = [(PATH_CHAT, CHAT), (PATH_COMPLETIONS, {"model": "m", "prompt": "hi"}),
                      (PATH_EMBEDDINGS, {"model": "m", "input": "hi"})]
            for path, payload in bodies:
                status, headers, data = await _post(s, url, payload, path)
                assert status == 200 and headers["Content-Type"] == "application/json"
                assert orjson.loads(data)["engine"] == "e0"
        assert engine.bodies == [payload for _, payload in bodies]
        await engine.stop()
    run(body())


def test_the_engine_gets_the_routers_own_headers_and_only_allowlisted_client_ones() -> None:
    """Upstream requests name the router, ask for an uncompressed answer and carry the request id
    and trace context; the client's API key, cookies and other headers stay at the router."""
    async def body() -> None:
        [engine] = await _engines(1)
        client = {"authorization": "Bearer k", "cookie": "a=b", "x-request-id": "r1",
                  "traceparent": "00-a-b-01", "accept-encoding": "gzip", "user-agent": "curl/8"}
        async with running(settings_for([engine.url])) as (_, url), json_session() as s, \
                s.post(url + PATH_CHAT, data=orjson.dumps(CHAT), headers=client) as resp:
            assert resp.status == 200
        [got] = engine.headers
        assert {k: v for k, v in got.items() if k not in ("host", "content-length")} == {
            "user-agent": "llm-stack-router", "accept": "*/*", "accept-encoding": "identity",
            "content-type": "application/json", "x-request-id": "r1", "traceparent": "00-a-b-01"}
        await engine.stop()
    run(body())


def test_proxied_requests_take_the_lean_aiohttp_path_and_the_session_api_agrees() -> None:
    """On the pinned aiohttp, proxied requests skip `ClientSession.request`'s set-up; the same
    requests through the session API (the path on other aiohttp versions) give the same answers."""
    from router.shell.upstream import UpstreamPool

    async def body() -> None:
        [engine] = await _engines(1, chunks=3)
        answers = []
        for lean in (True, False):
            pool = UpstreamPool(lean=lean)
            app = create_app(settings_for([engine.url]), upstream=pool, policy=RoundRobinStub(), environ={})
            async with app, json_session() as s:
                url = f"http://127.0.0.1:{await app.serve('127.0.0.1', 0)}"
                plain = await _post(s, url, CHAT)
                streamed = await _post(s, url, {**CHAT, "stream": True})
            answers.append((plain[0], plain[2], streamed[0], streamed[2].count(b"data: ")))
            assert pool.lean_requests == (2 if lean else 0)
        assert answers[0] == answers[1] and answers[0][0] == answers[0][2] == 200
        await engine.stop()
    run(body())


def test_a_refused_connection_on_the_lean_path_is_retried_on_another_engine() -> None:
    """A connect error on the lean path is a connect error (retried elsewhere, engine marked down)."""
    async def body() -> None:
        [engine] = await _engines(1)
        dead = "http://127.0.0.1:9"  # discard port: nothing listens
        slow = HealthSettings(interval_s=60.0, timeout_s=0.3, metrics_interval_s=60.0)
        async with running(settings_for([dead, engine.url], health=slow)) as (app, url), \
                json_session() as s:
            assert app.registry.states[dead].healthy  # one failed health check does not take it out
            for _ in range(2):
                assert (await _post(s, url, CHAT))[0] == 200
            assert not app.registry.states[dead].healthy
            assert app.metrics.retries.value(app.metrics.registry, (dead,)) >= 1
        await engine.stop()
    run(body())


def test_stream_arrives_chunk_by_chunk_before_the_engine_finishes() -> None:
    """The first SSE event reaches the client while the engine is still generating."""
    async def body() -> None:
        [engine] = await _engines(1, chunks=4, chunk_delay=0.3)
        async with running(settings_for([engine.url])) as (_, url), json_session() as s, \
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
                json_session() as s:
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
    """No answer anywhere is a 502 OpenAI error; an engine past the answer's deadline is a 504."""
    async def body() -> None:
        a, b = await _engines(2)
        a.mode = b.mode = CLOSE_BEFORE
        quick = Deadlines(first_byte_s=0.3, inter_chunk_s=0.3, whole_s=0.3)
        settings = settings_for([a.url, b.url], deadlines=DeadlineSettings(default=quick))
        async with running(settings) as (app, url), json_session() as s:
            status, _, data = await _post(s, url, CHAT)
            assert status == 502 and orjson.loads(data)["error"]["type"] == "Bad Gateway"
            a.mode = b.mode = HANG
            status, _, data = await _post(s, url, CHAT)
            assert status == 504 and orjson.loads(data)["error"]["code"] == 504
            reg = app.metrics.registry
            misses = sum(app.metrics.deadline_misses.value(reg, (e.url, "whole")) for e in (a, b))
            assert misses == 1  # the whole answer's time was up: not retried
        for engine in (a, b):
            await engine.stop()
    run(body())


def test_hung_engine_before_the_first_byte_is_retried_elsewhere_and_counted() -> None:
    """A stream whose engine sends nothing within the first-byte deadline goes to another engine
    (issue 18 defect 5: before, a client waited out the 600 s read timeout)."""
    async def body() -> None:
        a, b = await _engines(2)
        a.mode = HANG
        policy = RoundRobinStub()
        deadlines = DeadlineSettings(default=Deadlines(first_byte_s=0.3, inter_chunk_s=0.3, whole_s=5))
        async with running(settings_for([a.url, b.url], deadlines=deadlines), policy) as (app, url), \
                json_session() as s:
            for _ in range(3):  # the stub sends each request to `a` first
                status, _, data = await _post(s, url, {**CHAT, "stream": True})
                assert status == 200 and data.endswith(SSE_DONE) and b"error" not in data
            reg = app.metrics.registry
            assert app.metrics.deadline_misses.value(reg, (a.url, "first_byte")) == 3
            # three misses within 30 s: ejected, though its /health still answers
            assert app.metrics.ejections.value(reg, (a.url, "first_byte")) == 1
            assert not app.registry.states[a.url].healthy
        for engine in (a, b):
            await engine.stop()
    run(body())


def test_mid_stream_failure_that_cannot_move_ends_with_one_error_event_and_done() -> None:
    """With migration off, an engine dying mid-stream yields what it sent, one SSE error event
    with no transport internals, and `data: [DONE]`, as vLLM ends a failed stream (issue 18
    defect 6: before, aiohttp's exception text and no terminator)."""
    async def body() -> None:
        [engine] = await _engines(1, chunks=4)
        engine.mode = CLOSE_MID
        settings = settings_for([engine.url], limits=Limits(max_migrations=0))
        async with running(settings) as (app, url), json_session() as s:
            status, _, data = await _post(s, url, {**CHAT, "stream": True})
            assert status == 200
            events = [e for e in data.split(b"\n\n") if e]
            assert len(events) == 3 and b'"content":"t0"' in events[0] and events[2] == SSE_DONE.strip()
            error = orjson.loads(events[1].removeprefix(b"data: "))["error"]
            assert error["type"] == "Bad Gateway"
            assert "aiohttp" not in error["message"] and "Payload" not in error["message"]
            assert app.metrics.stream_errors.value(app.metrics.registry, (engine.url,)) == 1
            assert app.metrics.migrations.value(app.metrics.registry, ("m", "exhausted")) == 1
        await engine.stop()
    run(body())


def test_mid_stream_failure_moves_the_stream_to_another_engine() -> None:
    """An engine dying after the first event: the rest of the stream comes from another engine,
    asked to continue from what was streamed (chat: a final assistant message, continued)."""
    async def body() -> None:
        a, b = await _engines(2, chunks=3)
        a.mode = CLOSE_MID
        policy = RoundRobinStub()
        async with running(settings_for([a.url, b.url]), policy) as (app, url), json_session() as s:
            status, _, data = await _post(s, url, {**CHAT, "stream": True})
            assert status == 200 and data.endswith(SSE_DONE) and b"error" not in data
            assert data.count(b'"content":"t0"') == 2  # a's first token, then b's continuation
            sent = b.bodies[-1]
            assert sent["messages"][-1] == {"role": "assistant", "content": "t0"}
            assert sent["continue_final_message"] is True and sent["add_generation_prompt"] is False
            assert app.metrics.migrations.value(app.metrics.registry, ("m", "completed")) == 1
        for engine in (a, b):
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
            writer.write(b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n%s" % (PATH_CHAT.encode(), len(payload), payload))
            await reader.readuntil(b"data: ")
            writer.transport.abort()
            await until(lambda: engine.cancelled == 1)
            await until(lambda: app.registry.states[engine.url].in_flight == 0)
            assert policy.completed == [(engine.url, False)] and engine.completed == 0
            # counted against the engine it was cancelled on, not engine="" (issue 22 item 9)
            reg = app.metrics.registry
            await until(lambda: app.metrics.requests.value(reg, ("m", engine.url, "499")) == 1)
        await engine.stop()
    run(body())


def _watchers() -> int:
    return sum(1 for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "_watch_disconnect")


def test_on_the_routers_server_a_lost_connection_cancels_without_a_watcher_task() -> None:
    """On its own server the proxy learns of a lost client from the connection (its disconnect
    hooks), not from a task per request reading `receive`; the request is still cancelled."""
    async def body() -> None:
        [engine] = await _engines(1, chunks=50, chunk_delay=0.05)
        async with running(settings_for([engine.url])) as (app, url):
            reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
            payload = orjson.dumps({**CHAT, "stream": True})
            writer.write(b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n%s" % (PATH_CHAT.encode(), len(payload), payload))
            await reader.readuntil(b"data: ")
            assert app.registry.states[engine.url].in_flight == 1 and _watchers() == 0
            writer.transport.abort()
            await until(lambda: engine.cancelled == 1)
            await until(lambda: app.registry.states[engine.url].in_flight == 0)
        await engine.stop()
    run(body())


def test_under_another_asgi_server_a_disconnect_on_receive_cancels_the_request() -> None:
    """Served by an ASGI server without the router's hooks (here: the app called directly),
    a `http.disconnect` on the receive channel cancels the upstream request."""
    async def body() -> None:
        [engine] = await _engines(1, chunks=50, chunk_delay=0.05)
        payload = orjson.dumps({**CHAT, "stream": True})
        gone = asyncio.Event()
        sent: list[dict] = []

        async def receive() -> dict:
            if not sent:
                sent.append({"type": "http.request"})
                return {"type": "http.request", "body": payload, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)
            if message.get("more_body"):
                gone.set()  # the client leaves after the first event

        scope = {"type": "http", "method": "POST", "path": PATH_CHAT, "http_version": "1.1",
                 "headers": [(b"content-length", b"%d" % len(payload)),
                             (b"content-type", b"application/json")],
                 "client": ("127.0.0.1", 1)}
        async with running(settings_for([engine.url])) as (app, _):
            await until(lambda: app.registry.healthy_count() == 1)
            await app(scope, receive, send)
            await until(lambda: engine.cancelled == 1)
            assert app.registry.states[engine.url].in_flight == 0 and engine.completed == 0
        await engine.stop()
    run(body())


def test_no_healthy_engine_is_503_with_retry_after_when_holding_is_off() -> None:
    """With the hold queue off (max_held 0), every engine out of rotation means 503 at once."""
    async def body() -> None:
        [engine] = await _engines(1)
        engine.healthy = False
        settings = settings_for([engine.url], queue=QueueSettings(max_held=0))
        async with running(settings) as (app, url), json_session() as s:
            await until(lambda: app.registry.healthy_count() == 0)
            status, headers, data = await _post(s, url, CHAT)
            assert status == 503 and headers["Retry-After"] == "1"
            assert orjson.loads(data)["error"] == {"message": "no healthy engine serves model 'm' right now",
                                                   "type": "ServiceUnavailableError", "param": None,
                                                   "code": 503}
        assert engine.requests == 0
        await engine.stop()
    run(body())


def test_keep_alive_connections_are_reused_upstream() -> None:
    """Twenty sequential requests ride a handful of pooled engine connections, not twenty."""
    async def body() -> None:
        [engine] = await _engines(1)
        async with running(settings_for([engine.url])) as (_, url), json_session() as s:
            for _ in range(20):
                assert (await _post(s, url, CHAT))[0] == 200
        assert engine.requests == 20 and engine.connections <= 4  # health checks may hold one or two
        await engine.stop()
    run(body())


def test_slow_client_gets_every_event_intact_while_the_engine_is_held_back() -> None:
    """A client reading slowly still gets every event, in order; the engine is held back meanwhile."""
    async def body() -> None:
        [engine] = await _engines(1, chunks=1000, pad=32_000)
        async with running(settings_for([engine.url])) as (_, url), json_session() as s, \
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
        async with running(settings_for([engine.url])) as (app, url), json_session() as s, \
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
                async with json_session() as fresh, fresh.get(url + "/health"):
                    refused = False
            except aiohttp.ClientConnectionError:
                refused = True
            assert refused
        await engine.stop()
    run(body())
